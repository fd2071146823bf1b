"""The OpenAI-compatible HTTP backend: vLLM serve, SGLang, Ollama, llama.cpp and hosted APIs.

Chat requests go to `POST {base_url}/chat/completions`, raw prompts (text or token ids) to
`POST {base_url}/completions`, with per-token logprobs requested (`logprobs`) so evaluation
traces and off-policy corrections have them. Token ids are not part of the OpenAI API: a vLLM
server returns them when asked (`return_token_ids`, `return_tokens_as_token_ids`); otherwise
`completion_ids` and `prompt_ids` are empty and token counts become estimates.

Servers differ in what they take, so the backend finds out and records it in `capabilities`
(a `ServerCapabilities`): `probe()` sends two tiny requests (memgym eval does this at start-up),
and every response teaches it too. A field the server rejects with HTTP 400/422 naming it
(`transformers serve` answers 422 "Unexpected fields in the request: {'top_k'}") is dropped and
the request re-sent at once, and never sent again; logprobs or token ids asked for but absent
from a 200 response (`transformers serve` drops `logprobs` silently) are recorded as missing and
no longer asked for; a server that refuses token-id prompts ("prompt must be a string") fails
those requests with an error that says so. `require_training_capabilities(backend)` refuses a
backend that cannot give the token ids and logprobs GRPO training needs.

Measured against `transformers serve` (transformers 5.24): chat and text completions, `stop`,
`seed`, `top_p` work; `logprobs` is dropped; `top_k` and the vLLM token-id fields get 422;
token-id prompts get 400. vLLM serve offers all of them.

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
import json
import logging
import os
import random
import re
import time
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from memgym._async import at_loop_exit, run_sync
from memgym.errors import BackendError, ConfigError
from memgym.llm.base import (
    BackendUnavailable,
    Completion,
    GenerationRequest,
    SamplingParams,
    cut_at_stop,
    strip_think,
)

__all__ = ["OpenAIBackend", "ServerCapabilities", "require_training_capabilities"]

logger = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_FATAL_STATUS = frozenset({401, 403, 404})
_RESEND = object()
"""`_on_error_status`'s answer: send the request again without the fields the server rejected."""

_OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "logprobs": ("logprobs", "top_logprobs"),
    "token_ids": ("return_token_ids", "return_tokens_as_token_ids"),
    "top_k": ("top_k",),
    "seed": ("seed",),
}
"""The request fields outside the core OpenAI API (or not taken by every server), by the
capability they ask for: a server that rejects one of them gets requests without the group."""

_CONSEQUENCE = {
    "logprobs": "turns have no logprobs (no off-policy correction or training on this backend)",
    "token_ids": "turns have no prompt or completion token ids, so token counts are estimates "
                 "(tokens_estimated in the metrics) and training on this backend is impossible",
    "top_k": "recipes' top_k is not applied (sampling uses temperature and top_p only)",
    "prompt_ids": "requests with token-id prompts (prompt_ids) fail",
    "seed": "sampling is not seeded",
}
_TRAINING_NEEDS = ("logprobs", "token_ids")


