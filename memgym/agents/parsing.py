"""Parsers that turn a completion's text into a memory write or an answer action.

A memory parser returns the new memory, or None when the text holds no usable memory (the agent
then keeps its previous memory). An answer parser returns the answer action; the env extracts the
answer from it with its `answer_format`'s parser (MemAgent's boxed or "the answer is" parser,
memgym.rewards.extraction), so most answer parsers only tidy the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from memgym.llm.base import strip_think

__all__ = [
    "AnswerParser",
    "MemoryParser",
    "PlainAnswer",
    "PlainMemory",
    "TaggedAnswer",
    "TaggedMemory",
    "box",
    "extract_tag",
]


@runtime_checkable
class MemoryParser(Protocol):
    """Turns a completion into the new memory text, or None if there is none."""

    def __call__(self, text: str) -> str | None:
        """The memory written by `text`, or None to keep the previous memory."""
        ...


@runtime_checkable
class AnswerParser(Protocol):
    """Turns a completion into the answer action handed to the env."""

    def __call__(self, text: str) -> str:
        """The answer action for `text`."""
        ...


def extract_tag(text: str, tag: str) -> str | None:
    """Content of the last closed `<tag>...</tag>` in `text` (stripped), or None."""
    matches = re.findall(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", text, re.DOTALL)
    return matches[-1].strip() if matches else None


def box(answer: str) -> str:
    """`answer` inside `\\boxed{}` unless it already holds a box (empty stays empty)."""
    if not answer.strip() or "\\boxed{" in answer:
        return answer
    return f"\\boxed{{{answer.strip()}}}"


@dataclass(frozen=True)
class PlainMemory:
    """The whole completion is the memory (MemAgent): `<think>` removed, whitespace trimmed."""

    def __call__(self, text: str) -> str | None:
        """The trimmed text, or None when nothing is left."""
        memory = strip_think(text).strip()
        return memory or None


@dataclass(frozen=True)
class TaggedMemory:
    """The memory is the content of the last `<tag>...</tag>` (MEM1's `<IS>`).

    Args:
        tag: the tag name.
        lenient: when no closed tag is present, use the whole trimmed text instead of None (a
            model that forgets the tags still remembers something; the env's budget bounds it).
    """

    tag: str = "IS"
    lenient: bool = True

    def __call__(self, text: str) -> str | None:
        """The tagged content, the whole text (lenient), or None."""
        text = strip_think(text)
        inner = extract_tag(text, self.tag)
        if inner is None and self.lenient:
            inner = text.strip()
        return inner or None


@dataclass(frozen=True)
class PlainAnswer:
    """The completion (minus `<think>`) is the answer; the env extracts it per its answer_format."""

    def __call__(self, text: str) -> str:
        """The trimmed text."""
        return strip_think(text).strip()


@dataclass(frozen=True)
class TaggedAnswer:
    """The answer is the content of the last `<tag>...</tag>`, boxed for the env.

    Without a closed tag the trimmed text is passed on unchanged, so the env still finds a
    `\\boxed{}` the model may have written and otherwise reports a format error.
    """

    tag: str = "answer"

    def __call__(self, text: str) -> str:
        """`\\boxed{content}` of the tag, or the trimmed text."""
        text = strip_think(text)
        inner = extract_tag(text, self.tag)
        return box(inner) if inner else text.strip()
