"""Every submission committed under leaderboards/ verifies (so a pull request with a bad one fails CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgym.leaderboard.board import find_boards, load_board
from memgym.leaderboard.verify import GoldSet, verify_submission

ROOT = Path(__file__).parents[2] / "leaderboards"
SUBMISSIONS = [p for board in find_boards(ROOT) if (board / "submissions").is_dir()
               for p in sorted((board / "submissions").iterdir())]
_GOLD: dict[str, dict[str, GoldSet | str]] = {}


@pytest.mark.parametrize("folder", SUBMISSIONS, ids=lambda p: f"{p.parents[1].name}/{p.name}")
def test_committed_submission_verifies(folder):
    board = load_board(folder.parents[1])
    verdict = verify_submission(board, folder, gold_cache=_GOLD.setdefault(board.id, {}),
                                repo_root=ROOT.parent)
    assert not verdict.problems, "\n".join(str(p) for p in verdict.problems)
    if verdict.unverifiable:
        pytest.skip(f"board data absent here: {verdict.unverifiable}")
    assert verdict.ok


def test_repository_holds_reference_submissions():
    assert any(p.parents[1].name == "synthetic" for p in SUBMISSIONS)
