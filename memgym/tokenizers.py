"""Token counting for chunking, memory budgets and efficiency metrics.

Environments measure text in tokens (MemAgent's 5000-token chunks and 1024-token memory). Any
transformers tokenizer can be used; the offline default, `WordTokenCounter`, needs no download:
it counts words and punctuation marks, which tracks a BPE tokenizer's count within ~30% on English.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from memgym.errors import ConfigError

__all__ = ["TokenCounter", "WordTokenCounter", "HFTokenCounter", "load_token_counter"]


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens of text and cuts text at a token boundary without altering it."""

    name: str

    def count(self, text: str) -> int:
        """Number of tokens in `text`."""
        ...

    def split(self, text: str, max_tokens: int) -> tuple[str, str]:
        """Split `text` after its first `max_tokens` tokens: `head + tail == text`."""
        ...


_WORD = re.compile(r"\w+|[^\w\s]")


class WordTokenCounter:
    """Offline default tokenizer: one token per word or punctuation mark (regex `\\w+|[^\\w\\s]`)."""

    name = "words"

    def count(self, text: str) -> int:
        """Number of words and punctuation marks in `text`."""
        return len(_WORD.findall(text))

    def split(self, text: str, max_tokens: int) -> tuple[str, str]:
        """Split after the `max_tokens`-th token; whitespace after it goes with the tail."""
        if max_tokens <= 0:
            return "", text
        for i, match in enumerate(_WORD.finditer(text)):
            if i == max_tokens - 1:
                return text[: match.end()], text[match.end():]
        return text, ""

    def __reduce__(self):
        return (WordTokenCounter, ())


class HFTokenCounter:
    """Token counter backed by a transformers tokenizer (a hub id, a local path or an object)."""

    def __init__(self, tokenizer: Any):
        if isinstance(tokenizer, str):
            from transformers import AutoTokenizer

            self._source = tokenizer
            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        else:
            self._source = tokenizer
        self.tokenizer = tokenizer
        self.name = getattr(tokenizer, "name_or_path", type(tokenizer).__name__)

    def count(self, text: str) -> int:
        """Number of tokens the tokenizer gives `text`, without special tokens."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def split(self, text: str, max_tokens: int) -> tuple[str, str]:
        """Split at the character offset where token `max_tokens` ends (needs a fast tokenizer)."""
        if max_tokens <= 0:
            return "", text
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text, ""
        cut = offsets[max_tokens - 1][1]
        return text[:cut], text[cut:]

    def __reduce__(self):
        return (HFTokenCounter, (self._source,))


@lru_cache(maxsize=8)
def _cached_hf(name: str) -> HFTokenCounter:
    return HFTokenCounter(name)


def load_token_counter(spec: str | TokenCounter | Any | None = None) -> TokenCounter:
    """Resolve `spec` into a TokenCounter.

    Args:
        spec: None or "words" for the offline default; a model name ("embedded" for the
            embedded tiny MemAgent model's tokenizer), a local path or a hub id of a
            transformers tokenizer (resolved by `memgym.models.resolve_model_path`); a
            TokenCounter; or a transformers tokenizer object.
    """
    if spec is None or spec == "words":
        return WordTokenCounter()
    if isinstance(spec, str):
        from memgym.models import resolve_model_path

        spec = resolve_model_path(spec)
        try:
            return _cached_hf(spec)
        except OSError as exc:
            raise ConfigError(
                f"tokenizer={spec!r} could not be loaded ({exc}). Pass a local path, a hub id "
                "reachable from this machine, or 'words' for the offline default."
            ) from exc
    if isinstance(spec, TokenCounter):
        return spec
    if callable(spec) and hasattr(spec, "encode"):
        return HFTokenCounter(spec)
    raise ConfigError(f"tokenizer={spec!r}: expected None, 'words', a path/hub id or a tokenizer")
