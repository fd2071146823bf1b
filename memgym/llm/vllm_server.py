"""Rollouts from running vLLM servers, with the trained weights pushed to them over NCCL.

    # on the generation node (one server per GPU or per tensor-parallel group)
    trl vllm-serve --model Qwen/Qwen2.5-7B-Instruct --port 8000
    # in the trainer
    backend = VLLMServerBackend(["http://gen-node:8000", "http://gen-node:8001"], tokenizer)

The client is TRL's own `VLLMClient` (`trl.generation.vllm_client`, TRL >= 1.16; `trl vllm-serve`
runs vLLM's server in dev mode with the NCCL weight-transfer engine): memgym writes no second
client. What it speaks, as TRL documents it:
  - generation: `POST /v1/completions` with token-id prompts, `return_token_ids` and
    `return_tokens_as_token_ids`, `logprobs=0` (the sampled token's logprob, processed, i.e.
    after temperature: `--logprobs-mode processed_logprobs`); the answer's `prompt_token_ids`,
    `token_ids` and logprobs become the Completion's ids and logprobs (token in, token out);
  - weights: `/init_weight_transfer_engine` once per server (an NCCL group with the trainer as
    rank 0), then per sync `/start_weight_update`, `/update_weights` (names, dtypes, shapes,
    the tensors broadcast over NCCL), `/finish_weight_update`, then `/reset_prefix_cache` (the
    cached prefixes were computed with the old weights).

Several servers: one client per server behind `memgym.llm.balance.LoadBalancedBackend` (each call
to the server with the fewest in flight). A dead server fails its call at once with
`BackendUnavailable` naming it: TRL's session retries refused connections five times with
backoff (about a minute); this backend mounts an adapter that retries timeouts and 5xx but not
refused connections, so the trainer or `memgym eval`'s FailFast reports the dead server
instead of stalling.

Prompts are tokenised here (the trainer's tokenizer) and sent as ids. The server does not say
why a completion ended: `finish_reason` is "length" when it has `max_new_tokens` tokens, else
"stop". Weight sync needs CUDA on the trainer (NCCL) and is GPU-only; memgym's tests exercise
the HTTP side against a protocol fake.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from memgym._async import run_sync
from memgym.errors import BackendError, ConfigError
from memgym.llm.balance import LoadBalancedBackend
from memgym.llm.base import BackendUnavailable, Completion, GenerationRequest, cut_at_stop

__all__ = ["ServerClient", "VLLMServerBackend", "full_weights_for_vllm", "trl_client"]


def trl_client(base_url: str, group_port: int, connection_timeout: float) -> Any:
    """TRL's VLLMClient for one server (waits up to `connection_timeout` s for it to answer).

    Raises:
        ConfigError: TRL is missing, or too old to have `trl.generation.vllm_client`.
        BackendUnavailable: the server does not answer.
    """
    try:
        from trl.generation.vllm_client import VLLMClient
    except ImportError as exc:
        raise ConfigError("the vllm-server backend uses TRL's VLLMClient: pip install "
                          f"'trl>=1.16' 'trl[vllm]' ({exc})") from exc
    try:
        return VLLMClient(base_url=base_url, group_port=group_port,
                          connection_timeout=connection_timeout)
    except ImportError as exc:
        raise ConfigError(f"TRL's VLLMClient needs vLLM installed on the trainer too: {exc}") \
            from exc
    except Exception as exc:  # requests' ConnectionError, TRL's own ConnectionError
        raise BackendUnavailable(
            f"vLLM server {base_url} does not answer ({type(exc).__name__}: {exc}); start it with "
            "`trl vllm-serve --model MODEL --port PORT` (or VLLM_SERVER_DEV_MODE=1 vllm serve "
            "MODEL --weight-transfer-config '{\"backend\": \"nccl\"}' --logprobs-mode "
            "processed_logprobs) and check the URL") from exc


def _fail_fast_session(client: Any, pool_size: int) -> None:
    """Retry 5xx and read timeouts on the client's session, but never a refused connection."""
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=3, connect=0, read=2, status=3, status_forcelist=[500, 502, 503],
                  backoff_factor=0.5, allowed_methods=["POST", "GET"])
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=pool_size)
    client.session.mount("http://", adapter)
    client.session.mount("https://", adapter)


