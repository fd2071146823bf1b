"""The OpenAI-compatible HTTP backend: vLLM serve, SGLang, Ollama, llama.cpp and hosted APIs.

Chat requests go to `POST {base_url}/chat/completions`, raw prompts (text or token ids) to
`POST {base_url}/completions`, with per-token logprobs requested (`logprobs`) so evaluation
traces and off-policy corrections have them. Servers that reject logprobs are retried once
without them, and the backend remembers. Token ids are not part of the OpenAI API: with
`vllm_token_ids=True` the backend asks a vLLM server for them (`return_token_ids`,
`return_tokens_as_token_ids`); otherwise `completion_ids` and `prompt_ids` are empty.

Failures:
- connection refused / unknown host: `BackendUnavailable` (a BackendError) at once, naming the
  URL (the server is down, died mid-run, or the URL is wrong; retrying every request would only
  hide that); `memgym.eval.FailFast` stops a run on it even after earlier successes;
- 401/403/404: `BackendUnavailable` (bad key, model or path; every request would fail the same way);
- 429, 5xx, timeouts, dropped connections: retried with exponential backoff (honouring
  `Retry-After`), then `Completion(finish_reason="error")` for that request only;
- other 4xx (e.g. a prompt longer than the context): `Completion(finish_reason="error")`;
- a 200 response without the expected fields: `BackendError` naming the missing field.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from memgym.errors import BackendError, ConfigError
from memgym.llm.base import (
    BackendUnavailable,
    Completion,
    GenerationRequest,
    cut_at_stop,
    strip_think,
)

__all__ = ["OpenAIBackend"]

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_FATAL_STATUS = frozenset({401, 403, 404})


class OpenAIBackend:
    """Backend for any server that speaks the OpenAI chat/completions API.

    Args:
        base_url: the API root, e.g. "http://localhost:8000/v1" (a bare "http://host:port" gets
            "/v1" appended).
        model: the model name the server expects.
        api_key: bearer token; defaults to the OPENAI_API_KEY environment variable (local
            servers usually need none).
        max_concurrency: most requests in flight at once (per event loop).
        timeout_s: per-request timeout in seconds.
        max_retries: retries after the first attempt for 429/5xx/timeouts.
        backoff_s: first retry delay; doubles each retry (with up to 25% jitter).
        max_backoff_s: cap on one retry delay.
        logprobs: ask for per-token logprobs.
        vllm_token_ids: ask a vLLM server for prompt and completion token ids.
        strip_think: remove `<think>...</think>` from the returned text.
        extra_body: extra JSON fields sent with every request (e.g. {"top_k": 20},
            {"chat_template_kwargs": {"enable_thinking": False}}).
        headers: extra HTTP headers.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 32,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        logprobs: bool = True,
        vllm_token_ids: bool = False,
        strip_think: bool = False,
        extra_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"base_url={base_url!r} is not an http(s) URL; e.g. 'http://localhost:8000/v1'"
            )
        if max_concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise ConfigError(
                f"max_concurrency={max_concurrency}, max_retries={max_retries}, "
                f"timeout_s={timeout_s}: need max_concurrency >= 1, max_retries >= 0, timeout_s > 0"
            )
        base_url = base_url.rstrip("/")
        if parts.path in ("", "/"):
            base_url += "/v1"
        self.base_url = base_url
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.logprobs = logprobs
        self.vllm_token_ids = vllm_token_ids
        self.strip_think = strip_think
        self.extra_body = dict(extra_body or {})
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        if self.api_key:
            self.headers["Authorization"] = f"Bearer {self.api_key}"
        # httpx clients and asyncio semaphores belong to one event loop: keep one per loop.
        self._per_loop: weakref.WeakKeyDictionary[Any, tuple[Any, asyncio.Semaphore]] = (
            weakref.WeakKeyDictionary()
        )

    # -- request bodies ---------------------------------------------------------------------------
    def request_body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        """The endpoint path and JSON body for `request` (chat for messages, else completions)."""
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        if s.top_k > 0:  # not in the OpenAI API; vLLM, SGLang and Ollama accept it
            body["top_k"] = s.top_k
        if s.stop:
            body["stop"] = list(s.stop)
        if s.seed is not None:
            body["seed"] = s.seed
        if request.prompt_ids is not None or request.messages is None:
            if request.prompt_ids is not None:
                body["prompt"] = [int(t) for t in request.prompt_ids]
            elif request.prompt is not None:
                body["prompt"] = request.prompt
            else:
                raise ConfigError(
                    "GenerationRequest has no messages, prompt or prompt_ids; set one"
                )
            path = "/completions"
            if self.logprobs:
                body["logprobs"] = 0  # the sampled token's logprob only
        else:
            body["messages"] = [dict(m) for m in request.messages]
            path = "/chat/completions"
            if self.logprobs:
                body["logprobs"] = True
                body["top_logprobs"] = 0
        if self.vllm_token_ids:
            body["return_token_ids"] = True
            body["return_tokens_as_token_ids"] = True
        body.update(self.extra_body)
        return path, body

    # -- response parsing -------------------------------------------------------------------------
    def parse_response(
        self, path: str, data: Any, request: GenerationRequest, latency_s: float
    ) -> Completion:
        """Turn a 200 response body into a Completion; BackendError names a missing field."""
        url = self.base_url + path

        def need(obj: Any, key: str | int, field: str) -> Any:
            try:
                return obj[key]
            except (KeyError, IndexError, TypeError):
                raise BackendError(
                    f"OpenAIBackend: malformed response from {url}: missing field {field}"
                ) from None

        choice = need(need(data, "choices", "choices"), 0, "choices[0]")
        if not isinstance(choice, dict):
            raise BackendError(
                f"OpenAIBackend: malformed response from {url}: choices[0] is not an object"
            )
        if path == "/chat/completions":
            message = need(choice, "message", "choices[0].message")
            text = need(message, "content", "choices[0].message.content")
            text = "" if text is None else text  # null content: e.g. only tool calls
            ids, logprobs = _chat_logprobs(choice.get("logprobs"), url)
        else:
            text = need(choice, "text", "choices[0].text")
            ids, logprobs = _completion_logprobs(choice.get("logprobs"), url)
        if not isinstance(text, str):
            raise BackendError(
                f"OpenAIBackend: malformed response from {url}: the completion text is "
                f"{type(text).__name__}, not a string"
            )
        if isinstance(choice.get("token_ids"), list):
            ids = [int(t) for t in choice["token_ids"]]
        prompt_ids: list[int] = []
        if isinstance(data.get("prompt_token_ids"), list):
            prompt_ids = [int(t) for t in data["prompt_token_ids"]]
        elif isinstance(choice.get("prompt_token_ids"), list):
            prompt_ids = [int(t) for t in choice["prompt_token_ids"]]
        elif request.prompt_ids is not None:
            prompt_ids = list(request.prompt_ids)
        finish = choice.get("finish_reason")
        text, hit = cut_at_stop(text, request.sampling.stop)  # servers differ; make sure
        if self.strip_think:
            text = strip_think(text)
        return Completion(
            text=text,
            prompt_ids=prompt_ids,
            completion_ids=ids,
            logprobs=logprobs,
            finish_reason="length" if finish == "length" and not hit else "stop",
            latency_s=latency_s,
            prompt_text=request.prompt if request.messages is None and request.prompt else "",
        )

    # -- transport --------------------------------------------------------------------------------
    def _loop_state(self) -> tuple[Any, asyncio.Semaphore]:
        import httpx

        loop = asyncio.get_running_loop()
        state = self._per_loop.get(loop)
        if state is None:
            limits = httpx.Limits(max_connections=self.max_concurrency)
            client = httpx.AsyncClient(timeout=self.timeout_s, limits=limits, headers=self.headers)
            state = (client, asyncio.Semaphore(self.max_concurrency))
            self._per_loop[loop] = state
        return state

    async def generate(self, request: GenerationRequest) -> Completion:
        """Send one request (with retries); concurrency is bounded by `max_concurrency`."""
        import httpx

        start = time.perf_counter()
        try:
            path, body = self.request_body(request)
        except ConfigError as exc:
            return Completion("", finish_reason="error", error=str(exc))
        client, semaphore = self._loop_state()
        url = self.base_url + path
        problem, retry_after, attempt = "", None, 0
        async with semaphore:
            while attempt <= self.max_retries:
                if attempt:
                    await asyncio.sleep(self._delay(attempt, retry_after))
                attempt += 1
                try:
                    response = await client.post(url, json=body)
                except httpx.ConnectError as exc:
                    raise BackendUnavailable(
                        f"OpenAIBackend: cannot connect to {url} ({exc}). Is the server running "
                        "and is base_url right?"
                    ) from exc
                except (
                    httpx.TimeoutException,
                    httpx.NetworkError,
                    httpx.RemoteProtocolError,
                ) as exc:
                    problem, retry_after = f"{type(exc).__name__}: {exc}", None
                    continue
                status = response.status_code
                if status == 200:
                    try:
                        data = response.json()
                    except ValueError as exc:
                        raise BackendError(
                            f"OpenAIBackend: {url} returned 200 with a body that is not JSON: "
                            f"{response.text[:200]!r}"
                        ) from exc
                    return self.parse_response(path, data, request, time.perf_counter() - start)
                detail = response.text[:500]
                if status in _FATAL_STATUS:
                    raise BackendUnavailable(
                        f"OpenAIBackend: {url} answered HTTP {status} for model {self.model!r}: "
                        f"{detail}. Check base_url, model and api_key (OPENAI_API_KEY)."
                    )
                if status == 400 and "logprobs" in body and "logprob" in detail.lower():
                    # The server does not do logprobs: stop asking (for every later request too).
                    self.logprobs = False
                    path, body = self.request_body(request)
                    attempt -= 1  # not a retry
                    continue
                if status in _RETRY_STATUS:
                    problem = f"HTTP {status}: {detail}"
                    header = response.headers.get("retry-after", "")
                    retry_after = float(header) if header.replace(".", "", 1).isdigit() else None
                    continue
                return Completion(
                    "",
                    finish_reason="error",
                    error=f"HTTP {status} from {url}: {detail}",
                    latency_s=time.perf_counter() - start,
                )
        return Completion(
            "",
            finish_reason="error",
            error=f"{url} failed after {attempt} attempts: {problem}",
            latency_s=time.perf_counter() - start,
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry `attempt` (1-based): the server's Retry-After, else backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        delay = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return delay * (1 + 0.25 * random.random())

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Send many requests concurrently (blocking) and return them in order."""

        async def run() -> list[Completion]:
            try:
                return list(await asyncio.gather(*(self.generate(r) for r in requests)))
            finally:
                await self.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        # Called from inside an event loop (a notebook, an async agent): run on a fresh loop in
        # a helper thread rather than failing with "asyncio.run() cannot be called ...".
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(_capture(run)))
        thread.start()
        thread.join()
        outcome = result[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        loop = asyncio.get_running_loop()
        state = self._per_loop.pop(loop, None)
        if state is not None:
            await state[0].aclose()

    def close(self) -> None:
        """Forget the per-loop HTTP clients (their connections close with their loops)."""
        self._per_loop.clear()


def _capture(run: Any) -> Any:
    try:
        return asyncio.run(run())
    except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
        return exc


def _token_id(token: Any) -> int | None:
    """vLLM's `return_tokens_as_token_ids` renders tokens as "token_id:123"."""
    if isinstance(token, str) and token.startswith("token_id:"):
        try:
            return int(token[len("token_id:") :])
        except ValueError:
            return None
    return None


def _chat_logprobs(block: Any, url: str) -> tuple[list[int], list[float]]:
    if not block:
        return [], []
    content = block.get("content") if isinstance(block, dict) else None
    if content is None:
        return [], []
    if not isinstance(content, list):
        raise BackendError(
            f"OpenAIBackend: malformed response from {url}: "
            "choices[0].logprobs.content is not a list"
        )
    logprobs: list[float] = []
    ids: list[int] = []
    for i, entry in enumerate(content):
        if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), (int, float)):
            raise BackendError(
                f"OpenAIBackend: malformed response from {url}: missing field "
                f"choices[0].logprobs.content[{i}].logprob"
            )
        logprobs.append(float(entry["logprob"]))
        tid = _token_id(entry.get("token"))
        if tid is not None:
            ids.append(tid)
    return (ids if len(ids) == len(logprobs) else []), logprobs


def _completion_logprobs(block: Any, url: str) -> tuple[list[int], list[float]]:
    if not block:
        return [], []
    values = block.get("token_logprobs") if isinstance(block, dict) else None
    if not isinstance(values, list):
        raise BackendError(
            f"OpenAIBackend: malformed response from {url}: missing field "
            "choices[0].logprobs.token_logprobs"
        )
    logprobs = [float(v) if v is not None else 0.0 for v in values]
    ids = [t for t in (_token_id(x) for x in block.get("tokens") or []) if t is not None]
    return (ids if len(ids) == len(logprobs) else []), logprobs
