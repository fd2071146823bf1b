"""A deterministic, rule-based backend for tests, examples and environment authors.

`ScriptedBackend` answers from a Python policy instead of a model, but returns the same
`Completion`s a real backend does (token ids, one logprob per token, finish reason, latency), so
agents, environments and the trainer's bookkeeping can be exercised without any weights:

    >>> backend = ScriptedBackend(["first answer", "second answer"])
    >>> backend.generate_batch([GenerationRequest(prompt="hi")])[0].text
    'first answer'
    >>> echo = ScriptedBackend(lambda req: req.messages[-1]["content"].upper())
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from memgym.errors import BackendError, ConfigError
from memgym.llm.base import Completion, GenerationRequest, cut_at_stop, strip_think

__all__ = ["ScriptedBackend", "render_chat"]

ScriptPolicy = Callable[[GenerationRequest], "str | Completion"]


def render_chat(messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """Render chat messages in the Qwen (ChatML) format, for backends without a tokenizer."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


class ScriptedBackend:
    """Backend whose answers come from a policy: a callable or a fixed list of responses.

    Token ids come from `tokenizer` when given (any object with `encode`/`decode`, e.g. a
    transformers tokenizer) and otherwise are the UTF-8 bytes of the text (ids 0..255), so
    `completion_ids` always round-trip to `text` (before stop/`<think>` cutting). Every logprob
    is 0.0 (the policy is deterministic). `max_new_tokens` truncates the ids (finish_reason
    "length") and stop strings cut the text (finish_reason "stop"), as a real backend would.

    Args:
        policy: a callable `request -> str | Completion` (return a Completion to script an
            error, e.g. `Completion("", finish_reason="error", error="boom")`), or a list of
            responses returned in order; running past its end raises BackendError.
        tokenizer: optional tokenizer for ids and for rendering chat prompts.
        strip_think: remove `<think>...</think>` from the returned text.
        latency_s: seconds each call sleeps (asynchronously in `generate`), to simulate a model.

    Attributes:
        requests: every request received, in arrival order (for assertions in tests).
    """

    name = "scripted"

    def __init__(
        self,
        policy: ScriptPolicy | Sequence[str],
        *,
        tokenizer: Any | None = None,
        strip_think: bool = False,
        latency_s: float = 0.0,
    ):
        if callable(policy):
            self._policy: ScriptPolicy = policy
            self._script: list[str] | None = None
        elif isinstance(policy, Sequence) and not isinstance(policy, str):
            self._script = list(policy)
            for i, item in enumerate(self._script):
                if not isinstance(item, str):
                    raise ConfigError(
                        f"ScriptedBackend policy[{i}] is {type(item).__name__}, expected str"
                    )
            self._policy = self._next_scripted
        else:
            raise ConfigError(
                f"ScriptedBackend policy={policy!r}: expected a callable(request) -> str "
                "or a list of response strings"
            )
        self.tokenizer = tokenizer
        self.strip_think = strip_think
        self.latency_s = latency_s
        self.requests: list[GenerationRequest] = []
        self._lock = threading.Lock()
        self._cursor = 0

    def _next_scripted(self, request: GenerationRequest) -> str:
        assert self._script is not None
        with self._lock:
            if self._cursor >= len(self._script):
                raise BackendError(
                    f"ScriptedBackend ran out of responses: the script has {len(self._script)} "
                    f"and call {self._cursor + 1} asked for one more. Add responses or pass a "
                    "callable policy."
                )
            text = self._script[self._cursor]
            self._cursor += 1
        return text

    # -- tokenisation ---------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        if self.tokenizer is None:
            return list(text.encode("utf-8"))
        if hasattr(self.tokenizer, "convert_ids_to_tokens"):  # transformers: no BOS/EOS added
            return list(self.tokenizer.encode(text, add_special_tokens=False))
        return list(self.tokenizer.encode(text))

    def _decode(self, ids: Sequence[int]) -> str:
        if self.tokenizer is None:
            return bytes(ids).decode("utf-8", errors="replace")
        return self.tokenizer.decode(list(ids))

    def _prompt(self, request: GenerationRequest) -> tuple[str, list[int]]:
        if request.prompt_ids is not None:
            ids = list(request.prompt_ids)
            byte_ids = self.tokenizer is None and all(0 <= i < 256 for i in ids)
            return (self._decode(ids) if self.tokenizer is not None or byte_ids else ""), ids
        if request.messages is not None:
            messages = [dict(m) for m in request.messages]
            if self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None):
                text = self.tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, tokenize=False
                )
            else:
                text = render_chat(messages)
            return text, self._encode(text)
        if request.prompt is not None:
            return request.prompt, self._encode(request.prompt)
        raise BackendError("GenerationRequest has no messages, prompt or prompt_ids; set one")

    # -- generation -----------------------------------------------------------------------------
    def _complete(self, request: GenerationRequest, start: float) -> Completion:
        self.requests.append(request)
        prompt_text, prompt_ids = self._prompt(request)
        answer = self._policy(request)
        if isinstance(answer, Completion):
            if not answer.prompt_ids:
                answer.prompt_ids = prompt_ids
            answer.prompt_text = answer.prompt_text or prompt_text
            answer.latency_s = time.perf_counter() - start
            return answer
        if not isinstance(answer, str):
            raise BackendError(
                f"ScriptedBackend policy returned {type(answer).__name__}; it must return a str "
                "or a Completion"
            )
        ids = self._encode(answer)
        finish = "stop"
        text = answer
        if len(ids) > request.sampling.max_new_tokens:
            ids = ids[: max(request.sampling.max_new_tokens, 0)]
            text = self._decode(ids)
            finish = "length"
        text, hit = cut_at_stop(text, request.sampling.stop)
        if hit:
            finish = "stop"
        if self.strip_think:
            text = strip_think(text)
        return Completion(
            text=text,
            prompt_ids=prompt_ids,
            completion_ids=ids,
            logprobs=[0.0] * len(ids),
            finish_reason=finish,
            latency_s=time.perf_counter() - start,
            prompt_text=prompt_text,
        )

    async def generate(self, request: GenerationRequest) -> Completion:
        """Answer one request from the policy (after `latency_s` of simulated work)."""
        start = time.perf_counter()
        if self.latency_s > 0:
            import asyncio

            await asyncio.sleep(self.latency_s)
        return self._complete(request, start)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Answer requests in order; with `latency_s`, sleeps once for the whole batch."""
        start = time.perf_counter()
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        return [self._complete(r, start) for r in requests]

    def close(self) -> None:
        """Nothing to release; present so every backend can be closed the same way."""
