"""The LLM backend protocol: token in, token out.

Every backend (transformers, vLLM, OpenAI-compatible HTTP, scripted) takes `GenerationRequest`s
and returns `Completion`s carrying the prompt and completion token ids and the sampler's
per-token logprobs, so the trainer never re-tokenises text. Agents call `await backend.generate(
request)` from many concurrent episodes; batching those calls is the backend's job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from memgym.errors import BackendError

__all__ = [
    "BackendUnavailable",
    "Completion",
    "GenerationRequest",
    "LLMBackend",
    "Message",
    "SamplingParams",
    "cut_at_stop",
    "strip_think",
]

class BackendUnavailable(BackendError):
    """The backend cannot serve any request: a refused connection, an unknown host, a bad key,
    model or path. Every later request would fail the same way, so a run stops on the first one
    (even after earlier successes: a server that died mid-run), rather than recording episodes
    whose every call failed."""


Message = dict[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": str}."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion. temperature 0 means greedy."""

    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 disables top-k."""
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to complete: chat `messages` (templated by the backend) or raw `prompt` text.

    `prompt_ids`, when given, is used verbatim (token in) and wins over `messages`/`prompt`.
    """

    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    prompt_ids: tuple[int, ...] | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass
class Completion:
    """A backend's answer to one request.

    Attributes:
        text: the completion text (after optional `<think>` stripping; ids are never stripped).
        prompt_ids: the exact prompt token ids the model saw (empty for APIs that hide them).
        completion_ids: the sampled token ids.
        logprobs: the sampler's log-probability of each sampled token (same length as ids).
        finish_reason: "stop", "length" or "error".
        error: what went wrong when finish_reason is "error" (the episode records it and goes on).
        latency_s: wall time from submission to result.
        prompt_text: the prompt as the model saw it (chat template applied), for traces; empty
            when the backend cannot know it (a hosted chat API).
    """

    text: str
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "stop"
    error: str | None = None
    latency_s: float = 0.0
    prompt_text: str = ""


@runtime_checkable
class LLMBackend(Protocol):
    """Anything that completes requests: `await generate(request)`, or a batch at once."""

    name: str

    async def generate(self, request: GenerationRequest) -> Completion:
        """Complete one request; concurrent calls may be batched together."""
        ...

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Complete many requests in one go (blocking)."""
        ...


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest occurrence of any stop string; returns (text, whether cut)."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)


def strip_think(text: str) -> str:
    """Remove `<think>...</think>` reasoning from a completion's text.

    A completion that starts inside a thinking block (the chat template already emitted
    `<think>`) has only the closing tag: everything up to it is dropped. An unclosed block at
    the end (generation cut by the length limit) is dropped too.
    """
    head, sep, tail = text.partition("</think>")
    if sep and "<think>" not in head:
        text = tail.lstrip()
    text = _THINK.sub("", text)
    start = text.find("<think>")
    return text[:start] if start >= 0 else text
