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


def test_dialogue_traces_record_each_change_so_the_bank_can_be_replayed(tmp_path):
    # traces.jsonl was all "" on the dialogue envs (their observations have no `memory` field)
    out = tmp_path / "bank"
    args = ["eval", "--env", "MemoryBank-Synthetic-v0", "--env-kwargs", "num_conversations=2",
            "--agent", str(AGENTS / "bank_oracle.yaml"), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    for trace, pred in zip(read_jsonl(out / "traces.jsonl"), read_jsonl(out / "predictions.jsonl")):
        bank: dict[str, str] = {}
        reads = 0
        for step in trace["memory"]:
            for line in step.splitlines():
                event, _, rest = line.partition(" ")
                if event in ("ADD", "UPDATE", "MERGE"):
                    entry, _, text = rest.partition(" ")
                    bank[entry] = text
                elif event == "DELETE":
                    bank.pop(rest)
                elif event == "read":
                    reads += 1
                    assert set(rest.split()) <= set(bank)  # it read what the bank held
                else:
                    assert line == "(no change)", line
        assert bank and len(bank) == pred["bank"]["bank_size"]
        assert reads == len(pred["questions"])


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
    assert dialogue["op_counts"]["MERGE/applied"] == {"total": 3, "per_episode": 1.0,
                                                      "p50": 1.0, "p95": 1.0, "max": 1.0}


def test_single_question_envs_have_no_dialogue_block():
    rows = [{**_row(0, None), "questions": None}]
    assert "dialogue" not in summarize(rows)


def test_operations_missing_from_an_episode_count_as_zero_in_its_distribution():
    rows = [_row(0, [], bank_size=2), _row(1, [], bank_size=2), _row(2, [], bank_size=6)]
    rows[0]["bank"]["op_counts"]["DELETE/applied"] = 3
    ops = summarize(rows)["dialogue"]["op_counts"]
    assert ops["DELETE/applied"]["total"] == 3
    assert ops["DELETE/applied"]["per_episode"] == 1.0  # 3 over three episodes, not over one
    assert ops["DELETE/applied"]["p50"] == 0.0 and ops["DELETE/applied"]["max"] == 3.0
    assert ops["ADD/applied"]["per_episode"] == pytest.approx(10 / 3)


def test_overall_row_and_judge_failures_are_counted_per_category():
    judged = {"f1": 0.0, "judge": 0.0}
    rows = [
        {**_row(0, [{"category": "temporal", "f1": 1.0, "em": 1.0, "bleu1": 1.0, "judge": 1.0},
                    {"category": "temporal", "f1": 0.0, "em": 0.0, "bleu1": 0.0,
                     "judge": None}]), "reward_components": judged},
        {**_row(1, [{"category": "single-hop", "f1": 0.5, "em": 0.0, "bleu1": 0.5,
                     "judge": None}]), "reward_components": judged},
    ]
    dialogue = summarize(rows)["dialogue"]
    overall = dialogue["overall"]
    assert overall["questions"] == 3 and overall["f1"] == 0.5
    assert overall["judged"] == 1 and overall["judge_failed"] == 2
    assert overall["judge"] == 1.0 and overall["accuracy_from"] == "judge"
    single = dialogue["by_category"]["single-hop"]
    # every judge call failed: the accuracy is the judge's (unknown), not EM in disguise
    assert single["judge_failed"] == 1 and single["accuracy"] is None
    assert single["accuracy_from"] == "judge"
    assert dialogue["by_category"]["temporal"]["judge_failed"] == 1
    assert {k: dialogue[k] for k in overall} == overall
