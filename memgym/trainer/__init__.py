"""memgym's GRPO trainer: grouped multi-conversation episodes, multi-component rewards, LoRA.

    >>> from memgym.trainer import GRPOTrainer, load_config
    >>> trainer = GRPOTrainer(load_config("train/tiny_random_budget.yaml"))
    >>> rows = trainer.train()

The pieces, each usable alone: `config` (GRPOConfig, load_config), `advantages` (group
normalisation, credit assignment), `loss` (the clipped surrogate and its aggregators), `rollout`
(jobs, rows, micro-batches), `grpo` (the loop), `checkpoint`, `logging`, `trl_adapter` (single-turn
envs for TRL's GRPOTrainer). Heavy modules load on first use, so `import memgym.trainer` is light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["GRPOConfig", "GRPOTrainer", "TRLEnvAdapter", "load_config"]

_LAZY = {
    "GRPOConfig": "memgym.trainer.config",
    "load_config": "memgym.trainer.config",
    "GRPOTrainer": "memgym.trainer.grpo",
    "TRLEnvAdapter": "memgym.trainer.trl_adapter",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'memgym.trainer' has no attribute {name!r}")
