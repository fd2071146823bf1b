"""memgym.testing.tiny_lm: the offline tokenizer (Unicode round trip, specials, chat template,
determinism) and the tiny model (Auto-class reload, seeding, archs)."""


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM, AutoTokenizer

from memgym.errors import UnknownNameError
from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

TOK = build_tiny_tokenizer()


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_unicode_text_round_trips(text):
    ids = TOK.encode(text, add_special_tokens=False)
    assert TOK.decode(ids) == text


def test_english_tokenises_compactly_and_digits_one_per_token():
    text = "You are a helpful assistant. Update the memory with the new information."
    assert len(TOK.encode(text)) <= 16
    assert TOK.tokenize("2024") == ["2", "0", "2", "4"]


def test_special_tokens_and_chat_template():
    assert TOK.eos_token == "<|im_end|>" and TOK.pad_token == "<|endoftext|>"
    assert TOK.eos_token_id != TOK.pad_token_id
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    text = TOK.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = TOK(text, add_special_tokens=False)["input_ids"]
    assert ids.count(TOK.convert_tokens_to_ids("<|im_start|>")) == 3
    assert TOK.decode(ids) == text
    assert len(TOK.encode("<think>")) == 1  # one token, kept in decoded text
    assert (
        TOK.decode(TOK.encode("<think>x</think>"), skip_special_tokens=True) == "<think>x</think>"
    )


def test_tokenizer_build_is_deterministic_and_saves(tmp_path):
    again = build_tiny_tokenizer(tmp_path / "tok")
    assert again.get_vocab() == TOK.get_vocab()
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    text = "Ünïcödé 中文 🙂 and 12 numbers"
    assert loaded.encode(text) == TOK.encode(text)
    assert loaded.chat_template == TOK.chat_template


def test_model_builds_and_reloads_with_auto_classes(tmp_path):
    model = build_tiny_model(TOK)
    assert model.config.vocab_size == len(TOK) and not model.training
    model.save_pretrained(tmp_path / "m")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    ids = torch.tensor([TOK.encode("hello world")])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


def test_seed_controls_weights_without_touching_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = (
        build_tiny_model(TOK, seed=1),
        build_tiny_model(TOK, seed=1),
        build_tiny_model(TOK, seed=2),
    )
    assert torch.equal(torch.rand(3), expected)
    wa, wb, wc = (m.get_input_embeddings().weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_archs_and_sizes(arch):
    model = build_tiny_model(TOK, arch=arch, hidden_size=32, num_layers=1, num_heads=2)
    assert model.config.model_type == arch and model.config.num_hidden_layers == 1
    with torch.no_grad():
        assert model(torch.tensor([[1, 2, 3]])).logits.shape == (1, 3, len(TOK))


def test_unknown_arch_suggests_a_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'llama'"):
        build_tiny_model(TOK, arch="lama")
