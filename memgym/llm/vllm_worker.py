"""Weight loading inside vLLM's workers, for when the engine does not live in the trainer's process.

`VLLMBackend` builds its engine with
`worker_extension_cls="memgym.llm.vllm_worker.WeightSyncExtension"`; vLLM then adds this class to
its worker's bases, so its methods run on every worker with the worker as `self` and can be
called by name: `llm.collective_rpc("memgym_load_weights", args=(packed,))`. That is the form V1
accepts: a method *name* travels, a Python function does not (V1's msgpack encoder refuses
callables unless `VLLM_ALLOW_INSECURE_SERIALIZATION=1`). TRL's server does the same
(`WeightSyncWorkerExtension.update_named_param`, called by name), with the tensors sent over NCCL;
here they travel inside the call as plain bytes, because the trainer and vLLM's first worker share
a GPU (NCCL refuses two ranks on one device) and because V1 decodes a utility call's arguments
without type information (a tensor would arrive as a list, bytes arrive as bytes).

This module is imported by vLLM's worker processes: it must not import vLLM and stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["LOAD_METHOD", "WeightSyncExtension", "pack_tensor", "unpack_tensor"]

LOAD_METHOD = "memgym_load_weights"
"""The extension method `VLLMBackend` calls through `collective_rpc`."""

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


class WeightSyncExtension:
    """Mixed into vLLM's worker class by `worker_extension_cls`; `self` is the worker."""

    def memgym_load_weights(self, packed: Sequence[Sequence[Any]]) -> int:
        """Load `pack_tensor` outputs into this worker's model shard, one tensor at a time.

        vLLM's `load_weights` takes full (unsharded) tensors and keeps this worker's slice, so
        every tensor-parallel worker receives the same list. Returns how many were loaded.
        """
        model = self.model_runner.model  # type: ignore[attr-defined]
        device = next(model.parameters()).device
        for item in packed:
            name, tensor = unpack_tensor(item, device)
            model.load_weights([(name, tensor)])
            del tensor
        return len(packed)