@dataclass
class ServerCapabilities:
    """What an OpenAI-compatible server was found to offer; None means not known yet.

    Attributes:
        logprobs: returns per-token logprobs of the sampled tokens.
        token_ids: returns prompt and completion token ids (vLLM's `return_token_ids`).
        top_k: accepts `top_k` (not in the OpenAI API).
        prompt_ids: accepts token-id prompts on /completions.
        seed: accepts `seed`.
        notes: how each capability was found out (the server's answer, shortened).
    """

    logprobs: bool | None = None
    token_ids: bool | None = None
    top_k: bool | None = None
    prompt_ids: bool | None = None
    seed: bool | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def missing(self) -> list[str]:
        """The capabilities known to be absent."""
        return [name for name in _CONSEQUENCE if getattr(self, name) is False]

    def missing_for_training(self) -> list[str]:
        """What GRPO training needs (token ids and their logprobs) and is not known present."""
        return [name for name in _TRAINING_NEEDS if getattr(self, name) is not True]

    def warnings(self) -> list[str]:
        """One line per missing capability: what is missing, how it was found, what it costs."""
        return [f"the server offers no {name} ({self.notes.get(name, 'not offered')}): "
                f"{_CONSEQUENCE[name]}" for name in self.missing()]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record (as written to summary.json's `backend_capabilities`)."""
        return {**asdict(self), "missing": self.missing(), "warnings": self.warnings()}


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
        vllm_token_ids: ask a vLLM server for prompt and completion token ids: True always,
            False never, None (default) when `probe()` found that the server returns them.
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
        vllm_token_ids: bool | None = None,
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
        self.capabilities = ServerCapabilities()
        self._omit: set[str] = set()  # capabilities whose fields are no longer sent
        self._probing = False
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
        if s.top_k > 0 and "top_k" not in self._omit:  # not in the OpenAI API; vLLM,
            body["top_k"] = s.top_k  # SGLang and Ollama accept it
        if s.stop:
            body["stop"] = list(s.stop)
        if s.seed is not None and "seed" not in self._omit:
            body["seed"] = s.seed
        logprobs = self.logprobs and "logprobs" not in self._omit
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
            if logprobs:
                body["logprobs"] = 0  # the sampled token's logprob only
        else:
            body["messages"] = [dict(m) for m in request.messages]
            path = "/chat/completions"
            if logprobs:
                body["logprobs"] = True
                body["top_logprobs"] = 0
        if self._ask_token_ids():
            body["return_token_ids"] = True
            body["return_tokens_as_token_ids"] = True
        body.update(self.extra_body)
        return path, body

    def _ask_token_ids(self) -> bool:
        if "token_ids" in self._omit or self.vllm_token_ids is False:
            return False
        return bool(self.vllm_token_ids or self._probing or self.capabilities.token_ids)

    # -- capabilities -----------------------------------------------------------------------------
    def _learn(self, name: str, offered: bool, note: str) -> None:
        """Record a capability; one that is absent is no longer asked for (and is logged once)."""
        if getattr(self.capabilities, name) is offered:
            return
        if getattr(self.capabilities, name) is True and not offered:
            return  # offered once: a later response without it (e.g. an empty one) is no proof
        setattr(self.capabilities, name, offered)
        self.capabilities.notes[name] = note
        if not offered:
            self._omit.add(name)
        if not offered and not self._probing:  # the prober's caller reports what it found
            logger.warning("OpenAIBackend %s: the server offers no %s (%s): %s", self.base_url,
                           name, note, _CONSEQUENCE[name])

    def _rejected(self, status: int, detail: str, body: dict[str, Any]) -> list[str]:
        """The capabilities whose fields in `body` a 400/422 answer names as unsupported."""
        if status not in (400, 422):
            return []
        found = []
        for name, fields in _OPTIONAL_FIELDS.items():
            sent = [f for f in fields if f in body]
            if any(re.search(rf"\b{f}\b", detail) for f in sent) or (
                name == "logprobs" and sent and "logprob" in detail.lower()
            ):
                found.append(name)
        return found

    def _observe(self, body: dict[str, Any], data: Any) -> None:
        """Learn from a 200 response what the server did with the optional fields sent."""
        choice = data["choices"][0] if isinstance(data, dict) and data.get("choices") else {}
        choice = choice if isinstance(choice, dict) else {}
        if "logprobs" in body:
            if choice.get("logprobs") is not None:
                self._learn("logprobs", True, "returned")
            else:
                self._learn("logprobs", False, "asked for; the response had none (dropped)")
        block = choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else {}
        entries = (block.get("content") or []) + (block.get("tokens") or [])
        has_ids = (isinstance(choice.get("token_ids"), list)
                   or isinstance(data.get("prompt_token_ids"), list)
                   or isinstance(choice.get("prompt_token_ids"), list)
                   or any(_token_id(e.get("token") if isinstance(e, dict) else e) is not None
                          for e in entries[:1]))
        if has_ids:
            self._learn("token_ids", True, "returned")
        elif "return_token_ids" in body:
            self._learn("token_ids", False, "asked for (return_token_ids); the response had none")
        elif self.capabilities.token_ids is None:
            self._learn("token_ids", False, "not asked for (vllm_token_ids=False): the OpenAI "
                        "API has none")
        for name in ("top_k", "seed"):
            if name in body:
                self._learn(name, True, "accepted")
        if isinstance(body.get("prompt"), list):
            self._learn("prompt_ids", True, "accepted")

    def probe(self) -> ServerCapabilities:
        """Find out what the server offers with two tiny requests; returns `capabilities`.

        A chat request with every optional field (logprobs, top_k, seed and, unless
        vllm_token_ids=False, the vLLM token-id fields), then a one-token completion of a
        token-id prompt. Raises BackendError when the chat request fails (the server is down,
        or the model name is wrong), so a run can stop before it starts.
        """
        chat = GenerationRequest(messages=({"role": "user", "content": "Say OK."},),
                                 sampling=SamplingParams(max_new_tokens=2, temperature=0.0,
                                                         top_k=1, seed=0))
        by_ids = GenerationRequest(prompt_ids=(0,), sampling=SamplingParams(
            max_new_tokens=1, temperature=0.0))

        async def run() -> ServerCapabilities:
            self._probing = True
            try:
                first = await self.generate(chat)
                if first.finish_reason == "error":
                    raise BackendError(f"OpenAIBackend: the capability probe's chat request to "
                                       f"{self.base_url} failed: {first.error}")
                try:
                    second = await self.generate(by_ids)
                except BackendUnavailable as exc:  # e.g. 404: no /completions endpoint
                    self._learn("prompt_ids", False, f"the probe failed: {exc}"[:300])
                else:
                    if second.finish_reason == "error" and self.capabilities.prompt_ids is None:
                        self._learn("prompt_ids", False, f"the probe failed: {second.error}"[:300])
                return self.capabilities
            finally:
                self._probing = False
                await self.aclose()

        return run_sync(run())

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
            # A loop memgym made (run_sync, a BackgroundLoop) closes the client with it; one
            # per call of run_sync once leaked a client (and its sockets) per frozen-reader read.
            at_loop_exit(self.aclose)
        return state

    async def generate(self, request: GenerationRequest) -> Completion:
        """Send one request (with retries); concurrency is bounded by `max_concurrency`."""
        import httpx  # noqa: F401  (fail here, as before any request, if it is missing)

        start = time.perf_counter()
        prepared = self._prepare(request)
        if isinstance(prepared, Completion):
            return prepared
        path, body = prepared
        client, semaphore = self._loop_state()
        url = self.base_url + path
        problem, retry_after, attempt = "", None, 0
        async with semaphore:
            while attempt <= self.max_retries:
                if attempt:
                    await asyncio.sleep(self._delay(attempt, retry_after))
                attempt += 1
                response = await self._post(client, url, body)
                if isinstance(response, str):  # a transient network error: retry
                    problem, retry_after = response, None
                    continue
                if response.status_code == 200:
                    return self._completion(response, url, path, body, request, start)
                outcome = self._on_error_status(response, url, body, request, start)
                if outcome is _RESEND:
                    path, body = self.request_body(request)
                    attempt -= 1  # not a retry
                elif isinstance(outcome, Completion):
                    return outcome
                else:
                    problem, retry_after = outcome
        return Completion(
            "",
            finish_reason="error",
            error=f"{url} failed after {attempt} attempts: {problem}",
            latency_s=time.perf_counter() - start,
        )

    def _prepare(self, request: GenerationRequest) -> tuple[str, dict[str, Any]] | Completion:
        """The endpoint path and body for `request`, or the error Completion if it cannot go."""
        if request.prompt_ids is not None and self.capabilities.prompt_ids is False:
            return Completion("", finish_reason="error", error=(
                f"OpenAIBackend: {self.base_url} takes no token-id prompts "
                f"({self.capabilities.notes.get('prompt_ids')}); send prompt= text or messages="))
        try:
            return self.request_body(request)
        except ConfigError as exc:
            return Completion("", finish_reason="error", error=str(exc))

    async def _post(self, client: Any, url: str, body: dict[str, Any]) -> Any:
        """POST `body`: the response, or the text of a transient network error (to retry)."""
        import httpx

        try:
            return await client.post(url, json=body)
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
            return f"{type(exc).__name__}: {exc}"

    def _completion(self, response: Any, url: str, path: str, body: dict[str, Any],
                    request: GenerationRequest, start: float) -> Completion:
        """Parse a 200 response into a Completion, learning what the server did with `body`."""
        try:
            data = response.json()
        except ValueError as exc:
            raise BackendError(
                f"OpenAIBackend: {url} returned 200 with a body that is not JSON: "
                f"{response.text[:200]!r}"
            ) from exc
        completion = self.parse_response(path, data, request, time.perf_counter() - start)
        self._observe(body, data)
        return completion

    def _on_error_status(self, response: Any, url: str, body: dict[str, Any],
                         request: GenerationRequest, start: float
                         ) -> Completion | tuple[str, float | None] | object:
        """Decide what a non-200 answer means; raises BackendUnavailable on a fatal status.

        Returns `_RESEND` (send again without the fields it rejected), (problem, retry_after) to
        retry, or the error Completion to return.
        """
        status = response.status_code
        detail = response.text[:500]
        if status in _FATAL_STATUS:
            raise BackendUnavailable(
                f"OpenAIBackend: {url} answered HTTP {status} for model {self.model!r}: "
                f"{detail}. Check base_url, model and api_key (OPENAI_API_KEY)."
            )
        rejected = self._rejected(status, detail, body)
        if rejected:
            # The server does not take these fields: send this request and every later
            # one without them.
            for name in rejected:
                self._learn(name, False, f"rejected: HTTP {status} {_brief(detail)}")
            return _RESEND
        if (status in (400, 422) and isinstance(body.get("prompt"), list)
                and re.search(r"prompt.*\b(string|str|text)\b", detail, re.IGNORECASE)):
            self._learn("prompt_ids", False, f"rejected: HTTP {status} {_brief(detail)}")
            return Completion("", finish_reason="error", error=(
                f"OpenAIBackend: {url} takes no token-id prompts (HTTP {status}: "
                f"{detail}); send prompt= text or messages="),
                latency_s=time.perf_counter() - start)
        if status in _RETRY_STATUS:
            header = response.headers.get("retry-after", "")
            retry_after = float(header) if header.replace(".", "", 1).isdigit() else None
            return f"HTTP {status}: {detail}", retry_after
        return Completion(
            "",
            finish_reason="error",
            error=f"HTTP {status} from {url}: {detail}",
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

        return run_sync(run())

    async def aclose(self) -> None:
        """Close the HTTP client of the running event loop."""
        loop = asyncio.get_running_loop()
        state = self._per_loop.pop(loop, None)
        if state is not None:
            await state[0].aclose()

    def close(self) -> None:
        """Forget the per-loop HTTP clients (their connections close with their loops)."""
        self._per_loop.clear()


def require_training_capabilities(backend: Any) -> None:
    """Refuse a backend that cannot give what GRPO training needs: token ids and their logprobs.

    In-process backends (transformers, vLLM) always give both and pass. An OpenAI-compatible
    backend (also inside a `FailFast` wrapper) is probed if its capabilities are not known yet.

    Raises:
        ConfigError: naming what the server lacks and what to use instead.
    """
    caps = getattr(backend, "capabilities", None)
    if not isinstance(caps, ServerCapabilities):
        return
    if caps.missing_for_training():
        caps = backend.probe()
    missing = caps.missing_for_training()
    if missing:
        found = "; ".join(f"{name}: {caps.notes.get(name, 'unknown')}" for name in missing)
        raise ConfigError(
            f"training needs the sampled token ids and their logprobs, and the server at "
            f"{getattr(backend, 'base_url', '?')} offers no {' and no '.join(missing)} ({found}). "
            "Train with the transformers or vllm backend (generation_backend=), or serve the "
            "model with vLLM and pass vllm_token_ids=True.")


def _brief(detail: str) -> str:
    """A server's error message without its JSON wrapper ({"detail": ...} or {"error": ...})."""
    try:
        data = json.loads(detail)
    except ValueError:
        return detail[:160]
    if isinstance(data, dict):
        error = data.get("error")
        data = data.get("detail") or (error.get("message") if isinstance(error, dict) else error)
    return str(data or detail)[:160]


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
