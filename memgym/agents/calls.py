"""The one way agents call an LLM: build the request, await the backend, record the Turn.

Every LLM call of every agent goes through `call_llm`, so every call lands in `ctx.turns` with
its token ids and logprobs (what the trainer optimises) and nothing an agent does can lose one.
A backend that raises, or returns an error completion, does not end the episode: the error is
recorded on the Turn (finish_reason "error", not trainable) and the caller receives an empty
completion to fall back from.
"""

from __future__ import annotations

import dataclasses
import time

from memgym.agents.base import EpisodeContext, Turn
from memgym.agents.episode import derive_seed
from memgym.llm.base import Completion, GenerationRequest, LLMBackend, SamplingParams

__all__ = ["call_llm"]


async def call_llm(backend: LLMBackend, ctx: EpisodeContext, *, component: str, prompt: str,
                   sampling: SamplingParams, chat: bool = True, system: str | None = None,
                   trainable: bool = True) -> Completion:
    """Send `prompt` to `backend`, record the call as a Turn in `ctx.turns`, return the completion.

    Args:
        backend: any LLMBackend.
        ctx: the episode's context; the Turn gets `ctx.step` and is appended to `ctx.turns`.
        component: which part of the agent calls ("memory_update", "answer", ...).
        prompt: the rendered prompt text (the user message when `chat`).
        sampling: sampling settings; when its seed is None and `ctx.sampling_seed` is set, the
            call gets the seed `derive_seed(ctx.sampling_seed, call_index)` (call_index counts
            the episode's earlier calls), so neighbouring calls and episodes do not collide.
        chat: send `prompt` as one user chat message (templated by the backend) rather than raw
            text.
        system: an optional system message (chat only).
        trainable: whether the trainer optimises this call (errored calls never are).

    Returns:
        The backend's completion; on failure an empty one with finish_reason "error".
    """
    if sampling.seed is None and ctx.sampling_seed is not None:
        sampling = dataclasses.replace(sampling, seed=derive_seed(ctx.sampling_seed, len(ctx.turns)))
    if chat:
        messages = ({"role": "system", "content": system},) if system else ()
        request = GenerationRequest(messages=messages + ({"role": "user", "content": prompt},),
                                    sampling=sampling)
    else:
        request = GenerationRequest(prompt=prompt, sampling=sampling)
    start = time.perf_counter()
    try:
        completion = await backend.generate(request)
    except Exception as exc:  # noqa: BLE001 - any backend failure is the episode's, not the run's
        completion = Completion(text="", finish_reason="error",
                                error=f"{type(exc).__name__}: {exc}")
    latency = time.perf_counter() - start
    failed = completion.finish_reason == "error" or completion.error is not None
    ctx.turns.append(Turn(
        component=component,
        step=ctx.step,
        prompt=completion.prompt_text or prompt,
        completion=completion.text,
        prompt_ids=list(completion.prompt_ids),
        completion_ids=list(completion.completion_ids),
        logprobs=list(completion.logprobs),
        trainable=trainable and not failed,
        finish_reason="error" if failed else completion.finish_reason,
        error=(completion.error or "backend reported an error") if failed else None,
        latency_s=latency,
    ))
    if failed and completion.text:
        # an error completion's partial text is recorded but never acted on
        completion = dataclasses.replace(completion, text="")
    return completion
