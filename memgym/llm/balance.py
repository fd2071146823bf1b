"""Several servers behind one backend: each call goes to the server with the fewest in flight.

    >>> backend = LoadBalancedBackend([OpenAIBackend(url, "qwen") for url in urls])

`memgym eval --base-url A --base-url B` and the vLLM-server generation backend
(`memgym.llm.vllm_server`) build one. Calls are not retried on another server: a server that is
down fails its call at once with `BackendUnavailable` naming it (its own backend's fast
connection-refused error), so `memgym.eval.FailFast` stops the run and says which server died,
instead of the run carrying on at a fraction of its throughput without anyone noticing.
`stats()` says how many calls each server took and how many failed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

from memgym._async import run_sync
from memgym.errors import ConfigError
from memgym.llm.base import BackendUnavailable, Completion, GenerationRequest, LLMBackend

__all__ = ["LoadBalancedBackend", "merge_capabilities"]


class LoadBalancedBackend:
    """An LLMBackend that spreads `generate` calls over several backends (one per server).

    Each call goes to the backend with the fewest calls in flight; ties go round-robin, so
    equal servers get equal shares. Other attributes (`tokenizer`, `model`, ...) are the first
    backend's.

    Args:
        backends: the backends, one per server (at least one).
        where: a name for each backend in messages (default: its `base_url`).
    """

    name = "balanced"

    def __init__(self, backends: Sequence[LLMBackend], where: Sequence[str] | None = None):
        if not backends:
            raise ConfigError("LoadBalancedBackend needs at least one backend (one per server)")
        self.backends = list(backends)
        names = list(where) if where is not None else [
            str(getattr(b, "base_url", f"backend {i}")) for i, b in enumerate(self.backends)]
        if len(names) != len(self.backends):
            raise ConfigError(f"LoadBalancedBackend: {len(names)} names for "
                              f"{len(self.backends)} backends; give one per backend")
        self.where = names
        self.base_url = ", ".join(names)
        self.in_flight = [0] * len(self.backends)
        self.calls = [0] * len(self.backends)
        self.failures = [0] * len(self.backends)
        self._turn = itertools.count()

    def __getattr__(self, name: str) -> Any:
        if name == "backends":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.backends[0], name)

    def pick(self) -> int:
        """The index of the backend the next call goes to (fewest in flight, then round-robin)."""
        start = next(self._turn) % len(self.backends)
        order = [(start + k) % len(self.backends) for k in range(len(self.backends))]
        return min(order, key=lambda i: self.in_flight[i])

    async def generate(self, request: GenerationRequest) -> Completion:
        """Send one request to the least-busy server.

        Raises:
            BackendUnavailable: that server is down (the message names it); not retried elsewhere.
        """
        i = self.pick()
        self.in_flight[i] += 1
        self.calls[i] += 1
        try:
            completion = await self.backends[i].generate(request)
        except BackendUnavailable as exc:
            self.failures[i] += 1
            raise BackendUnavailable(f"server {i + 1} of {len(self.backends)} "
                                     f"({self.where[i]}) is unavailable: {exc}") from exc
        except Exception:
            self.failures[i] += 1
            raise
        finally:
            self.in_flight[i] -= 1
        if completion.finish_reason == "error":
            self.failures[i] += 1
        return completion

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Complete many requests (blocking), spread over the servers, in order."""
        async def run() -> list[Completion]:
            return list(await asyncio.gather(*(self.generate(r) for r in requests)))

        return run_sync(run())

    def stats(self) -> list[dict[str, Any]]:
        """Per server: where, calls sent, calls failed."""
        return [{"where": w, "calls": c, "failures": f}
                for w, c, f in zip(self.where, self.calls, self.failures)]

    @property
    def capabilities(self) -> Any:
        """What every server offers (`merge_capabilities` of theirs), or None if they say nothing."""
        caps = [getattr(b, "capabilities", None) for b in self.backends]
        if any(c is None for c in caps):
            return None
        return merge_capabilities(caps, self.where)

    def probe(self) -> Any:
        """Probe every server (`OpenAIBackend.probe`); returns what all of them offer."""
        for backend in self.backends:
            backend.probe()
        return self.capabilities

    def close(self) -> None:
        """Close every backend that can be closed."""
        for backend in self.backends:
            close = getattr(backend, "close", None)
            if callable(close):
                close()


def merge_capabilities(caps: Sequence[Any], where: Sequence[str]) -> Any:
    """What a set of servers offers together: a capability is present only if all have it.

    Args:
        caps: each server's `ServerCapabilities`.
        where: each server's name, prefixed to its notes.
    """
    from memgym.llm.openai import ServerCapabilities

    merged = ServerCapabilities()
    for name in ("logprobs", "token_ids", "top_k", "prompt_ids", "seed"):
        values = [getattr(c, name) for c in caps]
        if any(v is False for v in values):
            setattr(merged, name, False)
        elif all(v is True for v in values):
            setattr(merged, name, True)
    for c, w in zip(caps, where):
        for name, note in c.notes.items():
            merged.notes.setdefault(name, f"{w}: {note}")
    return merged
