"""`memgym eval` on the dialogue envs: the oracle scores 1.0 through the CLI, and the summary
holds per-category F1/BLEU-1/EM, accuracy, recall@k, bank size and operation counts."""

import json
from pathlib import Path

import pytest

from memgym.cli import main
from memgym.eval import read_jsonl, summarize

AGENTS = Path(__file__).parents[2] / "agents"


def test_the_bank_oracle_scores_one_through_the_eval_cli(tmp_path):
    out = tmp_path / "bank"
    args = ["eval", "--env", "MemoryBank-Synthetic-v0", "--env-kwargs", "num_conversations=3",
            "--agent", str(AGENTS / "bank_oracle.yaml"), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["metrics"]
    assert metrics["episodes"] == 3
    for name in ("reward", "f1", "em", "bleu1", "op_validity"):
        assert metrics["metrics"][name]["mean"] == 1.0, name
    dialogue = metrics["dialogue"]
    assert set(dialogue["by_category"]) == {"single-hop", "multi-hop", "temporal", "unanswerable"}
    for block in dialogue["by_category"].values():
        assert (block["f1"], block["em"], block["bleu1"], block["accuracy"]) == (1.0, 1.0, 1.0, 1.0)
        assert block["accuracy_from"] == "em"
    assert dialogue["questions"] == sum(len(r["questions"]) for r in
                                        read_jsonl(out / "predictions.jsonl"))
    assert dialogue["recall_at_k"]["k"] == 60 and 0 < dialogue["recall_at_k"]["session"] <= 1
    assert dialogue["bank_size"]["mean"] > 0
    assert dialogue["op_counts"]["ADD/applied"]["total"] > 0
    assert dialogue["op_counts"]["MALFORMED/refused"]["total"] == 0
    assert summary["metrics"] == summarize(read_jsonl(out / "predictions.jsonl"))


def _row(task_id, questions, bank_size=2):
    return {"task_id": task_id, "attempt": 0, "reward": 0.0, "reward_components": {"f1": 0.0},
            "golds": [], "turns": [], "latency_s": 0.0,
            "tokens": {"prompt": 0, "completion": 0, "llm_calls": 0, "max_prompt": 0,
                       "peak_context": None, "memory": None},
            "questions": questions,
            "bank": {"bank_size": bank_size, "top_k": 20,
                     "op_counts": {"ADD/applied": bank_size, "MERGE/applied": 1}}}


def test_per_question_type_accuracy_and_recall_by_hand():
    rows = [
        _row(0, [{"category": "multi-session", "f1": 1.0, "em": 1.0, "bleu1": 1.0, "judge": 1.0,
                  "recall_session": 1.0, "recall_turn": 0.5}]),
        _row(1, [{"category": "multi-session", "f1": 0.5, "em": 0.0, "bleu1": 0.25,
                  "judge": 0.0, "recall_session": 0.0, "recall_turn": 0.0}]),
        _row(2, [{"category": "knowledge-update", "f1": 0.0, "em": 0.0, "bleu1": 0.0,
                  "judge": 1.0, "recall_session": None, "recall_turn": None}], bank_size=4),
    ]
    dialogue = summarize(rows)["dialogue"]
    multi = dialogue["by_category"]["multi-session"]
    assert multi["questions"] == 2 and multi["f1"] == 0.75 and multi["bleu1"] == 0.625
    assert multi["accuracy"] == 0.5 and multi["accuracy_from"] == "judge"
    assert multi["recall_session"] == 0.5 and multi["recall_turn"] == 0.25
    assert dialogue["by_category"]["knowledge-update"]["recall_session"] is None
    assert dialogue["recall_at_k"] == {"k": 20, "session": 0.5, "turn": 0.25}
    assert dialogue["accuracy"] == pytest.approx(2 / 3)
    assert dialogue["bank_size"]["mean"] == pytest.approx(8 / 3)
    assert dialogue["op_counts"]["MERGE/applied"] == {"total": 3, "per_episode": 1.0}


def test_single_question_envs_have_no_dialogue_block():
    rows = [{**_row(0, None), "questions": None}]
    assert "dialogue" not in summarize(rows)
