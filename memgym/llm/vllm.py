"""The vLLM backend: vLLM's offline engine (`vllm.LLM`) behind memgym's async protocol.

Concurrent `await generate(request)` calls are gathered by a `MicroBatcher` into one
`llm.generate` call (vLLM then schedules them with continuous batching and prefix caching).
Prompts are tokenised here with vLLM's own tokenizer and sent as token ids, so `prompt_ids` are
exactly what the model saw (token in, token out). Logprobs are requested for the sampled token
(`logprobs=0`) with the engine in `logprobs_mode="processed_logprobs"` where vLLM supports it, so
they are the log-probabilities under the distribution actually sampled from (after temperature,
top-k and top-p), as the trainer's importance ratio needs.

For RL, `sync_weights(model)` copies a trainer's weights (a transformers model, or a peft model
whose LoRA is folded into the copied weights) into the running engine; `load_lora(path)` makes
later requests use a saved LoRA adapter instead. Weight sync needs the engine in this process, so the
backend sets `VLLM_ENABLE_V1_MULTIPROCESSING=0` unless you set it yourself.

Needs `pip install memgym[vllm]` and a CUDA GPU.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from memgym.errors import BackendError, ConfigError
from memgym.llm.base import Completion, GenerationRequest, SamplingParams, strip_think
from memgym.llm.batching import MicroBatcher

__all__ = [
    "VLLMBackend",
    "completion_from_vllm",
    "named_weights_for_vllm",
    "vllm_sampling_kwargs",
]

_INSTALL_HINT = (
    "VLLMBackend needs vLLM and a CUDA GPU: pip install memgym[vllm] (on a machine with an "
    "NVIDIA GPU). Without a GPU, use the 'transformers' backend."
)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise BackendError(f"{_INSTALL_HINT} ({exc})") from exc
    return vllm


# ----------------------------------------------------------------------------------------------
# Pure conversions (tested without vLLM)
# ----------------------------------------------------------------------------------------------
def vllm_sampling_kwargs(sampling: SamplingParams, *, logprobs: bool = True) -> dict[str, Any]:
    """Keyword arguments for `vllm.SamplingParams` that match memgym's `SamplingParams`."""
    return {
        "n": 1,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k if sampling.top_k > 0 else -1,  # -1: off in every vLLM version
        "max_tokens": sampling.max_new_tokens,
        "stop": list(sampling.stop) or None,
        "seed": sampling.seed,
        "logprobs": 0 if logprobs else None,  # 0: only the sampled token's logprob
    }


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


def _lora_deltas(model: Any) -> dict[str, Any]:
    """`{"<module>.base_layer.weight": delta}` for every peft LoRA layer with active adapters."""
    deltas: dict[str, Any] = {}
    for module_name, module in model.named_modules():
        if not (hasattr(module, "get_delta_weight") and hasattr(module, "base_layer")):
            continue
        if getattr(module, "merged", False) or getattr(module, "disable_adapters", False):
            continue  # already in the base weights, or switched off
        known = set(getattr(module, "lora_A", {})) | set(getattr(module, "lora_embedding_A", {}))
        delta = None
        for adapter in getattr(module, "active_adapters", []):
            if adapter in known:
                d = module.get_delta_weight(adapter)
                delta = d if delta is None else delta + d
        if delta is not None:
            deltas[f"{module_name}.base_layer.weight"] = delta
    return deltas


