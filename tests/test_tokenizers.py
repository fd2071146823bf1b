"""Token counters: counting and lossless splitting at token boundaries."""

import pickle

from hypothesis import given
from hypothesis import strategies as st

from memgym.tokenizers import HFTokenCounter, WordTokenCounter, load_token_counter


def test_word_counter_counts_words_and_punctuation():
    # Hello , world ! It ' s 42 .
    assert WordTokenCounter().count("Hello, world! It's 42.") == 9


@given(st.text(max_size=300), st.integers(min_value=0, max_value=60))
def test_word_split_is_lossless_and_respects_budget(text, k):
    counter = WordTokenCounter()
    head, tail = counter.split(text, k)
    assert head + tail == text
    assert counter.count(head) == min(k, counter.count(text))


def test_hf_counter_splits_at_offsets_and_pickles(tmp_path):
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers

    raw = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1, "b": 2, ",": 3}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]")
    tok.save_pretrained(tmp_path)
    counter = load_token_counter(str(tmp_path))
    assert isinstance(counter, HFTokenCounter)
    assert counter.count("a b, a") == 4
    head, tail = counter.split("a b, a", 2)
    assert (head, tail) == ("a b", ", a")
    assert pickle.loads(pickle.dumps(counter)).count("a a") == 2


def test_embedded_names_the_embedded_models_tokenizer():
    from transformers import AutoTokenizer

    from memgym.assets import TINY_MEMAGENT

    text = "The code of red falcon changed to 532."
    ids = AutoTokenizer.from_pretrained(TINY_MEMAGENT)(text, add_special_tokens=False)["input_ids"]
    assert load_token_counter("embedded").count(text) == len(ids)
