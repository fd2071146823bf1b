"""Every submission committed under leaderboards/ verifies (so a pull request with a bad one fails CI).

A board whose data file is absent here (LoCoMo's locomo10.json, LongMemEval's file: not shipped)
skips its submissions cleanly; the shared data folder is found beside a main checkout or a
worktree, as the other tests that read real data find it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memgym.leaderboard.board import find_boards, load_board
from memgym.leaderboard.verify import GoldSet, verify_submission

ROOT = Path(__file__).parents[2] / "leaderboards"
SUBMISSIONS = [p for board in find_boards(ROOT) if (board / "submissions").is_dir()
               for p in sorted((board / "submissions").iterdir())]
_GOLD: dict[str, dict[str, GoldSet | str]] = {}
_REPO = ROOT.parent
SHARED_DATA = next((p for p in (_REPO / ".." / "shared" / "data",  # main checkout
                                _REPO / ".." / ".." / "shared" / "data")  # worktree
                    if p.is_dir()), None)
DATA_VARS = ("MEMGYM_LOCOMO_DIR", "MEMGYM_LONGMEMEVAL_DIR")


@pytest.fixture(autouse=True)
def _shared_data(monkeypatch):
    """Point the dialogue boards at the shared data folder when it exists and no variable is set."""
    for var in DATA_VARS:
        if SHARED_DATA is not None and not os.environ.get(var):
            monkeypatch.setenv(var, str(SHARED_DATA.resolve()))


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
    assert any(p.parents[1].name == "locomo" for p in SUBMISSIONS)


@pytest.mark.parametrize("board_id", ["locomo", "longmemeval"])
def test_dialogue_boards_load_and_name_their_data_file(board_id):
    board = load_board(ROOT / board_id)
    assert board.level == "question" and board.data_dir is not None
    assert str(board.settings[0].env_kwargs["data_path"]).startswith(str(board.data_dir))


def test_committed_dialogue_predictions_hold_no_dataset_text():
    """LoCoMo is CC BY-NC: a committed row keeps ids, answers and scores, no question or gold."""
    from memgym.leaderboard.files import read_jsonl
    from memgym.leaderboard.submit import QUESTION_RECORD_FIELDS, QUESTION_ROW_FIELDS

    for folder in SUBMISSIONS:
        if load_board(folder.parents[1]).level != "question":
            continue
        for path in folder.glob("*/predictions.jsonl"):
            rows, problems = read_jsonl(path, str(path))
            assert not problems and rows
            for _, row in rows:
                assert set(row) <= set(QUESTION_ROW_FIELDS), path
                assert all(set(q) <= set(QUESTION_RECORD_FIELDS) for q in row["questions"])
