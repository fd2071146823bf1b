"""Data-parallel GRPO plumbing: ranks, groups per rank, global sums, gradient all-reduce.

    torchrun --nproc_per_node 8 -m memgym train train/memagent_qwen2.5-7b.yaml
    accelerate launch --num_processes 8 -m memgym train train/memagent_qwen2.5-7b.yaml

Both launchers start one process per device and set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR
and MASTER_PORT; `Distributed.from_env` reads them and joins the process group (NCCL on GPUs,
gloo on CPUs). Without them (a plain `memgym train`) it is a world of one, where every method
is the identity and nothing of torch.distributed is touched.

What runs where, so that N processes make the update one process makes on the same groups:
  - Every rank draws the same tasks (same sampler, same seed) and builds the same jobs; rank r
    rolls out a contiguous block of the groups (`my_groups`), so a group never spans ranks and
    its group-relative advantages are exact.
  - The optimizer-step split of the kept groups is decided over all ranks' groups
    (`split_steps`), as one process would, and each rank trains its part of every step.
  - The loss normalisers (rows, tokens, micro-batches of the step) are global sums (`sum`), so
    every rank's loss is its share of the one-process loss and the gradients add up
    (`all_reduce_grads`, SUM) to the one-process gradient; clipping and AdamW then run on
    identical gradients on every rank, and the replicas stay identical (the weights are
    broadcast from rank 0 once at the start, as DDP does).
  - Only rank 0 writes: metrics, samples, checkpoints. The rollout metrics are computed from
    every rank's episodes (`gather_episodes`, token ids replaced by their counts).

Sharded models (FSDP2): `accelerate launch --config_file train/accelerate/fsdp2.yaml -m memgym
train RECIPE` sets ACCELERATE_USE_FSDP and FSDP_*; `fsdp_from_env` reads them and `shard` applies
torch's `fully_shard` to every decoder layer, then the root (parameters become DTensors split
over the ranks), with the reduce-scatter summing rather than averaging, so the loss code is the
same. Generation then goes through vLLM servers (a sharded model cannot run `generate` on ranks
that sample different numbers of batches), whose weights are gathered one parameter at a time
(`memgym.llm.vllm_server.full_weights_for_vllm`). Checkpoints of a sharded run hold the full
weights (gathered to rank 0's CPU), not the sharded optimizer state: they load for evaluation or
as a new run's `model`, and `--resume` refuses them. GPU-only: not exercised by memgym's tests.

Equality with one process is up to float rounding: the gradient of a step is summed in another
order (per rank, then across ranks). The `loss_type="bnpo"` mean per micro-batch depends on how
rows are packed, on one process as on many, so it is the one aggregator whose value changes
with the world size.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from memgym.errors import ConfigError

__all__ = ["COLLECTIVE_TIMEOUT", "Distributed", "NullLogger", "fsdp_from_env", "world_from_env"]

COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)
"""How long a rank waits for the others at a collective: a rollout of long documents on one rank
can take far longer than torch's 10-30 minute default."""

_BUCKET_ELEMENTS = 1 << 24
"""Gradient elements all-reduced per call (coalesced, as DDP's buckets)."""


