"""A tiny board (2 settings x 4 synthetic tasks) and real `memgym eval` runs of the oracle on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def oracle_runs(tmp_path_factory) -> Path:
    """Folder of two eval runs (settings a and b) of the scripted oracle."""
    import os

    root = tmp_path_factory.mktemp("runs")
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        for setting in ("a", "b"):
            run_eval(root / setting, setting)
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def tiny_board(tmp_path) -> Path:
    """A repository-like tmp folder with leaderboards/tiny/board.yaml; returns the board folder."""
    board = tmp_path / "repo" / "leaderboards" / "tiny"
    board.mkdir(parents=True)
    (board / "board.yaml").write_text(TINY_BOARD, encoding="utf-8")
    agents = tmp_path / "repo" / "agents"
    agents.mkdir()
    shutil.copy(REPO / "agents" / "scripted_oracle.yaml", agents / "scripted_oracle.yaml")
    return board


@pytest.fixture
def submission(tiny_board, oracle_runs) -> Path:
    """A verified submission of the oracle runs to the tiny board; returns its folder."""
    from memgym.leaderboard.submit import make_submission

    target, verdict = make_submission(oracle_runs, tiny_board, name="oracle", model="none",
                                      out=tiny_board / "submissions", hardware="test",
                                      date="2025-01-01", link="https://example.org/x",
                                      command="pytest")
    assert verdict.ok, verdict.problems
    return target
