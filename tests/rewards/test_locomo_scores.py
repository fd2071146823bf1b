"""memgym.rewards.locomo against LoCoMo's own scoring (task_eval/evaluation.py, branch `code` of
snap-research/locomo, re-implemented here as the reference) and mem0's BLEU-1, plus the
documented differences from memgym.rewards.scorers."""

import string
from collections import Counter

import numpy as np
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from memgym.rewards import bleu1, exact_match, f1
from memgym.rewards.locomo import (
    answer_mem0_f1,
    locomo_em,
    locomo_f1,
    locomo_multi_f1,
    locomo_scores,
    mem0_bleu1,
    mem0_f1,
    mem0_word_tokenize,
)


# -- the reference, as LoCoMo's evaluation.py writes it ------------------------------------------
def ref_normalize(s):
    s = s.replace(",", "")
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = regex.sub(r"\b(a|an|the|and)\b", " ", s)
    return " ".join(s.split())


def ref_f1_score(prediction, ground_truth):
    from nltk.stem import PorterStemmer

    ps = PorterStemmer()
    p = [ps.stem(w) for w in ref_normalize(prediction).split()]
    g = [ps.stem(w) for w in ref_normalize(ground_truth).split()]
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def ref_multi_f1(prediction, ground_truth):
    preds = [p.strip() for p in prediction.split(",")]
    golds = [g.strip() for g in ground_truth.split(",")]
    return np.mean([max(ref_f1_score(p, g) for p in preds) for g in golds])


def ref_em(prediction, ground_truth):
    return set(ref_normalize(prediction).split()) == set(ref_normalize(ground_truth).split())


WORDS = st.sampled_from(["Lisbon", "the", "and", "running", "ran", "cats", "cat", "a", "in",
                         "May,", "2023", "violin", "violins", "Caroline's", "art!", "An"])
PHRASES = st.lists(WORDS, min_size=0, max_size=6).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(prediction=PHRASES, gold=PHRASES)
def test_f1_and_em_match_locomos_reference(prediction, gold):
    assert locomo_f1(prediction, gold) == pytest.approx(ref_f1_score(prediction, gold))
    assert locomo_multi_f1(prediction, gold) == pytest.approx(ref_multi_f1(prediction, gold))
    assert locomo_em(prediction, gold) == float(ref_em(prediction, gold))


def test_mem0_bleu1_splits_sentences_before_words_as_mem0_does():
    # mem0: word_tokenize (punkt sentences, then words) -> she moved to paris . she likes it .
    # one of 9 tokens matches "paris"; brevity penalty 1 (longer than the gold)
    assert mem0_word_tokenize("she moved to paris. she likes it.") == \
        ["she", "moved", "to", "paris", ".", "she", "likes", "it", "."]
    assert mem0_bleu1("She moved to Paris. She likes it.", "Paris") == pytest.approx(1 / 9)
    # mid-line periods are split too, not kept as "paris."
    assert mem0_bleu1("Paris. Lisbon.", "Paris") == pytest.approx(1 / 4)


def test_mem0_word_tokenize_departs_from_the_english_model_only_after_abbreviations():
    # the documented difference: punkt with default parameters ends a sentence after "dr."
    # (the English model knows the abbreviation and keeps "dr." one token)
    assert mem0_word_tokenize("i saw dr. smith") == ["i", "saw", "dr", ".", "smith"]


def test_mem0_word_tokenize_equals_nltks_english_word_tokenize_where_punkt_is_installed():
    nltk = pytest.importorskip("nltk")
    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        pytest.skip("nltk's punkt_tab English model is absent: python -m nltk.downloader punkt_tab")
    for text in ["she moved to paris. she likes it.", "lisbon, portugal!", "a cat? yes. no"]:
        assert mem0_word_tokenize(text) == nltk.word_tokenize(text)


def test_mem0_f1_is_set_based_without_stemming_unlike_locomo_f1():
    # the review's example: {the, 7th, of, may, 2023} vs {7, may, 2023}: P 2/5, R 2/3 -> 0.5;
    # LoCoMo drops "the": P 2/4, R 2/3 -> 0.571
    assert mem0_f1("The 7th of May 2023", "7 May 2023") == pytest.approx(0.5)
    assert locomo_f1("The 7th of May 2023", "7 May 2023") == pytest.approx(4 / 7)
    assert mem0_f1("violins", "violin") == 0.0 and locomo_f1("violins", "violin") == 1.0
    assert mem0_f1("cat cat dog.", "Cat, dog!") == 1.0  # sets; . , ! ? are separators
    assert mem0_f1("", "x") == 0.0 and mem0_f1("x", "  ") == 0.0


def test_answer_mem0_f1_has_no_category_rules_but_adversarial():
    assert answer_mem0_f1("plants", "plants; maybe flowers", "open-domain") < 1.0
    assert answer_mem0_f1("Lisbon", ("Porto", "Lisbon")) == 1.0
    assert answer_mem0_f1("Not mentioned", "x", "adversarial") == 1.0


def test_bleu1_by_hand():
    # 4 tokens "she moved to lisbon", 1 matches, brevity penalty 1 (longer than the gold)
    assert mem0_bleu1("she moved to Lisbon", "Lisbon") == pytest.approx(0.25)
    # 1 token against 2: precision 1, brevity exp(1 - 2/1)
    assert mem0_bleu1("Lisbon", "in Lisbon") == pytest.approx(np.exp(-1))
    assert mem0_bleu1("", "Lisbon") == 0.0


def test_category_rules():
    # open-domain keeps the gold before ";", multi-hop splits on commas, adversarial phrases
    assert locomo_scores("plants", "plants; maybe flowers", "open-domain")["f1"] == 1.0
    assert locomo_scores("plants", "plants; maybe flowers", "single-hop")["f1"] < 1.0
    assert locomo_scores("a cat, the violin case", "the violin case, a cat",
                         "multi-hop")["f1"] == 1.0
    assert locomo_scores("Not mentioned in the conversation", "x", "adversarial") == \
        {"f1": 1.0, "em": 1.0, "bleu1": 1.0}
    assert locomo_scores("Paris", "x", "adversarial")["f1"] == 0.0
    assert locomo_scores("Lisbon", ("Porto", "Lisbon"))["em"] == 1.0  # best over golds


def test_differences_from_the_squad_scorers_are_the_documented_ones():
    # stemming: LoCoMo credits "violins" for "violin", SQuAD's F1 does not
    assert locomo_f1("violins", "violin") == 1.0 and f1("violins", "violin") == 0.0
    # "and" is dropped by LoCoMo only
    assert locomo_f1("cats and dogs", "cats dogs") == 1.0 and f1("cats and dogs", "cats dogs") < 1
    # HotpotQA's yes/no rule is SQuAD-side only
    assert f1("yes it is", "yes") == 0.0 and locomo_f1("yes it is", "yes") == pytest.approx(0.5)
    # EM: token sets (LoCoMo) vs strings (SQuAD)
    assert locomo_em("Lisbon Portugal", "Portugal Lisbon") == 1.0
    assert exact_match("Lisbon Portugal", "Portugal Lisbon") == 0.0
    # BLEU-1: mem0 keeps punctuation tokens and articles; memgym's bleu1 drops them
    assert mem0_bleu1("the Lisbon .", "Lisbon") == pytest.approx(1 / 3)
    assert bleu1("the Lisbon .", "Lisbon") == 1.0
