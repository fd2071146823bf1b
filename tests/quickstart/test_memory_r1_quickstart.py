"""`memgym quickstart memory-r1`: the extractor, the frozen reader, the teacher, the run end to end."""

from __future__ import annotations

import json

import pytest

from memgym.errors import ConfigError
from memgym.memory import MemoryEntry, shown_memories
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
    entries = [MemoryEntry("0", "Ana works as a nurse", "Ana", 1, "6:06 pm on 2 May, 2023",
                           "1:00 pm on 5 June, 2023", (), ("Ana works as a baker",)),
               MemoryEntry("1", "Ana has a pet cat", "Ana", 1, "6:06 pm on 2 May, 2023",
                           "6:06 pm on 2 May, 2023")]
    shown = M.shown_of({"memory_entries": shown_memories(entries)})
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

    M.register_tiny_kind()
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


def test_operation_lines_expand_to_memory_r1_json_one_line_per_fact():
    facts = ["Ana lives in Porto", "Ana works as a nurse", "No longer: Ana has a pet cat",
             "Ana does chess as a hobby"]
    ops = json.loads(M.expand_operations("UPDATE 3\nADD\nDELETE 5 7\nNOOP", facts))["memory"]
    assert ops == [{"id": "3", "text": "Ana lives in Porto", "event": "UPDATE"},
                   {"text": "Ana works as a nurse", "event": "ADD"},
                   {"id": "5", "event": "DELETE"}, {"id": "7", "event": "DELETE"}]


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "ADDADD", "UPDATE", "update 3", "DELETE",
                                  "DELETETETE 3", "\u0000", "{\"memory\": []}", "NOOP\nADD"])
def test_unreadable_or_missing_operation_lines_change_nothing(text):
    assert json.loads(M.expand_operations(text, ["Ana lives in Porto"])) == {"memory": []}
    # a line per fact in order: extra lines are ignored, missing ones are NOOP
    two = json.loads(M.expand_operations("ADD\nADD\nADD", ["Ana lives in Porto"]))["memory"]
    assert two == [{"text": "Ana lives in Porto", "event": "ADD"}]


def test_a_retraction_is_never_stored_as_text():
    fact = ["No longer: Ana lives in Porto"]
    assert json.loads(M.expand_operations("ADD", fact)) == {"memory": []}
    assert json.loads(M.expand_operations("UPDATE 2", fact)) == {"memory": []}
    assert json.loads(M.expand_operations("DELETE 2", fact))["memory"] == [
        {"id": "2", "event": "DELETE"}]


def test_the_manager_prompt_numbers_the_facts_and_lists_the_memories_by_id():
    prompt = M.manager_prompt([M.Memory("4", "Ana lives in Lisbon")],
                              ["Ana lives in Porto", "Ana has a pet cat"])
    assert "[4] Ana lives in Lisbon" in prompt
    assert "1. Ana lives in Porto\n2. Ana has a pet cat" in prompt
    assert "(none)" in M.manager_prompt([], ["Ana lives in Porto"])


def test_the_embedded_manager_is_a_named_model_with_its_build_record():
    from memgym.models import get_spec, is_present, resolve_model_path

    assert get_spec(M.EMBEDDED_MANAGER).kind == "embedded" and is_present(M.EMBEDDED_MANAGER)
    build = json.loads((M.Path(resolve_model_path(M.EMBEDDED_MANAGER)) / "BUILD.json").read_text())
    assert build["settings"]["steps"] == 1200  # scripts/build_tiny_memory_r1.py's default
    assert build["final_loss"] < build["loss_curve"][0]


def test_importing_the_cli_registers_no_quickstart_kind():
    import subprocess
    import sys

    code = ("import memgym.cli, memgym.quickstart.memory_r1; "
            "from memgym.agents.recipe import AGENT_KINDS; print('memory_r1_tiny' in AGENT_KINDS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "False"


def test_quickstart_memory_r1_command_runs_end_to_end(tmp_path):
    from memgym.cli import main

    out = tmp_path / "run"
    rc = main(["quickstart", "memory-r1", "--out", str(out), "--steps", "1", "--eval-tasks", "2"])
    assert rc in (0, None)
    table = json.loads((out / "quickstart.json").read_text())
    assert set(table["splits"]) == set(M.EVAL_SPLITS)
    for row in ("base", "trained", "oracle"):
        assert 0.0 <= table["splits"]["in_domain"][row]["mean"] <= 1.0
    assert table["splits"]["in_domain"]["oracle"]["mean"] > 0.5
    for when in ("base", "trained"):  # every held-out fact decision is counted once
        assert sum(table["decisions"][when].values()) == sum(table["decisions"]["base"].values())
    assert (out / "table.md").read_text().startswith("| Manager")
    assert (out / "quickstart.png").stat().st_size > 0
    with pytest.raises(ConfigError, match="overwrite"):
        M.run_quickstart(out, steps=1, eval_tasks=2)
