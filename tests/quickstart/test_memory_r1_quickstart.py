"""`memgym quickstart memory-r1`: the extractor, the frozen reader, the teacher, the run end to end."""

from __future__ import annotations

import json

import pytest

from memgym.errors import ConfigError
from memgym.quickstart import memory_r1 as M


def test_extractor_reads_synthetic_lines_back_into_canonical_facts():
    assert M.extract_facts("Ana", "Big news: I moved from Lisbon to Porto.") == ["Ana lives in Porto"]
    assert M.extract_facts("Ana", "I moved out of Porto and I have no place of my own yet.") == [
        "No longer: Ana lives in Porto"]
    assert M.extract_facts("Ana", "Have you ever seen a patient cushion?") == []


def test_reader_reads_the_first_stored_memory_and_rewards_update_and_delete():
    stale = [M.Memory("0", "Ana lives in Lisbon"), M.Memory("1", "Ana lives in Porto")]
    assert M.read_answer("Where does Ana live?", stale) == "Lisbon"  # ADD instead of UPDATE
    assert M.read_answer("Where does Ana live?", [M.Memory("0", "Ana lives in Porto")]) == "Porto"
    assert M.read_answer("Where does Ana live?", []) == "unknown"  # deleted
    shown = M.parse_rendered(
        "[0] (Ana; session 1; 6:06 pm on 2 May, 2023; updated 1:00 pm on 5 June, 2023) "
        "Ana works as a nurse\n    (before: Ana works as a baker)\n"
        "[1] (Ana; session 1; 6:06 pm on 2 May, 2023) Ana has a pet cat")
    assert M.read_answer("What was Ana's job before 3 June 2023?", shown) == "baker"
    assert M.read_answer("When did Ana get a cat?", shown) == "2 May 2023"
    assert M.read_answer("What pet does the person who works as a nurse have?", shown) == "cat"


def test_teacher_updates_when_exact_and_adds_or_skips_when_imperfect():
    shown = [M.Memory("3", "Ana lives in Lisbon")]
    exact = json.loads(M.teacher_ops(shown, ["Ana lives in Porto", "No longer: Ana lives in Lisbon"]))
    assert exact["memory"] == [{"id": "3", "text": "Ana lives in Porto", "event": "UPDATE"},
                               {"id": "3", "event": "DELETE"}]
    sloppy = json.loads(M.teacher_ops(shown, ["Ana lives in Porto", "No longer: Ana lives in Lisbon"],
                                      add_for_update=1.0, delete=0.0))
    assert sloppy["memory"] == [{"text": "Ana lives in Porto", "event": "ADD"}]


def test_oracle_policy_beats_the_imperfect_teacher_through_the_env(tmp_path):
    from memgym.agents.recipe import load_agent

    oracle = M._evaluate(load_agent({"kind": "memory_r1_tiny", "teacher": "oracle"}, None),
                         tmp_path / "o", 3, 0)
    teacher = M._evaluate(load_agent({"kind": "memory_r1_tiny", "teacher": "imperfect"}, None),
                          tmp_path / "t", 3, 0)
    assert (sum(oracle[s]["mean"] for s in M.EVAL_SPLITS)
            > sum(teacher[s]["mean"] for s in M.EVAL_SPLITS))
    for split in M.EVAL_SPLITS:
        low, high = oracle[split]["ci95"]
        assert low <= oracle[split]["mean"] <= high and oracle[split]["n"] > 0


def test_quickstart_refuses_too_few_eval_tasks(tmp_path):
    with pytest.raises(ConfigError, match="eval_tasks"):
        M.run_quickstart(tmp_path, eval_tasks=1)


@pytest.mark.slow
def test_quickstart_memory_r1_command_runs_end_to_end(tmp_path):
    from memgym.cli import main

    out = tmp_path / "run"
    rc = main(["quickstart", "memory-r1", "--out", str(out), "--steps", "1", "--sft-steps", "3",
               "--eval-tasks", "2"])
    assert rc in (0, None)
    table = json.loads((out / "quickstart.json").read_text())
    assert set(table["splits"]) == set(M.EVAL_SPLITS)
    for row in ("base", "trained", "oracle"):
        assert 0.0 <= table["splits"]["in_domain"][row]["mean"] <= 1.0
    assert (out / "table.md").read_text().startswith("| Manager")
    assert (out / "quickstart.png").stat().st_size > 0
