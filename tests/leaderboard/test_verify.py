"""verify recomputes scores against the board's own gold and rejects bad submissions by file and field."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from memgym.leaderboard.board import load_board
from memgym.leaderboard.files import Limits
from memgym.leaderboard.verify import score_response, verify_board, verify_submission


def _verdict(folder: Path, **kw):
    board = load_board(folder.parents[1])
    return verify_submission(board, folder, repo_root=board.folder.parents[1], **kw)


def _reasons(verdict) -> str:
    return "\n".join(str(p) for p in verdict.problems)


def _rewrite_rows(path: Path, edit) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows = edit(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_oracle_submission_verifies_with_recomputed_scores(submission):
    verdict = _verdict(submission)
    assert verdict.ok and verdict.complete, _reasons(verdict)
    assert verdict.scores == {"a": 1.0, "b": 1.0} and verdict.average == 1.0


def test_verify_board_verifies_every_submission(submission):
    board, verdicts = verify_board(submission.parents[1])
    assert board.id == "tiny" and [v.ok for v in verdicts] == [True]


def test_claimed_average_that_disagrees_is_rejected(submission):
    _edit_json(submission / "submission.json", lambda d: d["scores"].update(average=0.5))
    assert "submission.json: scores.average: claims 0.5, recomputed 1.0" in _reasons(_verdict(submission))


def test_claimed_setting_score_that_disagrees_is_rejected(submission):
    _edit_json(submission / "submission.json", lambda d: d["scores"]["settings"].update(a=0.9))
    assert "scores.settings.a: claims 0.9, recomputed 1.0" in _reasons(_verdict(submission))


def test_row_claiming_a_wrong_accuracy_is_rejected(submission):
    def edit(rows):
        rows[1]["response"] = "\\boxed{wrong}"
        return rows
    _rewrite_rows(submission / "a" / "predictions.jsonl", edit)
    reasons = _reasons(_verdict(submission))
    assert "oracle/a/predictions.jsonl: line 2: reward_components.accuracy: claims 1.0, the " \
           "board's scorer gives 0.0" in reasons


def test_missing_task_is_rejected(submission):
    _rewrite_rows(submission / "b" / "predictions.jsonl", lambda rows: rows[:-1])
    assert "oracle/b/predictions.jsonl: 1 (task, attempt) rows missing: task 3 attempt 0" \
        in _reasons(_verdict(submission))


def test_duplicated_task_is_rejected(submission):
    _rewrite_rows(submission / "b" / "predictions.jsonl", lambda rows: rows + rows[:1])
    assert "line 5: task_id: task 0 attempt 0 appears twice" in _reasons(_verdict(submission))


def test_task_outside_the_board_is_rejected(submission):
    def edit(rows):
        rows[0]["task_id"] = 99
        return rows
    _rewrite_rows(submission / "a" / "predictions.jsonl", edit)
    assert "line 1: task_id: 99 is not a task of the board (0..3)" in _reasons(_verdict(submission))


def test_gold_answer_that_is_not_the_boards_is_rejected(submission):
    def edit(rows):  # a forged gold equal to the prediction: the board's own gold still scores
        rows[0]["golds"] = ["forged"]
        rows[0]["response"] = "\\boxed{forged}"
        return rows
    _rewrite_rows(submission / "a" / "predictions.jsonl", edit)
    reasons = _reasons(_verdict(submission))
    assert "line 1: golds: ['forged'] is not the board's gold answer" in reasons
    assert "line 1: reward_components.accuracy: claims 1.0, the board's scorer gives 0.0" in reasons


def test_other_env_settings_are_rejected(submission):
    _edit_json(submission / "a" / "run.json", lambda d: d["env_kwargs"].update(chunk_tokens=64))
    assert "oracle/a/run.json: env_kwargs.chunk_tokens: 64 is not the board's 32" \
        in _reasons(_verdict(submission))


def test_env_kwarg_unknown_to_the_board_is_rejected(submission):
    _edit_json(submission / "a" / "run.json", lambda d: d["env_kwargs"].update(scorer="f1"))
    assert "env_kwargs.scorer: not a setting of this board" in _reasons(_verdict(submission))


def test_free_env_kwarg_outside_its_allowed_values_is_rejected(submission):
    _edit_json(submission / "a" / "run.json",
               lambda d: d["env_kwargs"].update(answer_format="answer_is"))
    assert "env_kwargs.answer_format: 'answer_is' is not one of ['boxed', 'plain']" \
        in _reasons(_verdict(submission))


def test_absent_memgym_version_is_rejected(submission):
    _edit_json(submission / "a" / "run.json", lambda d: d["versions"].pop("memgym"))
    assert "oracle/a/run.json: versions.memgym: absent" in _reasons(_verdict(submission))


def test_memgym_version_outside_the_boards_range_is_rejected(submission):
    _edit_json(submission / "submission.json", lambda d: d.update(memgym_version="0.0.1"))
    reasons = _reasons(_verdict(submission))
    assert "submission.json: memgym_version: '0.0.1' does not satisfy the board's >=0.1.0" in reasons
    assert "versions.memgym: '0.1.0' differs from submission.json's memgym_version" in reasons


def test_absent_recipe_is_rejected(submission):
    _edit_json(submission / "a" / "run.json", lambda d: d.update(recipe={}))
    assert "oracle/a/run.json: recipe: absent" in _reasons(_verdict(submission))


def test_recipe_that_differs_from_the_committed_file_is_rejected(submission):
    _edit_json(submission / "a" / "run.json",
               lambda d: d.update(agent_recipe_text=d["agent_recipe_text"] + "# edited\n"))
    assert "agent_recipe_text: differs from the committed agents/scripted_oracle.yaml" \
        in _reasons(_verdict(submission))


def test_missing_metadata_field_is_rejected(submission):
    _edit_json(submission / "submission.json", lambda d: d.pop("hardware"))
    assert "submission.json: hardware: required" in _reasons(_verdict(submission))


def test_malformed_json_is_rejected_with_its_line(submission):
    path = submission / "a" / "predictions.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    assert "oracle/a/predictions.jsonl: line 5: malformed JSON" in _reasons(_verdict(submission))


def test_nan_is_malformed_json(submission):
    path = submission / "submission.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"average": 1.0', '"average": NaN'))
    assert "submission.json: malformed JSON: NaN is not a JSON number" in _reasons(_verdict(submission))


def test_oversized_file_is_rejected_before_reading(submission):
    verdict = _verdict(submission, limits=Limits(file_bytes=1000))
    assert "oracle/a/predictions.jsonl: file is" in _reasons(verdict)
    assert "over the 1000-byte limit" in _reasons(verdict)


def test_oversized_field_is_rejected(submission):
    def edit(rows):
        rows[0]["response"] = "x" * 5000
        return rows
    _rewrite_rows(submission / "a" / "predictions.jsonl", edit)
    verdict = _verdict(submission, limits=Limits(string_chars=4096))
    assert "line 1: response: longer than 4096 characters" in _reasons(verdict)


def test_unexpected_file_and_link_are_rejected(submission):
    (submission / "a" / "evil.py").write_text("raise SystemExit")
    os.symlink("/etc/passwd", submission / "b" / "run.json.bak")
    reasons = _reasons(_verdict(submission))
    assert "oracle/a/evil.py: unexpected file" in reasons
    assert "oracle/b/run.json.bak: unexpected file" in reasons


def test_linked_predictions_file_is_refused(submission):
    path = submission / "a" / "predictions.jsonl"
    target = submission.parent / "elsewhere.jsonl"
    path.rename(target)
    os.symlink(target, path)
    assert "oracle/a/predictions.jsonl: not a regular file" in _reasons(_verdict(submission))


def test_partial_submission_verifies_but_is_not_complete(submission):
    import shutil

    shutil.rmtree(submission / "b")
    _edit_json(submission / "submission.json", lambda d: d["scores"]["settings"].pop("b"))
    verdict = _verdict(submission)
    assert verdict.ok and not verdict.complete and set(verdict.scores) == {"a"}


def test_avg_k_scores_mean_over_tasks_of_mean_over_attempts(tiny_board, tmp_path):
    from leaderboard_helpers import REPO, run_eval

    from memgym.leaderboard.submit import make_submission

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        for setting in ("a", "b"):
            run_eval(tmp_path / "k2" / setting, setting, avg_k=2)
    finally:
        os.chdir(cwd)
    _target, verdict = make_submission(tmp_path / "k2", tiny_board, name="k2", model="none",
                                      out=tiny_board / "submissions", hardware="t",
                                      date="2025-01-01", command="c")
    assert verdict.ok and verdict.scores == {"a": 1.0, "b": 1.0}


@pytest.mark.parametrize("response,fmt,golds,expected", [
    ("so \\boxed{Paris}", "boxed", ["Paris"], 1.0),
    ("Paris", "boxed", ["Paris"], 0.0),                    # no box: 0, as MemAgent's evaluation
    ("Therefore, the answer is Paris.", "answer_is", ["paris"], 1.0),
    ("\\boxed{the city of Paris}", "boxed", ["Paris"], 1.0),  # sub_em: gold inside prediction
])
def test_score_response_matches_memagents_verifier(response, fmt, golds, expected):
    assert score_response(response, golds, scorer="sub_em", answer_format=fmt) == expected


def test_score_response_agrees_with_the_env_on_random_answers():
    import gymnasium as gym
    import numpy as np

    import memgym  # noqa: F401

    env = gym.make("MemAgent-Synthetic-v0", num_tasks=8, filler_sentences=2)
    rng = np.random.default_rng(0)
    for t in range(8):
        env.reset(seed=0, options={"task_id": t})
        gold = env.unwrapped.task.answers[0]
        response = rng.choice([f"\\boxed{{{gold}}}", "\\boxed{12}", gold, "", "\\boxed{"])
        terminated = False
        while not terminated:
            _, _, terminated, _, info = env.step(response)
        assert score_response(response, env.unwrapped.task.answers, scorer=info["scorer"],
                              answer_format="boxed") == info["reward_components"]["accuracy"]


def test_cli_verify_exits_0_for_verified_and_2_for_rejected(submission, capsys):
    from memgym.cli import main

    board = str(submission.parents[1])
    assert main(["leaderboard", "verify", board]) == 0
    assert "verified oracle: average 1.0000 over 2/2 settings" in capsys.readouterr().err
    _edit_json(submission / "a" / "run.json", lambda d: d.update(env_id="MemAgent-SQuAD-v0"))
    assert main(["leaderboard", "verify", board]) == 2
    assert "oracle/a/run.json: env_id: 'MemAgent-SQuAD-v0' is not the board's" \
        in capsys.readouterr().err


def test_cli_submit_refuses_a_run_of_other_settings(tiny_board, tmp_path, capsys):
    from leaderboard_helpers import REPO, run_eval

    from memgym.cli import main

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        run_eval(tmp_path / "runs" / "a", "a", extra=["memory_tokens=99"])
    finally:
        os.chdir(cwd)
    code = main(["leaderboard", "submit", str(tmp_path / "runs"), "--board", str(tiny_board),
                 "--name", "x", "--model", "none", "--out", str(tmp_path / "subs")])
    assert code == 2
    err = capsys.readouterr().err
    assert "matches no setting of board tiny" in err and "env_kwargs.memory_tokens: 99" in err
    assert not (tmp_path / "subs" / "x").exists()


def test_cli_show_prints_every_settings_eval_command(capsys):
    from leaderboard_helpers import REPO

    from memgym.cli import main

    assert main(["leaderboard", "show", str(REPO / "leaderboards" / "ruler-hqa")]) == 0
    out = capsys.readouterr().out
    assert out.count("memgym eval --env MemAgent-HotpotQA-v0") == 10 and "eval_25600.json" in out
