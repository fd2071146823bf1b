"""verify never raises, whatever a submission's files hold (hypothesis)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgym.leaderboard.board import load_board
from memgym.leaderboard.verify import verify_submission

FILES = ("submission.json", "a/run.json", "a/predictions.jsonl")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12)

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


GOLD: dict = {}
"""Built gold of the tiny board, shared by every example (the board never changes)."""


def _check(pristine: Path, mutate) -> None:
    board = load_board(pristine.parents[1])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / pristine.name
        shutil.copytree(pristine, folder)
        mutate(folder)
        verdict = verify_submission(board, folder, gold_cache=GOLD,
                                    repo_root=board.folder.parents[1])
        assert isinstance(verdict.problems, list)
        assert all(isinstance(str(p), str) for p in verdict.problems)


@FUZZ
@given(which=st.sampled_from(FILES), data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_verify(submission, which, data):
    _check(submission, lambda f: (f / which).write_bytes(data))


@FUZZ
@given(which=st.sampled_from(FILES), keep=st.integers(0, 2000))
def test_truncated_files_never_crash_verify(submission, which, keep):
    def mutate(folder: Path) -> None:
        path = folder / which
        path.write_bytes(path.read_bytes()[:keep])
    _check(submission, mutate)


@FUZZ
@given(which=st.sampled_from(FILES), key=st.text(max_size=12) | st.sampled_from(
    ["task_id", "attempt", "response", "golds", "reward_components", "failed_calls", "question",
     "env_kwargs", "env_id", "avg_k", "episodes", "versions", "recipe", "agent_recipe_text",
     "agent_recipe_file", "seed", "scores", "seeds", "board", "name", "date", "link",
     "memgym_version", "schema_version"]), value=json_values)
def test_any_json_value_in_any_field_never_crashes_verify(submission, which, key, value):
    def mutate(folder: Path) -> None:
        path = folder / which
        if which.endswith(".jsonl"):
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            rows[0][key] = value
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            data = json.loads(path.read_text())
            data[key] = value
            path.write_text(json.dumps(data))
    _check(submission, mutate)


@FUZZ
@given(value=json_values)
def test_any_json_document_as_a_whole_file_never_crashes_verify(submission, value):
    _check(submission, lambda f: (f / "a/run.json").write_text(json.dumps(value)))
    _check(submission, lambda f: (f / "submission.json").write_text(json.dumps(value)))
    _check(submission, lambda f: (f / "a/predictions.jsonl").write_text(json.dumps(value) + "\n"))


def test_deeply_nested_json_is_reported_not_raised(submission):
    def mutate(folder: Path) -> None:
        (folder / "a/predictions.jsonl").write_text("[" * 200_000 + "]" * 200_000 + "\n")
        (folder / "submission.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    _check(submission, mutate)


def test_huge_integer_is_reported_not_raised(submission):
    _check(submission, lambda f: (f / "a/run.json").write_text('{"avg_k": ' + "9" * 10_000 + "}"))
