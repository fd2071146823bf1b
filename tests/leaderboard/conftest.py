"""A tiny board (2 settings x 4 synthetic tasks) and real `memgym eval` runs of the oracle on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from leaderboard_helpers import REPO, TINY_BOARD, run_eval


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