class ServerClient:
    """One vLLM server as an LLMBackend: TRL's client, called from a thread pool.

    Args:
        client: a `VLLMClient` (or anything with its `generate` signature and `base_url`).
        tokenizer: the trainer's tokenizer (prompts are sent as its token ids).
        max_concurrency: requests in flight to this server at once (vLLM batches them).
        chat_template_kwargs: extra arguments of the chat template (e.g. enable_thinking).
    """

    name = "vllm-server"

    def __init__(self, client: Any, tokenizer: Any, *, max_concurrency: int = 64,
                 chat_template_kwargs: dict[str, Any] | None = None):
        self.client = client
        self.tokenizer = tokenizer
        self.base_url = str(client.base_url)
        self.chat_template_kwargs = chat_template_kwargs
        self.pool = ThreadPoolExecutor(max_workers=max_concurrency,
                                       thread_name_prefix="memgym-vllm-server")

    def _call(self, ids: list[int], request: GenerationRequest) -> dict[str, Any]:
        s = request.sampling
        extra: dict[str, Any] = {}
        if s.seed is not None:
            extra["seed"] = s.seed
        if s.stop:
            extra["stop"] = list(s.stop)
        return self.client.generate([ids], n=1, temperature=s.temperature, top_p=s.top_p,
                                    top_k=s.top_k if s.top_k > 0 else -1,
                                    max_tokens=s.max_new_tokens, logprobs=0,
                                    generation_kwargs=extra)

    async def generate(self, request: GenerationRequest) -> Completion:
        """Complete one request on this server.

        Raises:
            BackendUnavailable: the server refused the connection (it is down).
        """
        import requests

        from memgym.llm.hf import encode_prompt

        start = time.perf_counter()
        ids, text = encode_prompt(self.tokenizer, request, self.chat_template_kwargs)
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(self.pool, functools.partial(self._call, ids, request))
        except requests.exceptions.ConnectionError as exc:
            raise BackendUnavailable(f"vLLM server {self.base_url} refused the connection "
                                     f"({exc}); is it still running?") from exc
        except Exception as exc:  # noqa: BLE001 - a bad answer fails this request only
            return Completion("", prompt_ids=ids, finish_reason="error", prompt_text=text,
                              error=f"vLLM server {self.base_url}: {type(exc).__name__}: {exc}",
                              latency_s=time.perf_counter() - start)
        return self._completion(out, ids, text, request, start)

    def _completion(self, out: dict[str, Any], ids: list[int], text: str,
                    request: GenerationRequest, start: float) -> Completion:
        try:
            completion_ids = [int(t) for t in out["completion_ids"][0]]
            logprobs = _sampled_logprobs(out, completion_ids)
            prompt_ids = [int(t) for t in out["prompt_ids"][0]]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise BackendError(f"vLLM server {self.base_url}: the /v1/completions answer lacks "
                               f"token ids or logprobs ({type(exc).__name__}: {exc}); serve with "
                               "`trl vllm-serve`, which asks vLLM for them") from exc
        if prompt_ids != ids:
            return Completion("", prompt_ids=ids, finish_reason="error", prompt_text=text,
                              error=f"vLLM server {self.base_url} saw other prompt ids than sent "
                                    f"({len(prompt_ids)} vs {len(ids)} tokens): does it serve "
                                    "the trainer's model and tokenizer?",
                              latency_s=time.perf_counter() - start)
        decoded = self.tokenizer.decode(completion_ids, skip_special_tokens=True)
        decoded, _ = cut_at_stop(decoded, request.sampling.stop)
        finish = "length" if len(completion_ids) >= request.sampling.max_new_tokens else "stop"
        return Completion(decoded, prompt_ids=ids, completion_ids=completion_ids,
                          logprobs=logprobs, finish_reason=finish, prompt_text=text,
                          latency_s=time.perf_counter() - start)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Complete many requests (blocking), concurrently, in order."""
        async def run() -> list[Completion]:
            return list(await asyncio.gather(*(self.generate(r) for r in requests)))

        return run_sync(run())

    def close(self) -> None:
        """Stop the thread pool and leave the NCCL group."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.client, "close_communicator", None)
        if callable(close):
            close()


def _sampled_logprobs(out: dict[str, Any], completion_ids: list[int]) -> list[float]:
    """The logprob of each sampled token from TRL's (logprobs, logprob_token_ids) lists."""
    rows, row_ids = out["logprobs"][0], out["logprob_token_ids"][0]
    picked = []
    for token, lps, tids in zip(completion_ids, rows, row_ids, strict=True):
        value = next((lp for lp, t in zip(lps, tids) if t == token), None)
        picked.append(float("nan") if value is None else float(value))
    return picked


