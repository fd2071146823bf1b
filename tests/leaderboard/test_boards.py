"""The committed boards load, and name what the issue and the papers say they must."""

from __future__ import annotations

from pathlib import Path

import pytest

from memgym.envs.registration import RULER_ENV_NAMES
from memgym.errors import ConfigError
from memgym.leaderboard.board import find_boards, load_board

ROOT = Path(__file__).parents[2] / "leaderboards"


def test_every_committed_board_loads():
    ids = [load_board(p).id for p in find_boards(ROOT)]
    assert {"ruler-hqa", "ruler-ood", "synthetic"} <= set(ids)


def test_ruler_hqa_is_memagents_lengths_and_verifier():
    board = load_board(ROOT / "ruler-hqa")
    assert board.x_values == [50 * 2 ** k for k in range(10)]  # 50 ... 25,600 documents
    for s in board.settings:
        assert s.env_id == "MemAgent-HotpotQA-v0"
        assert s.env_kwargs["scorer"] == "sub_em"  # MemAgent's test verifier
        assert (s.env_kwargs["chunk_tokens"], s.env_kwargs["memory_tokens"]) == (5000, 1024)
        assert s.env_kwargs["data_path"].endswith(f"/eval_{s.x}.json")


def test_ruler_ood_covers_every_registered_ruler_id():
    import gymnasium as gym

    import memgym  # noqa: F401

    board = load_board(ROOT / "ruler-ood")
    ids = {s.env_id for s in board.settings}
    assert ids == {f"MemAgent-RULER-{name}-v0" for name in RULER_ENV_NAMES.values()}
    assert ids <= set(gym.registry)
    assert all(isinstance(s.env_kwargs["target_tokens"], int) for s in board.settings)


def test_synthetic_board_is_the_quickstarts_splits():
    from memgym.quickstart import experiment as X

    board = load_board(ROOT / "synthetic")
    assert [s.name for s in board.settings] == list(X.EVAL_SPLITS)
    assert board.episodes == X.EVAL_TASKS
    for s in board.settings:
        assert s.env_id == X.ENV_ID
        assert s.env_kwargs == X.split_env_kwargs(s.name, tokenizer="embedded")


def test_board_with_an_unknown_field_is_an_error(tmp_path):
    text = (ROOT / "synthetic" / "board.yaml").read_text().replace("metric:", "metrics:")
    (tmp_path / "board.yaml").write_text(text)
    with pytest.raises(ConfigError, match="unknown field 'metrics'. Did you mean 'metric'"):
        load_board(tmp_path)


def test_data_folder_comes_from_the_boards_env_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("MEMGYM_RULER_HQA_DIR", str(tmp_path))
    board = load_board(ROOT / "ruler-hqa")
    assert board.settings[0].env_kwargs["data_path"] == f"{tmp_path}/eval_50.json"


def test_missing_board_data_does_not_turn_the_checks_that_need_no_gold_off(monkeypatch, tmp_path):
    import json

    from memgym.leaderboard.verify import verify_submission

    monkeypatch.setenv("MEMGYM_RULER_HQA_DIR", str(tmp_path / "absent"))
    board = load_board(ROOT / "ruler-hqa")
    sub = tmp_path / "s"
    (sub / "50").mkdir(parents=True)
    (sub / "submission.json").write_text(json.dumps({
        "schema_version": 1, "board": "ruler-hqa", "name": "s", "model": "m",
        "agent_recipe": "agents/memagent.yaml", "memgym_version": "0.1.0", "seeds": [0],
        "hardware": "h", "date": "2025-01-01", "link": "", "command": "c",
        "scores": {"settings": {"50": 0.5}, "average": 0.5}}))
    (sub / "50" / "predictions.jsonl").write_text("not json at all\n")
    verdict = verify_submission(board, sub)
    assert not verdict.ok and "eval_50.json" in verdict.unverifiable
    found = {(p.file, p.reason.split(":")[0]) for p in verdict.problems}
    assert ("s/50/run.json", "file is missing") in found
    assert ("s/50/predictions.jsonl", "malformed JSON") not in found  # no run.json: not read
    (sub / "50" / "run.json").write_text("{}")
    verdict = verify_submission(board, sub)
    assert any(p.file == "s/50/predictions.jsonl" and "malformed JSON" in p.reason
               for p in verdict.problems)
    assert any(p.field == "env_id" for p in verdict.problems)


