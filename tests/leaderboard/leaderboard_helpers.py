"""Shared helpers of the leaderboard tests: a tiny board and `memgym eval` runs on it."""

from __future__ import annotations

from pathlib import Path

from memgym.cli import main

REPO = Path(__file__).parents[2]
TINY_BOARD = """\
id: tiny
title: Tiny synthetic board
description: two splits of the synthetic task, 4 tasks each (tests only)
schema_version: 1
metric: accuracy
x_label: split
x_scale: categorical
episodes: 4
avg_k: [1, 2]
memgym_version: ">=0.1.0"
free_env_kwargs: {answer_format: [boxed, plain]}
common_env_kwargs: {chunk_tokens: 32, memory_tokens: 48, filler_sentences: 4}
settings:
  - {name: a, x: a, env_id: MemAgent-Synthetic-v0, env_kwargs: {seed: 11}}
  - {name: b, x: b, env_id: MemAgent-Synthetic-v0, env_kwargs: {seed: 12, num_updates: 2}}
ranking: {by: average, order: descending}
"""
SETTING_KWARGS = {"a": ["seed=11"], "b": ["seed=12", "num_updates=2"]}


def run_eval(out: Path, setting: str, recipe: str = "agents/scripted_oracle.yaml",
             extra: list[str] | None = None, avg_k: int = 1) -> None:
    """`memgym eval` of `recipe` on one tiny-board setting into `out` (run from the repo root)."""
    kwargs = ["chunk_tokens=32", "memory_tokens=48", "filler_sentences=4",
              *SETTING_KWARGS[setting], *(extra or [])]
    code = main(["eval", "--env", "MemAgent-Synthetic-v0", "--env-kwargs", *kwargs,
                 "--agent", recipe, "--episodes", "4", "--avg-k", str(avg_k),
                 "--out", str(out), "--no-progress"])
    assert code == 0