class VLLMServerBackend(LoadBalancedBackend):
    """Generation through one or more `trl vllm-serve` servers; `sync_weights` pushes weights.

    Args:
        base_url: one server URL ("http://host:8000") or several (load-balanced).
        tokenizer: the trainer's tokenizer.
        connection_timeout: seconds to wait for each server at start-up (0: it must be up).
        group_port: the NCCL port of the first server's weight group (+1 per further server).
        max_concurrency: requests in flight per server.
        chat_template_kwargs: extra chat-template arguments.
        client_factory: builds the client of one server, `(url, group_port, timeout) -> client`
            (default `trl_client`; tests pass a factory for a protocol fake).
        send_weights: whether `sync_weights` streams to the servers (True on the trainer's rank
            0; the other ranks of a sharded model only take part in the gathers).

    Raises:
        BackendUnavailable: a server does not answer at start-up (naming it).
    """

    name = "vllm-server"

    def __init__(self, base_url: str | Sequence[str], tokenizer: Any, *,
                 connection_timeout: float = 0.0, group_port: int = 51216,
                 max_concurrency: int = 64, chat_template_kwargs: dict[str, Any] | None = None,
                 client_factory: Callable[[str, int, float], Any] | None = None,
                 send_weights: bool = True):
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ConfigError("vllm_server_urls is empty: give the URL of at least one "
                              "`trl vllm-serve` server, e.g. http://127.0.0.1:8000")
        factory = client_factory or trl_client
        servers = []
        for i, url in enumerate(urls):
            client = factory(url, group_port + i, connection_timeout)
            if hasattr(client, "session"):
                _fail_fast_session(client, max_concurrency)
            servers.append(ServerClient(client, tokenizer, max_concurrency=max_concurrency,
                                        chat_template_kwargs=chat_template_kwargs))
        super().__init__(servers, where=urls)
        self.tokenizer = tokenizer
        self.send_weights = send_weights
        self.synced = 0

    def sync_weights(self, model: Any) -> int:
        """Push `model`'s weights (LoRA folded in, sharded ones gathered) to every server.

        Under FSDP every rank must call it (the gathers are collectives); only the one built
        with `send_weights=True` (rank 0) streams to the servers. Returns the tensors sent per
        server (0 on the other ranks).

        Raises:
            BackendError: the trainer has no CUDA device (NCCL), or a server has no
                weight-transfer engine (not started through `trl vllm-serve`).
        """
        names = [(n, str(t.dtype).removeprefix("torch."), list(t.shape))
                 for n, t in _weight_specs(model)]
        if not self.send_weights:
            for _ in full_weights_for_vllm(model):  # take part in the gathers, send nothing
                pass
            return 0
        import torch

        if not torch.cuda.is_available():
            raise BackendError("sync_weights to a vLLM server goes over NCCL and needs a CUDA "
                               "device on the trainer; on CPU the servers keep their weights "
                               "(generation still works)")
        for server in self.backends:
            client = server.client
            try:
                if getattr(client, "communicator", None) is None:
                    client.init_communicator(device=torch.cuda.current_device())
                with client.weight_update():
                    client.update_named_params(names, full_weights_for_vllm(model))
                client.reset_prefix_cache()
            except (NotImplementedError, RuntimeError) as exc:
                raise BackendError(f"sync_weights to {server.base_url}: {exc}") from exc
        self.synced += 1
        return len(names)


def _full(tensor: Any) -> Any:
    """The whole tensor of a parameter: a DTensor shard (FSDP2) is gathered, others as they are."""
    full = getattr(tensor, "full_tensor", None)
    return full() if callable(full) else tensor


def _weight_specs(model: Any) -> list[tuple[str, Any]]:
    """(vLLM name, a tensor of the full shape and dtype) of every weight sent, without gathering."""
    from memgym.llm.vllm import vllm_weight_name

    specs = []
    for name, param in model.named_parameters():
        target = vllm_weight_name(name)
        if target is not None:
            meta = param.data
            shape = getattr(meta, "shape", None)
            specs.append((target, _Spec(meta.dtype, tuple(shape))))
    return specs


class _Spec:
    """A dtype and the global shape (a DTensor's `shape` is already the global one)."""

    def __init__(self, dtype: Any, shape: tuple[int, ...]):
        self.dtype, self.shape = dtype, shape


def full_weights_for_vllm(model: Any) -> Iterator[tuple[str, Any]]:
    """Yield (vLLM name, full tensor) one parameter at a time, LoRA folded in, out of place.

    Sharded parameters (FSDP2 DTensors) are gathered one at a time (`full_tensor()`), so no
    device ever holds more than one full parameter beyond its shard: the whole model is never
    gathered on one device. A LoRA layer's weight is base + B @ A * scaling from the gathered
    pieces. Every rank must iterate it in the same order (the gathers are collectives).
    """
    import torch

    from memgym.llm.vllm import _active_adapters, _lora_layers, vllm_weight_name

    layers = _lora_layers(model)
    for name, param in model.named_parameters():
        target = vllm_weight_name(name)
        if target is None:
            continue
        with torch.no_grad():
            tensor = _full(param.data)
            layer = layers.get(name)
            if layer is not None:
                for adapter in _active_adapters(layer):
                    tensor = tensor + _delta(layer, adapter).to(tensor.dtype)
        yield target, tensor
        del tensor


def _delta(layer: Any, adapter: str) -> Any:
    """A LoRA layer's weight delta B @ A * scaling; from gathered pieces when they are sharded."""
    a, b = layer.lora_A[adapter].weight, layer.lora_B[adapter].weight
    if not hasattr(a.data, "full_tensor"):
        return layer.get_delta_weight(adapter)  # peft's own (handles fan_in_fan_out, ...)
    delta = _full(b.data) @ _full(a.data) * layer.scaling[adapter]
    return delta.T if getattr(layer, "fan_in_fan_out", False) else delta
