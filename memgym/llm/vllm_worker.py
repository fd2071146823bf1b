"""Weight loading inside vLLM's workers: `load_into_worker`, and the extension that calls it remotely.

`load_into_worker(worker, weights)` is the one way memgym puts a trainer's weights into a vLLM
worker, in process or not: through vLLM's `reload_weights(weights_iterator=...)` where it exists
(it re-runs the processing after loading, which on CPU repacks the linear weights), then a tied
LM head re-tied to the new embedding.

`VLLMBackend` builds its engine with
`worker_extension_cls="memgym.llm.vllm_worker.WeightSyncExtension"`; vLLM then adds this class to
its worker's bases, so its methods run on every worker with the worker as `self` and can be
called by name: `llm.collective_rpc("memgym_receive_weights", args=(packed,))`. That is the form V1
accepts: a method *name* travels, a Python function does not (V1's msgpack encoder refuses
callables unless `VLLM_ALLOW_INSECURE_SERIALIZATION=1`). TRL's server does the same
(`WeightSyncWorkerExtension.update_named_param`, called by name), with the tensors sent over NCCL;
here they travel inside the call as plain bytes, because the trainer and vLLM's first worker share
a GPU (NCCL refuses two ranks on one device) and because V1 decodes a utility call's arguments
without type information (a tensor would arrive as a list, bytes arrive as bytes).

This module is imported by vLLM's worker processes: it must not import vLLM and stays light.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = [
    "APPLY_METHOD",
    "RECEIVE_METHOD",
    "WeightSyncExtension",
    "load_into_worker",
    "pack_tensor",
    "unpack_tensor",
]

RECEIVE_METHOD = "memgym_receive_weights"
"""The extension method that stores one bucket of packed tensors on each worker."""

APPLY_METHOD = "memgym_apply_weights"
"""The extension method that loads every stored tensor into the worker's model at once."""

PackedTensor = tuple[str, str, list[int], bytes]
"""`(vllm_name, dtype name such as "bfloat16", shape, raw bytes)`: msgpack- and pickle-safe."""


def pack_tensor(name: str, tensor: Any) -> PackedTensor:
    """A tensor as plain data for `collective_rpc`: copied to CPU, viewed as bytes."""
    import torch

    flat = tensor.detach().contiguous().reshape(-1)
    raw = flat.view(torch.uint8).cpu().numpy().tobytes()  # [numel * element_size]
    return name, str(tensor.dtype).removeprefix("torch."), list(tensor.shape), raw


def unpack_tensor(packed: Sequence[Any], device: Any = None) -> tuple[str, Any]:
    """The inverse of `pack_tensor`: `(vllm_name, tensor)` on `device`."""
    import torch

    name, dtype_name, shape, raw = packed
    dtype = getattr(torch, str(dtype_name), None)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"memgym weight {name!r}: unknown dtype {dtype_name!r}")
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if len(raw) else None
    if data is None:
        tensor = torch.empty([int(s) for s in shape], dtype=dtype)
    else:
        tensor = data.view(dtype).reshape([int(s) for s in shape])
    return name, tensor.to(device) if device is not None else tensor


def _reload_accepts_iterator(worker: Any) -> bool:
    """Whether this vLLM's `worker.reload_weights` takes `weights_iterator`.

    The worker's method forwards `*args, **kwargs`; its model runner's says what it takes.
    """
    reload = getattr(getattr(worker, "model_runner", None), "reload_weights", None)
    if reload is None or not hasattr(worker, "reload_weights"):
        return False
    try:
        return "weights_iterator" in inspect.signature(reload).parameters
    except (TypeError, ValueError):
        return False


def _retie_lm_head(model: Any) -> bool:
    """Point a tied LM head at the (reloaded) input embedding again; False if it cannot.

    vLLM's in-place reload loads `embed_tokens` and, finding no checkpoint tensor for the tied
    `lm_head`, puts the head's *old* kernel tensors back (`reload/layerwise.py`): the head then
    keeps the old embedding. Re-tying and re-running the head's weight processing (on CPU: the
    repacking for its GEMM kernel) makes the engine's logits use the new embedding.
    """
    config = getattr(model, "config", None)
    if not getattr(config, "tie_word_embeddings", False):
        return True
    head = getattr(model, "lm_head", None)
    embed = getattr(getattr(model, "model", None), "embed_tokens", None)
    if head is None or embed is None or not hasattr(embed, "weight"):
        return False
    if head.weight is not embed.weight:
        head.weight = embed.weight
    process = getattr(getattr(head, "quant_method", None), "process_weights_after_loading", None)
    if process is not None:
        process(head)
    return True


def load_into_worker(worker: Any, weights: Iterable[tuple[str, Any]]) -> int:
    """Load `(vllm_name, full tensor)` pairs into a vLLM worker's model so its kernels use them.

    With a vLLM whose `reload_weights` takes an iterator, the weights go through it: it re-runs
    the processing vLLM applies after loading (on CPU every linear weight is repacked for its
    matmul kernel and the plain parameter emptied, so `model.load_weights` alone fails there with
    "'Parameter' object has no attribute 'weight_loader'"), then a tied LM head is re-tied.
    Older vLLMs (GPU kernels read the parameters directly) get `model.load_weights`, one tensor
    at a time as TRL does. Returns how many tensors were loaded.
    """
    count = 0

    def counted() -> Iterator[tuple[str, Any]]:
        nonlocal count
        for name, tensor in weights:
            count += 1
            yield name, tensor

    model = worker.model_runner.model
    if _reload_accepts_iterator(worker):
        worker.reload_weights(weights_iterator=counted(), is_checkpoint_format=True)
        if not _retie_lm_head(model):
            raise RuntimeError(
                f"{type(model).__name__} ties its LM head to its input embedding, but memgym "
                "cannot find `lm_head` and `model.embed_tokens` to re-tie them after the reload, "
                "so a trained embedding would not reach the head. Freeze the embedding (train "
                "LoRA on attention/MLP layers) or untie the weights"
            )
    else:
        for name, tensor in counted():
            model.load_weights([(name, tensor)])
            del tensor
    return count


class WeightSyncExtension:
    """Mixed into vLLM's worker class by `worker_extension_cls`; `self` is the worker.

    A sync is a few `memgym_receive_weights` calls (buckets of `pack_tensor` outputs, kept on
    the CPU) and one `memgym_apply_weights`: vLLM's reload must see every tensor of a layer
    (q, k and v fill one fused weight) before it processes that layer, so nothing is loaded
    until the whole model has arrived.
    """

    def memgym_receive_weights(self, packed: Sequence[Sequence[Any]]) -> int:
        """Keep one bucket of packed tensors (unpacked, on the CPU) until `memgym_apply_weights`.

        Every tensor-parallel worker receives the same full tensors; vLLM's loaders keep each
        worker's slice. Returns how many tensors this worker now holds.
        """
        pending = self.__dict__.setdefault("_memgym_pending", [])
        pending.extend(unpack_tensor(item) for item in packed)
        return len(pending)

    def memgym_apply_weights(self) -> int:
        """Load every received tensor into this worker's model (see `load_into_worker`)."""
        pending = self.__dict__.pop("_memgym_pending", [])
        device = next(self.model_runner.model.parameters()).device  # type: ignore[attr-defined]
        weights = ((name, tensor.to(device)) for name, tensor in pending)
        return load_into_worker(self, weights)
