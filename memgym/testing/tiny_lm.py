"""A tiny tokenizer and causal LM that memgym builds itself, offline, in well under a second.

Tests, examples and the CPU quickstart need a real transformers model and tokenizer without
downloading weights. `build_tiny_tokenizer` trains a byte-level BPE (the scheme GPT-2 and Qwen
use) on a small built-in English corpus, so it round-trips any Unicode text while common English
words stay one or two tokens; it has Qwen's special tokens and ChatML chat template.
`build_tiny_model` makes a standard `Qwen2ForCausalLM` (or `LlamaForCausalLM`) with random
weights that saves and loads with the Auto classes like any hub model:

    >>> tok = build_tiny_tokenizer()
    >>> model = build_tiny_model(tok)
    >>> ids = tok.apply_chat_template([{"role": "user", "content": "hi"}],
    ...                               add_generation_prompt=True)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memgym.errors import unknown_name

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_model", "build_tiny_tokenizer"]

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""Qwen's special tokens: padding/end of document, and the ChatML message delimiters."""

_ADDED_TOKENS = ("<think>", "</think>")  # single tokens like Qwen3's, but kept in decoded text

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
"""The ChatML (Qwen) chat template: `<|im_start|>role\\ncontent<|im_end|>\\n` per message."""

_VOCAB_SIZE = 1024

# The BPE training corpus: words memgym's prompts, tasks and answers use, so prompts tokenise
# to short sequences. Digits are always split one per token (as in Qwen), so no numbers needed.
_CORPUS = """\
You are a helpful assistant. You read a document chunk by chunk and keep a memory of the facts
that help answer the question. Update the memory with the new information, and keep what is still
useful. When you are ready, give the final answer in \\boxed{}. No previous memory.
The question is: which city was the author of the book born in? The answer is Paris.
Document 1: The river flows through the old town and into the sea. Document 2: The film was
directed by a woman who grew up in a small village near the mountains. Document 3: In the year
1998, the company opened its first office in London, and later moved to New York.
User: I moved to a new apartment last week and my cat likes the window. Assistant: That sounds
lovely! What is your cat's name? User: Her name is Luna, and she is three years old.
Memory bank: ADD, UPDATE, DELETE, NOOP. Each memory has an id, a text, and a time. The manager
decides whether to add a new memory, update an existing one, delete a wrong one, or do nothing.
Question: When did the user adopt the dog? Answer: in March, two weeks after the trip.
Summary of the session: the user talked about work, family, travel, food, music and sports.
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with one step.
What, when, where, who, why, how? Yes, no, maybe. It is true; it is false. (See section 2.)
She said "thank you" and he answered 'you are welcome'. Read the text, then think step by step.
<think> Let me think about the evidence first, then answer. </think> The final answer is 42.
Title: History of science. Text: Scientists study the world with experiments, observations and
models; they share results in papers, and other scientists check them. Education, government,
language, country, population, capital, president, university, museum, season, league, team.
"""


def build_tiny_tokenizer(save_dir: str | Path | None = None, *,
                         corpus: Iterable[str] | None = None, vocab_size: int = _VOCAB_SIZE
                         ) -> Any:
    """Build memgym's tiny byte-level BPE tokenizer (deterministic, offline, ~20 ms).

    Args:
        save_dir: when given, the tokenizer is also saved there (`save_pretrained`), so
            `AutoTokenizer.from_pretrained(save_dir)` loads it.
        corpus: text to train the BPE merges on (default: the built-in English corpus); a
            task-specific corpus makes that task's words single tokens.
        vocab_size: the BPE vocabulary size before special and added tokens.

    Returns:
        A `PreTrainedTokenizerFast` (by default a 1024-token BPE vocabulary): eos `<|im_end|>`, pad
        `<|endoftext|>`, the ChatML chat template, and `<think>`/`</think>` as single tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = _CORPUS.splitlines(keepends=True) if corpus is None else list(corpus)
    tok.train_from_iterator(lines, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    fast.add_tokens(list(_ADDED_TOKENS))
    fast.chat_template = CHAT_TEMPLATE
    if save_dir is not None:
        fast.save_pretrained(str(save_dir))
    return fast


_ARCHS = ("qwen2", "llama")


def build_tiny_model(
    tokenizer: Any,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
    arch: str = "qwen2",
    intermediate_size: int | None = None,
    initializer_range: float = 0.1,
) -> Any:
    """Build a small causal LM with random weights for `tokenizer` (float32, eval mode).

    Args:
        tokenizer: the tokenizer (its vocabulary size and special ids configure the model).
        hidden_size: model width; must be divisible by `num_heads`.
        num_layers: number of decoder layers.
        num_heads: attention heads; key/value heads are half of them (grouped-query attention,
            as in Qwen2), or all of them when `num_heads` is odd.
        seed: weight initialisation seed (the global torch RNG is left untouched).
        arch: "qwen2" (Qwen2ForCausalLM) or "llama" (LlamaForCausalLM).
        intermediate_size: MLP width (default 4 x hidden_size).
        initializer_range: std of the random weights; larger than the usual 0.02 so greedy
            decoding has clear winners instead of near-ties.

    Returns:
        A transformers `PreTrainedModel`; `save_pretrained` + `AutoModelForCausalLM` reload it.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    if arch not in _ARCHS:
        raise unknown_name("tiny model arch", arch, _ARCHS)
    config_cls, model_cls = (
        (Qwen2Config, Qwen2ForCausalLM) if arch == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    )
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads // 2 if num_heads % 2 == 0 else num_heads,
        max_position_embeddings=32768,
        initializer_range=initializer_range,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_ids[0],
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.generation_config.eos_token_id = eos_ids
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model.eval()