def world_from_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) as torchrun / accelerate launch set them (0, 1, 0 if not)."""
    def read(name: str, default: int) -> int:
        value = os.environ.get(name, str(default))
        if not value.isdigit():
            raise ConfigError(f"environment variable {name}={value!r} is not a number; it is "
                              "set by torchrun / accelerate launch, do not set it by hand")
        return int(value)
    return read("RANK", 0), read("WORLD_SIZE", 1), read("LOCAL_RANK", 0)


class Distributed:
    """This process's place in a data-parallel run, and the collectives the trainer needs.

    Args:
        rank, world_size, local_rank: as the launcher set them.
        device: this rank's device (collectives on NCCL need their tensors there).
    """

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0,
                 device: torch.device | None = None, fsdp: dict[str, Any] | None = None):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = device or torch.device("cpu")
        self.fsdp = fsdp

    @classmethod
    def from_env(cls, device_spec: str = "auto") -> Distributed:
        """Read the launcher's variables and join the process group (a world of one: nothing).

        Args:
            device_spec: the trainer's `device` setting; "auto" and "cuda" become this rank's
                GPU (cuda:LOCAL_RANK) when there are GPUs.

        Raises:
            ConfigError: a multi-process launch asked for a device it cannot give every rank.
        """
        rank, world, local = world_from_env()
        device = _rank_device(device_spec, local, world)
        if world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                backend = "nccl" if device.type == "cuda" else "gloo"
                if device.type == "cuda":
                    torch.cuda.set_device(device)
                dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
        return cls(rank, world, local, device, fsdp=fsdp_from_env())

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that logs and writes checkpoints)."""
        return self.rank == 0

    # -- who does what ---------------------------------------------------------------------------
    def my_groups(self, num_groups: int) -> list[int]:
        """The global indices of the groups this rank rolls out: a contiguous block.

        Raises:
            ConfigError: fewer groups than ranks (a rank would have nothing to do).
        """
        if num_groups < self.world_size:
            raise ConfigError(f"tasks_per_step={num_groups} is less than the {self.world_size} "
                              "processes: every rank needs at least one task group (a group "
                              "never spans ranks); raise tasks_per_step to a multiple of the "
                              "number of processes")
        return np.array_split(np.arange(num_groups), self.world_size)[self.rank].tolist()

    def split_steps(self, group_ids: Sequence[int], num_steps: int) -> list[list[int]]:
        """Split the kept groups of all ranks into at most `num_steps` optimizer steps.

        The split is the one a single process makes of the same groups (contiguous, in global
        group order, `np.array_split`).

        Args:
            group_ids: the global indices of this rank's kept groups.
            num_steps: `steps_per_generation`.

        Returns:
            Per step, the positions in `group_ids` of this rank's groups in it (maybe none).
        """
        everyone = sorted(g for ids in self.gather_objects(list(group_ids)) for g in ids)
        if not everyone:
            return []
        where = {g: i for i, g in enumerate(group_ids)}
        chunks = np.array_split(np.asarray(everyone), min(num_steps, len(everyone)))
        return [[where[g] for g in chunk.tolist() if g in where] for chunk in chunks]

    # -- collectives -----------------------------------------------------------------------------
    def sum(self, *values: float) -> list[float]:
        """The sums over all ranks of each value (float64)."""
        if self.world_size == 1:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def max(self, value: float) -> float:
        """The largest `value` over all ranks."""
        if self.world_size == 1:
            return float(value)
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's `obj` (picklable), in rank order."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather_episodes(self, episodes: Sequence[Any]) -> list[Any]:
        """Every rank's episodes in global group order, without their text and token ids.

        The turns keep their token counts (`range(len(ids))` stands for the ids), finish
        reasons and trainable flags: what the rollout metrics read, at a few bytes a turn.
        """
        if self.world_size == 1:
            return list(episodes)
        slim = [_slim_episode(e) for e in episodes]
        return [e for part in self.gather_objects(slim) for e in part]

    def all_reduce_grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over the ranks (in place), in coalesced buckets.

        A parameter without a gradient on every rank keeps none (AdamW then skips it, as on one
        process); one with a gradient somewhere gets zeros where it had none before the sum.
        """
        if self.world_size == 1 or self.fsdp is not None:  # FSDP reduce-scattered them already
            return
        import torch.distributed as dist

        has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32,
                           device=self.device)
        dist.all_reduce(has, op=dist.ReduceOp.MAX)
        live = [p for p, h in zip(params, has.tolist()) if h]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in _buckets([p.grad for p in live]):
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            offset = 0
            for g in bucket:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()

    def broadcast_params(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (identical replicas at the start)."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def shard(self, model: torch.nn.Module) -> torch.nn.Module:
        """FSDP2-shard `model` when accelerate's config asks for FSDP (else return it as it is).

        Every decoder layer (the model's `_no_split_modules`, or FSDP_TRANSFORMER_CLS_TO_WRAP)
        gets its own `fully_shard`, then the root; gradients are summed over the ranks, not
        averaged (the loss is already each rank's share of the global one).

        Raises:
            ConfigError: no layer class to wrap was found.
        """
        if self.fsdp is None:
            return model
        from torch.distributed.fsdp import fully_shard

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        names = set(self.fsdp.get("layer_cls") or getattr(base, "_no_split_modules", None) or [])
        layers = [m for m in model.modules() if type(m).__name__ in names]
        if not layers:
            raise ConfigError(f"FSDP: no module of {sorted(names) or 'the model'} to wrap; set "
                              "fsdp_transformer_layer_cls_to_wrap in the accelerate config to "
                              "the model's decoder layer class (e.g. Qwen2DecoderLayer)")
        reshard = self.fsdp.get("reshard_after_forward", True)
        for module in [*layers, model]:
            fully_shard(module, reshard_after_forward=reshard)
            module.set_gradient_divide_factor(1.0)  # sum, like all_reduce_grads
        return model

    def full_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
        """The whole model's state dict on rank 0's CPU (None elsewhere); every rank calls it."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                     cpu_offload=True))
        return state if self.is_main else None

    def barrier(self) -> None:
        """Wait for every rank (a world of one returns at once)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group, if this process joined one."""
        if self.world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def fsdp_from_env() -> dict[str, Any] | None:
    """accelerate launch's FSDP settings (ACCELERATE_USE_FSDP, FSDP_*), or None without FSDP.

    Raises:
        ConfigError: FSDP version 1 was asked for (memgym shards with FSDP2 only).
    """
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() != "true":
        return None
    if os.environ.get("FSDP_VERSION", "1") != "2":
        raise ConfigError(f"FSDP_VERSION={os.environ.get('FSDP_VERSION', '1')}: memgym shards "
                          "with FSDP2 (torch's fully_shard); set fsdp_version: 2 in the "
                          "accelerate config (see train/accelerate/fsdp2_7b_lora.yaml)")
    classes = [c.strip() for c in os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").split(",")
               if c.strip()]
    return {"reshard_after_forward":
            os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() != "false",
            "layer_cls": classes or None}


class NullLogger:
    """The metrics logger of ranks other than 0: keeps the rows, writes nothing."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def log(self, metrics: dict[str, Any]) -> None:
        """Keep the row (rank 0's MetricsLogger writes it)."""
        self.rows.append(dict(metrics))

    def log_samples(self, step: int, samples: Sequence[dict[str, Any]]) -> None:
        """Nothing: rank 0 logs the samples."""

    def plot(self) -> None:
        """Nothing: rank 0 plots."""

    def close(self) -> None:
        """Nothing to close."""


def _rank_device(spec: str, local_rank: int, world_size: int) -> torch.device:
    """This rank's device for the trainer's `device` setting."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type != "cuda" or world_size == 1:
        return device
    if device.index is not None:
        raise ConfigError(f"device={spec!r} pins every process to one GPU; with {world_size} "
                          "processes use device=auto or device=cuda (rank r gets cuda:LOCAL_RANK)")
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPUs are "
                          "visible; launch at most one process per GPU (--nproc_per_node)")
    return torch.device("cuda", local_rank)


def _slim_episode(episode: Any) -> Any:
    turns = [dataclasses.replace(t, prompt="", completion="",
                                 prompt_ids=range(len(t.prompt_ids)),
                                 completion_ids=range(len(t.completion_ids)), logprobs=[])
             for t in episode.turns]
    return dataclasses.replace(episode, turns=turns, task=None, trace=[], actions=[])


def _buckets(tensors: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive groups of same-dtype tensors of at most _BUCKET_ELEMENTS elements (or one)."""
    out: list[list[torch.Tensor]] = []
    size = 0
    for t in tensors:
        if not out or size + t.numel() > _BUCKET_ELEMENTS or out[-1][0].dtype != t.dtype:
            out.append([])
            size = 0
        out[-1].append(t)
        size += t.numel()
    return out
