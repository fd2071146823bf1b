"""Boards that cannot be gamed (issue 20, items 11-14): privileged agents are reference lines,
missing board data never turns verification off, a row must show it is complete, `--overwrite`
never loses the old submission, and the recorded reproduce command is each setting's own."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from leaderboard_helpers import REPO

from memgym.agents.recipe import load_agent, load_recipe
from memgym.cli import main
from memgym.errors import ConfigError, MemgymError
from memgym.leaderboard.board import load_board
from memgym.leaderboard.render import board_rows, render_board, render_markdown, render_plot
from memgym.leaderboard.reproduce import eval_command, recipe_overrides, without_overrides
from memgym.leaderboard.submit import make_submission
from memgym.leaderboard.verify import (
    PRIVILEGED_KINDS,
    Verdict,
    privileged_reason,
    verify_submission,
)

SYNTHETIC = REPO / "leaderboards" / "synthetic" / "submissions"


def _verdict(folder: Path) -> Verdict:
    board = load_board(folder.parents[1])
    return verify_submission(board, folder, repo_root=board.folder.parents[1])


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# -- item 11: privileged agents ---------------------------------------------------------------
def test_every_shipped_recipe_is_privileged_exactly_when_its_agent_reads_the_task():
    from memgym.llm.scripted import ScriptedBackend

    for path in sorted((REPO / "agents").glob("*.yaml")):
        kind = load_recipe(path).kind
        if kind == "scripted_policy":  # a hand-written task solver: privileged by design
            assert privileged_reason({"kind": kind})
            continue
        try:
            agent = load_agent(path, ScriptedBackend(lambda request: ""))
        except MemgymError:  # a named encoder not prepared here (`memgym models prepare`)
            continue  # its kind is never privileged: rmm's reranker reads no task
        needs_task = bool(getattr(agent, "needs_task", False))
        assert (kind in PRIVILEGED_KINDS) == needs_task, path.name


@pytest.mark.parametrize("recipe", [None, [], {"kind": ["oracle"]}, {"kind": {"a": 1}}, {}])
def test_privileged_reason_reads_any_json_without_raising(recipe):
    assert privileged_reason(recipe) is None


def test_a_privileged_agent_is_a_reference_line_never_ranked(submission):
    board = load_board(submission.parents[1])
    oracle = _verdict(submission)
    assert oracle.ok and oracle.privileged.startswith("scripted_policy")
    agent = Verdict(submission.parent / "agent", scores={"a": 0.5, "b": 0.5},
                    metadata={"name": "agent"}, complete=True)
    rows = board_rows(board, [oracle, agent])
    assert [(r.name, r.rank) for r in rows] == [("agent", 1), ("oracle", None)]
    assert rows[1].reference.startswith("scripted_policy")
    table = render_markdown(board, rows, [])
    assert "| 1 | agent |" in table and "| ref | [oracle]" in table
    assert "Reference lines (privileged, not ranked)" in table


def test_the_committed_oracles_are_reference_lines_on_their_boards():
    text = (REPO / "leaderboards" / "synthetic" / "README.md").read_text(encoding="utf-8")
    assert "| ref | memgym-scripted-oracle |" in text
    assert "| 1 | memgym-embedded-memagent |" in text
    text = (REPO / "leaderboards" / "locomo" / "README.md").read_text(encoding="utf-8")
    assert "| ref | memgym-oracle-embedded |" in text and "| 1 |" not in text


# -- item 12: missing board data --------------------------------------------------------------
@pytest.fixture
def locomo_without_data(tmp_path, monkeypatch) -> Path:
    """A copy of the committed locomo board (and the recipes) with its data folder absent."""
    board = tmp_path / "repo" / "leaderboards" / "locomo"
    shutil.copytree(REPO / "leaderboards" / "locomo", board)
    shutil.copytree(REPO / "agents", tmp_path / "repo" / "agents")
    monkeypatch.setenv("MEMGYM_LOCOMO_DIR", str(tmp_path / "no-data-here"))
    return board


def test_garbage_predictions_are_rejected_even_without_the_boards_data(locomo_without_data,
                                                                       capsys):
    entry = locomo_without_data / "submissions" / "memgym-oracle-embedded"
    (entry / "test" / "predictions.jsonl").write_text("not json at all\n", encoding="utf-8")
    verdict = _verdict(entry)
    assert verdict.unverifiable and not verdict.ok
    assert any("malformed JSON" in p.reason for p in verdict.problems)
    assert main(["leaderboard", "verify", str(locomo_without_data)]) == 2
    assert "1 rejected" in capsys.readouterr().err


def test_a_claimed_score_is_checked_against_its_own_rows_without_the_boards_data(
        locomo_without_data):
    entry = locomo_without_data / "submissions" / "memgym-oracle-embedded"
    meta = json.loads((entry / "submission.json").read_text())
    assert not _verdict(entry).problems  # well-formed: only unverifiable
    meta["scores"]["settings"]["test"] = 0.99
    (entry / "submission.json").write_text(json.dumps(meta))
    assert [p.field for p in _verdict(entry).problems] == ["scores.settings.test"]
    path = entry / "test" / "predictions.jsonl"
    rows = _rows(path)
    rows[0]["questions"][0]["f1"] = 2.0  # out of range: no gold needed to see it
    rows[1]["questions"].append(dict(rows[1]["questions"][0]))  # a question answered twice
    _write_rows(path, rows)
    reasons = [str(p) for p in _verdict(entry).problems]
    assert any("questions[0].f1: must be a number in [0, 1]" in r for r in reasons)
    assert any("is answered twice" in r for r in reasons)


def test_render_never_drops_an_entry_it_could_not_check(locomo_without_data):
    readme = locomo_without_data / "README.md"
    before = readme.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot be checked here.*memgym data get locomo"):
        render_board(locomo_without_data)
    assert readme.read_text(encoding="utf-8") == before
    assert main(["leaderboard", "render", str(locomo_without_data)]) == 2


# -- item 13: failed_calls and --overwrite ----------------------------------------------------
def test_a_row_without_failed_calls_is_rejected(submission):
    path = submission / "a" / "predictions.jsonl"
    rows = _rows(path)
    del rows[0]["failed_calls"]
    _write_rows(path, rows)
    assert any(p.field == "line 1: failed_calls" and "must be an integer" in p.reason
               for p in _verdict(submission).problems)


def test_submit_derives_failed_calls_from_the_turns_or_refuses(tiny_board, oracle_runs,
                                                                tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(oracle_runs, runs)
    path = runs / "a" / "predictions.jsonl"
    rows = _rows(path)
    for row in rows:
        del row["failed_calls"]
    rows[0]["turns"] = [{"finish_reason": "error"}]
    _write_rows(path, rows)
    with pytest.raises(ConfigError, match="1 incomplete episodes"):
        make_submission(runs, tiny_board, name="x", model="none",
                        out=tiny_board / "submissions", date="2025-01-01")
    del rows[0]["turns"]
    _write_rows(path, rows)
    with pytest.raises(ConfigError, match="records neither failed_calls nor its turns"):
        make_submission(runs, tiny_board, name="x", model="none",
                        out=tiny_board / "submissions", date="2025-01-01")


def test_overwrite_keeps_the_old_submission_when_the_new_one_is_refused(submission,
                                                                        oracle_runs, tmp_path):
    before = {p.relative_to(submission): p.read_bytes() for p in submission.rglob("*")
              if p.is_file()}
    runs = tmp_path / "runs"
    shutil.copytree(oracle_runs, runs)
    path = runs / "b" / "predictions.jsonl"
    rows = _rows(path)
    rows[0]["golds"] = ["not the board's"]
    _write_rows(path, rows)
    with pytest.raises(ConfigError, match="rejected"):
        make_submission(runs, submission.parents[1], name="oracle", model="none",
                        out=submission.parent, date="2025-01-01", overwrite=True)
    after = {p.relative_to(submission): p.read_bytes() for p in submission.rglob("*")
             if p.is_file()}
    assert after == before
    assert sorted(p.name for p in submission.parent.iterdir()) == ["oracle"]
    assert sorted(p.name for p in submission.parents[1].iterdir() if p.name.startswith("."))\
        == []  # nothing left aside
    target, verdict = make_submission(oracle_runs, submission.parents[1], name="oracle",
                                      model="none", out=submission.parent, date="2025-02-02",
                                      overwrite=True)
    assert verdict.ok and json.loads((target / "submission.json").read_text())["date"] \
        == "2025-02-02"


# -- item 14: per-setting reproduce commands --------------------------------------------------
def test_each_settings_command_reproduces_its_own_run_with_the_agent_overrides():
    meta = json.loads((SYNTHETIC / "memgym-embedded-memagent" / "submission.json").read_text())
    board = load_board(REPO / "leaderboards" / "synthetic")
    assert set(meta["commands"]) == {s.name for s in board.settings}
    for setting in board.settings:
        run = json.loads((SYNTHETIC / "memgym-embedded-memagent" / setting.name /
                          "run.json").read_text())
        command = meta["commands"][setting.name]
        assert without_overrides(command) == eval_command(run, setting.name, "synthetic",
                                                          overrides=False)
        assert "--agent-overrides memory_max_new_tokens=48 answer_max_new_tokens=16" in command
        assert f"seed={setting.env_kwargs['seed']} " in command
        assert f"filler_sentences={setting.env_kwargs['filler_sentences']} " in command
        assert f"--out runs/synthetic/{setting.name}" in command
        # the overrides turn the recipe file into the recipe the run recorded (every field it
        # recorded; a later memgym may resolve more)
        overrides = command.split("--agent-overrides ")[1].split(" --")[0].split()
        resolved = load_recipe(REPO / run["agent_recipe_file"], overrides).to_dict()
        assert {k: resolved.get(k) for k in run["recipe"]} == run["recipe"]
    readme = (REPO / "leaderboards" / "synthetic" / "README.md").read_text(encoding="utf-8")
    assert all(c in readme for c in meta["commands"].values())


def test_recipe_overrides_reach_nested_components():
    path = REPO / "agents" / "memory_r1.yaml"
    resolved = load_recipe(path, ["manager.temperature=0.7", "answerer.max_new_tokens=16"])
    run = {"agent_recipe_text": path.read_text(), "recipe": resolved.to_dict()}
    overrides = recipe_overrides(run)
    assert overrides == {"manager.temperature": 0.7, "answerer.max_new_tokens": 16}
    again = load_recipe(path, [f"{k}={v}" for k, v in overrides.items()])
    assert again.to_dict() == resolved.to_dict()


def test_a_command_that_is_not_its_runs_is_rejected(submission):
    meta = json.loads((submission / "submission.json").read_text())
    meta["commands"]["b"] = meta["commands"]["a"]  # one setting's command for another
    (submission / "submission.json").write_text(json.dumps(meta))
    problems = _verdict(submission).problems
    assert [p.field for p in problems] == ["commands.b"]
    assert "seed=12" in problems[0].reason


def test_the_committed_commands_are_what_submit_derives_today():
    """If this fails after a recipe schema change, re-derive the committed `commands` (verify
    itself compares all but the overrides, so the committed entries stay verified)."""
    for folder in sorted(SYNTHETIC.iterdir()):
        meta = json.loads((folder / "submission.json").read_text())
        for name, command in meta["commands"].items():
            run = json.loads((folder / name / "run.json").read_text())
            assert command == eval_command(run, name, "synthetic")


def test_a_data_file_in_a_command_is_found_through_memgym_data():
    run = {"env_id": "MemoryR1-LoCoMo-v0", "env_kwargs": {"data_path": "/x/y/locomo10.json",
                                                          "split": "test"},
           "agent_recipe_file": "agents/dialogue_oracle.yaml", "episodes": 8, "avg_k": 1,
           "seed": 0}
    command = eval_command(run, "test", "locomo")
    assert 'data_path="$(memgym data path locomo --file locomo10.json)" split=test' in command
    assert "/x/y" not in command


# -- issue 21 item 7: intervals and the plot --------------------------------------------------
def test_the_plot_shows_100_percent_markers_unclipped_with_their_intervals(submission,
                                                                           tmp_path):
    import matplotlib.pyplot as plt

    board = load_board(submission.parents[1])
    rows = board_rows(board, [_verdict(submission)])
    assert rows[0].ci_by_x["a"] == pytest.approx([0.5101, 1.0], abs=1e-3)  # Wilson, 4 of 4
    figures = []
    original = plt.close
    try:
        plt.close = figures.append  # keep the figure render_plot would close
        render_plot(board, rows, tmp_path / "p.png")
    finally:
        plt.close = original
    ax = figures[0].axes[0]
    low, high = ax.get_ylim()
    assert low < 0 and high > 100
    assert ax.containers and ax.containers[0].has_yerr  # the interval bars are drawn
    plt.close(figures[0])


USER_KINDS = '''
class PeekingAgent:
    """Answers from the task's gold (a user's oracle): it declares needs_task."""

    needs_task = True

    def __init__(self, *, name="peeking"):
        self.name = name

    async def act(self, observation, ctx):
        if observation["phase"] != "answer":
            return observation["memory"]
        return "\\\\boxed{" + ctx.task.answers[0] + "}"


class HonestAgent(PeekingAgent):
    """The same without the task."""

    needs_task = False

    async def act(self, observation, ctx):
        return observation["memory"] if observation["phase"] != "answer" else "\\\\boxed{?}"
'''


@pytest.mark.parametrize(("kind", "privileged"), [("PeekingAgent", True), ("HonestAgent", False)])
def test_a_users_kind_that_reads_the_task_is_a_reference_line(tmp_path, monkeypatch, kind,
                                                              privileged):
    # `kind: module:Name` (issue 23) names no shipped kind, so PRIVILEGED_KINDS cannot know it:
    # memgym eval records what the agent declared, and verify reads that
    (tmp_path / "integrity_user_kinds.py").write_text(USER_KINDS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "integrity_user_kinds", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "recipe.yaml").write_text(f"kind: integrity_user_kinds:{kind}\n")
    assert main(["eval", "--env", "MemAgent-Synthetic-v0", "--agent", "recipe.yaml",
                 "--episodes", "2", "--out", "runs/x", "--no-progress"]) == 0
    run = json.loads((tmp_path / "runs" / "x" / "run.json").read_text())
    assert run["agent_needs_task"] is privileged
    reason = privileged_reason(run["recipe"], run)
    assert (reason is not None) == privileged
    if privileged:
        assert reason == "integrity_user_kinds:PeekingAgent: reads the task (needs_task)"