def named_weights_for_vllm(model: Any) -> list[tuple[str, Any]]:
    """`(vllm_name, tensor)` for every weight of a trainer model, with its LoRA folded in.

    For a peft model, each LoRA layer's weight is returned as `base + B @ A * scale` computed
    out of place: the trainer's model is not modified (merging and unmerging in place would
    leave rounding drift in the frozen base weights after every sync). Other tensors are the
    parameters themselves (no copy).
    """
    import torch

    with torch.no_grad():
        deltas = _lora_deltas(model)
        weights = []
        for name, param in model.named_parameters():
            target = vllm_weight_name(name)
            if target is None:
                continue
            tensor = param.data
            if name in deltas:
                tensor = tensor + deltas[name].to(tensor.dtype)
            weights.append((target, tensor))
    return weights


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
        max_model_len: context length (default: the model's).
        dtype: "auto", "bfloat16", ...
        seed: engine seed.
        enable_lora: allow `load_lora` adapters; `max_lora_rank` bounds their rank.
        max_batch_size: most requests per `llm.generate` call.
        batch_wait_ms: how long to wait for concurrent requests to join a call.
        strip_think: remove `<think>...</think>` from the returned text.
        chat_template_kwargs: extra chat-template variables (e.g. {"enable_thinking": False}).
        in_process: run the engine core in this process (needed by `sync_weights`).
        llm: an already-built `vllm.LLM` to use instead of building one.
        **llm_kwargs: anything else `vllm.LLM` accepts (e.g. enforce_eager=True).
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
        dtype: str = "auto",
        seed: int = 0,
        enable_lora: bool = False,
        max_lora_rank: int = 64,
        max_batch_size: int = 1024,
        batch_wait_ms: float = 10.0,
        strip_think: bool = False,
        chat_template_kwargs: dict[str, Any] | None = None,
        in_process: bool = True,
        llm: Any | None = None,
        **llm_kwargs: Any,
    ):
        vllm = _import_vllm()
        if not 0 < gpu_memory_utilization <= 1:
            raise ConfigError(f"gpu_memory_utilization={gpu_memory_utilization}: must be in (0, 1]")
        self._vllm = vllm
        self.model_name = model
        self.enable_lora = enable_lora
        self.strip_think = strip_think
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        if llm is None:
            if in_process:
                os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
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
                **llm_kwargs,
            )
            if enable_lora:
                kwargs["max_lora_rank"] = max_lora_rank
            engine_fields = {f.name for f in dataclasses.fields(vllm.EngineArgs)}
            if "logprobs_mode" in engine_fields and "logprobs_mode" not in kwargs:
                kwargs["logprobs_mode"] = "processed_logprobs"
            try:
                llm = vllm.LLM(**kwargs)
            except Exception as exc:
                raise BackendError(
                    f"vLLM could not start model {model!r}: {type(exc).__name__}: {exc}. "
                    f"{_INSTALL_HINT}"
                ) from exc
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self._lora: Any = None
        self._lora_ids = 0
        self._batcher: MicroBatcher[GenerationRequest, Completion] = MicroBatcher(
            self._run_batch,
            max_batch_size=max_batch_size,
            max_wait_ms=batch_wait_ms,
            name="memgym-vllm",
        )
        self._engine_lock = threading.Lock()  # generate and weight updates never overlap

    # -- generation -------------------------------------------------------------------------------
    def _run_batch(self, requests: list[GenerationRequest]) -> list[Completion]:
        from memgym.llm.hf import encode_prompt

        start = time.perf_counter()
        results: list[Completion | None] = [None] * len(requests)
        prompts, params, slots = [], [], []
        for i, request in enumerate(requests):
            try:
                ids, text = encode_prompt(self.tokenizer, request, self.chat_template_kwargs)
                if not ids:
                    raise ConfigError("the prompt is empty (no tokens)")
                sp = self._vllm.SamplingParams(**vllm_sampling_kwargs(request.sampling))
            except Exception as exc:  # noqa: BLE001 - one bad request must not stop the rest
                results[i] = Completion(
                    "", finish_reason="error", error=f"{type(exc).__name__}: {exc}"
                )
                continue
            prompts.append({"prompt_token_ids": ids})
            params.append(sp)
            slots.append((i, ids, text))
        if prompts:
            try:
                with self._engine_lock:
                    outputs = self.llm.generate(
                        prompts, sampling_params=params, lora_request=self._lora, use_tqdm=False
                    )
            except Exception as exc:  # noqa: BLE001 - e.g. a prompt longer than max_model_len
                outputs = None
                message = f"vLLM generate failed: {type(exc).__name__}: {exc}"
            latency = time.perf_counter() - start
            for k, (i, ids, text) in enumerate(slots):
                if outputs is None:
                    results[i] = Completion(
                        "", prompt_ids=ids, finish_reason="error", error=message
                    )
                    continue
                try:
                    results[i] = completion_from_vllm(
                        outputs[k],
                        prompt_ids=ids,
                        prompt_text=text,
                        latency_s=latency,
                        strip_think_text=self.strip_think,
                    )
                except BackendError as exc:
                    results[i] = Completion(
                        "", prompt_ids=ids, finish_reason="error", error=str(exc)
                    )
        return [r for r in results if r is not None]

    async def generate(self, request: GenerationRequest) -> Completion:
        """Complete one request; concurrent calls share one `llm.generate` call."""
        return await self._batcher.submit(request)

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Complete many requests (blocking), in order."""
        return self._batcher.submit_many(list(requests))

    # -- weights ----------------------------------------------------------------------------------
    def _engine_model(self) -> Any | None:
        """The engine's torch model when it lives in this process (V0, or V1 in-process)."""
        executor = getattr(getattr(self.llm, "llm_engine", None), "model_executor", None)
        worker = getattr(executor, "driver_worker", None)
        for candidate in (worker, getattr(worker, "worker", None)):
            runner = getattr(candidate, "model_runner", None)
            if runner is not None and hasattr(getattr(runner, "model", None), "load_weights"):
                return runner.model
        return None

    def sync_weights(self, model: Any) -> int:
        """Copy a trainer model's current weights into the engine; returns how many tensors.

        Works for transformers models and peft models (the LoRA is folded into the copy). The
        prefix cache is reset, since cached KV came from the old weights.
        """
        weights = named_weights_for_vllm(model)
        with self._engine_lock:
            target = self._engine_model()
            if target is not None:
                target.load_weights(weights)
            elif hasattr(self.llm, "collective_rpc"):
                self.llm.collective_rpc(_load_weights_on_worker, args=(weights,))
            else:
                raise BackendError(
                    "VLLMBackend.sync_weights: this vLLM version exposes neither the in-process "
                    "model runner nor collective_rpc; construct with in_process=True or upgrade "
                    "vLLM"
                )
            self.llm.reset_prefix_cache()
        return len(weights)

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


def _load_weights_on_worker(worker: Any, weights: list[tuple[str, Any]]) -> None:
    """collective_rpc target: runs on each vLLM worker."""
    worker.model_runner.model.load_weights(weights)