def _memagent_eval_file(path, n=128):
    """A MemAgent-format eval_{N}.json (context, input, answers) of n made-up questions."""
    import json

    rows = [{"context": f"Document 1:\nTown {i}\nThe mayor of Town {i} is Mayor{i}.\n\n"
                        f"Document 2:\nRiver\nThe river is long.",
             "input": f"Who is the mayor of Town {i}?", "answers": [f"Mayor{i}"], "num_docs": 2,
             "index": i} for i in range(n)]
    path.write_text(json.dumps(rows))


def test_ruler_hqa_submission_from_another_machines_data_folder_verifies(monkeypatch, tmp_path):
    """The board's gold comes from its own data folder; the run's data_path may live elsewhere."""
    import json

    from memgym.leaderboard.verify import verify_submission

    board_data, user_data = tmp_path / "board", tmp_path / "user"
    board_data.mkdir(), user_data.mkdir()
    _memagent_eval_file(board_data / "eval_50.json")
    monkeypatch.setenv("MEMGYM_RULER_HQA_DIR", str(board_data))
    board = load_board(ROOT / "ruler-hqa")
    sub = tmp_path / "s"
    (sub / "50").mkdir(parents=True)
    kwargs = {"chunk_tokens": 5000, "memory_tokens": 1024, "scorer": "sub_em",
              "data_path": str(user_data / "eval_50.json"), "tokenizer": "some/model",
              "answer_format": "answer_is"}
    run = {"env_id": "MemAgent-HotpotQA-v0", "env_kwargs": kwargs, "avg_k": 1, "episodes": 128,
           "seed": 0, "versions": {"memgym": "0.1.0"}, "recipe": {"kind": "memagent"},
           "agent_recipe_file": "agents/memagent_eval.yaml",
           "agent_recipe_text": (ROOT.parent / "agents" / "memagent_eval.yaml").read_text()}
    (sub / "50" / "run.json").write_text(json.dumps(run))
    rows = [{"task_id": t, "attempt": 0, "question": f"Who is the mayor of Town {t}?",
             "golds": [f"Mayor{t}"], "response": f"Therefore, the answer is Mayor{t}." if t % 2
             else "I do not know.", "reward_components": {"accuracy": float(t % 2)},
             "failed_calls": 0} for t in range(128)]
    (sub / "50" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from memgym.leaderboard.reproduce import eval_command

    (sub / "submission.json").write_text(json.dumps({
        "schema_version": 1, "board": "ruler-hqa", "name": "s", "model": "some/model",
        "agent_recipe": "agents/memagent_eval.yaml", "memgym_version": "0.1.0", "seeds": [0],
        "hardware": "h", "date": "2025-01-01", "link": "", "command": "c",
        "commands": {"50": eval_command(run, "50", "ruler-hqa")},
        "scores": {"settings": {"50": 0.5}, "average": 0.5}}))
    verdict = verify_submission(board, sub, repo_root=ROOT.parent)
    assert verdict.ok, [str(p) for p in verdict.problems]
    assert verdict.scores == {"50": 0.5} and not verdict.complete
    run["env_kwargs"]["data_path"] = str(user_data / "eval_100.json")  # another length's file
    (sub / "50" / "run.json").write_text(json.dumps(run))
    verdict = verify_submission(board, sub, repo_root=ROOT.parent)
    assert any(p.field == "env_kwargs.data_path" for p in verdict.problems)
