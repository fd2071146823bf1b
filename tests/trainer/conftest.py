"""Shared helpers for the trainer tests: a tiny, fast GRPO recipe on the synthetic task."""

from __future__ import annotations

from typing import Any

import pytest

TINY_RECIPE: dict[str, Any] = {
    "env_id": "MemAgent-Synthetic-v0",
    "env_kwargs": {"difficulty": 1, "num_tasks": 32, "chunk_tokens": 16, "memory_tokens": 3,
                   "reward_weights": {"accuracy": 1.0, "memory_budget": 1.0}},
    "agent": {"kind": "memagent", "memory_max_new_tokens": 6, "answer_max_new_tokens": 4},
    "model": "tiny",
    "tasks_per_step": 2,
    "num_generations": 4,
    "max_steps": 2,
    "max_completion_length": 6,
    "learning_rate": 5.0e-3,
    "save_steps": 0,
    "seed": 7,
}
"""A recipe that trains the tiny model for 2 steps in a few seconds on CPU."""


@pytest.fixture
def tiny_recipe(tmp_path) -> dict[str, Any]:
    """TINY_RECIPE writing into a fresh temporary run folder."""
    return {**TINY_RECIPE, "output_dir": str(tmp_path / "run")}
