"""`submit`: turn `memgym eval` output folders into a board submission.

    memgym leaderboard submit runs/hqa --board leaderboards/ruler-hqa --name my-agent \\
        --model Qwen/Qwen2.5-7B-Instruct --out leaderboards/ruler-hqa/submissions/

RUN_DIR is one `memgym eval --out` folder, or a folder of them (one per board setting). Each run
is matched to the board setting whose env id and env kwargs it ran; a run that matches none is an
error naming its differing kwargs. The submission written is

    <out>/<name>/submission.json            metadata + the scores recomputed here
    <out>/<name>/<setting>/run.json         as `memgym eval` wrote it
    <out>/<name>/<setting>/predictions.jsonl  its rows, without the per-call `turns` list

and is then verified like any other (`verify_submission`), so a submission that would be rejected
is never written silently.

For a question-level board (the dialogue boards) a row keeps only what `verify` needs and nothing
of the dataset's text (LoCoMo is CC BY-NC; its questions, golds and dialogue are not to be
redistributed): ids, the answers the agent gave, the per-question scores, the episode's reward
components, token counts and memory-bank counts (QUESTION_ROW_FIELDS, QUESTION_RECORD_FIELDS).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import platform
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memgym.errors import ConfigError
from memgym.eval.metrics import is_complete
from memgym.eval.records import read_jsonl
from memgym.leaderboard.board import Board, Setting, load_board
from memgym.leaderboard.files import Problem
from memgym.leaderboard.reproduce import eval_command
from memgym.leaderboard.verify import (
    METADATA_FILE,
    PREDICTIONS_FILE,
    RUN_FILE,
    Verdict,
    _check_env_kwargs,
    verify_submission,
)

__all__ = ["DROPPED_FIELDS", "QUESTION_RECORD_FIELDS", "QUESTION_ROW_FIELDS", "default_hardware",
           "make_submission"]

DROPPED_FIELDS = ("turns",)
"""Prediction-row fields left out of a submission (per-call details; the totals stay in `tokens`)."""

QUESTION_ROW_FIELDS = ("task_id", "attempt", "seed", "sampling_seed", "reward", "reward_components",
                       "reward_weights", "num_steps", "failed_calls", "tokens", "latency_s",
                       "bank", "questions")
"""What a question-level board's submission keeps of a row (no question, gold or dialogue text)."""
QUESTION_RECORD_FIELDS = ("question_id", "category", "prediction", "f1", "em", "bleu1",
                          "citation", "judge", "recall_session", "recall_turn", "num_retrieved")
"""What it keeps of each question record (the golds are the board's, not the submission's)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")


def default_hardware() -> str:
    """A one-line description of this machine (CPU and, if torch sees one, the GPU)."""
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    except ImportError:
        pass
    return f"CPU {platform.machine()} ({platform.processor() or platform.system()})"


def _run_dirs(run_dir: Path) -> list[Path]:
    if (run_dir / RUN_FILE).is_file():
        return [run_dir]
    found = sorted(p.parent for p in run_dir.glob(f"*/{RUN_FILE}"))
    if not found:
        raise ConfigError(f"{run_dir}: no {RUN_FILE} here or in its subfolders; pass the --out "
                          "folder of `memgym eval` (or a folder of them)")
    return found


def _match(board: Board, run: Mapping[str, Any], where: Path) -> Setting:
    """The board setting a run evaluated (same env id and kwargs, free kwargs aside)."""
    closest: tuple[int, str] | None = None
    for setting in board.settings:
        if run.get("env_id") != setting.env_id:
            continue
        problems = _check_env_kwargs(board, setting, run.get("env_kwargs"), str(where))
        if not problems:
            return setting
        if closest is None or len(problems) < closest[0]:
            closest = (len(problems), "; ".join(str(p) for p in problems[:3]))
    detail = f" The nearest setting differs: {closest[1]}" if closest else \
        f" No setting of the board runs {run.get('env_id')!r}."
    raise ConfigError(f"{where}: this run matches no setting of board {board.id}.{detail} "
                      f"Rerun with the board's settings (`memgym leaderboard show {board.id}`)")


def _strip_question_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A dialogue row without dataset text: QUESTION_ROW_FIELDS, records cut to their fields."""
    out = {k: row[k] for k in QUESTION_ROW_FIELDS if k in row}
    out["questions"] = [{k: q[k] for k in QUESTION_RECORD_FIELDS if k in q}
                        for q in row.get("questions") or [] if isinstance(q, Mapping)]
    return out


def _failed_calls(row: Mapping[str, Any], src: Path) -> int:
    """A row's failed LLM calls: recorded, or derived from its turns; neither is an error."""
    value = row.get("failed_calls")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    turns = row.get("turns")
    if isinstance(turns, list):
        return sum(1 for t in turns if isinstance(t, Mapping) and t.get("finish_reason") == "error")
    raise ConfigError(f"{src}: task {row.get('task_id')!r} records neither failed_calls nor its "
                      "turns, so it cannot show it is complete; rerun it with `memgym eval`")


def _copy_predictions(src: Path, dst: Path, *, question_level: bool = False
                      ) -> list[dict[str, Any]]:
    rows = read_jsonl(src)
    latest: dict[tuple[Any, Any], dict[str, Any]] = {}
    for row in rows:  # a resumed run's re-run episode counts once (the last), as in summarize
        latest[(row.get("task_id"), row.get("attempt", 0))] = {
            **row, "failed_calls": _failed_calls(row, src)}
    incomplete = [k for k, r in latest.items() if not is_complete(r)]
    if incomplete:
        raise ConfigError(f"{src}: {len(incomplete)} incomplete episodes (failed LLM calls), e.g. "
                          f"task {incomplete[0][0]}; finish the run with `memgym eval ... "
                          "--resume` before submitting")
    keep = _strip_question_row if question_level else (
        lambda r: {k: v for k, v in r.items() if k not in DROPPED_FIELDS})
    kept = [keep(r) for _, r in sorted(latest.items(), key=lambda kv: (str(kv[0][0]).zfill(12),
                                                                 str(kv[0][1])))]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
    return kept


Runs = dict[str, tuple[Path, dict[str, Any]]]
"""Setting name -> (the eval run's folder, its run.json)."""


def make_submission(run_dir: str | Path, board_dir: str | Path, *, name: str, model: str,
                    out: str | Path, hardware: str | None = None, date: str | None = None,
                    link: str = "", command: str = "", notes: str = "",
                    overwrite: bool = False) -> tuple[Path, Verdict]:
    """Write a submission of the eval runs under `run_dir` to `out/name` and verify it.

    The submission is built and verified in a folder beside `out`, then moved into place; with
    `overwrite`, an existing submission of the same name is replaced only once the new one
    verifies (a rejected one leaves it untouched).

    Args:
        run_dir: a `memgym eval --out` folder or a folder of them.
        board_dir: the board folder (or its board.yaml).
        name: the entry's name (letters, digits, `._+-`; the folder name).
        model: the model evaluated (as passed to `memgym eval --model`, or "none").
        out: the board's submissions folder.
        hardware, date, link, command, notes: metadata (defaults: this machine, today, "", a
            summary of the per-setting commands, ""). Each setting's reproduce command is
            always recorded in `commands`, built from its run.json.
        overwrite: replace an existing submission of the same name.

    Returns:
        The submission folder and its verdict.

    Raises:
        ConfigError: a bad name, a run that matches no board setting, two runs of one setting,
            runs that disagree on recipe or version, incomplete episodes, or a rejected result
            (the problems are listed).
    """
    board = load_board(board_dir)
    if not _NAME.match(name):
        raise ConfigError(f"--name {name!r}: use letters, digits and ._+- (at most 80 "
                          "characters, starting with a letter or digit)")
    target = Path(out) / name
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; choose another --name or pass --overwrite")
    runs = _collect_runs(board, Path(run_dir))
    recipe, version = _one_agent(runs, run_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=target.parent.parent))
    try:
        build = aside / name
        _write_settings(board, runs, build)
        commands = {k: eval_command(run, k, board.id) for k, (_, run) in runs.items()}
        meta: dict[str, Any] = {
            "schema_version": 1, "board": board.id, "name": name, "model": model,
            "agent_recipe": recipe, "memgym_version": version,
            "seeds": sorted({int(r.get("seed", 0)) for _, r in runs.values()}),
            "hardware": hardware or default_hardware(),
            "date": date or _dt.date.today().isoformat(), "link": link,
            "command": command or _command_summary(board, commands), "commands": commands,
            "notes": notes, "scores": {"settings": {}, "average": None},
        }
        verdict = _score_and_verify(board, build, meta)
        _swap_into_place(build, target)
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return target, dataclasses.replace(verdict, folder=target)


def _collect_runs(board: Board, run_dir: Path) -> Runs:
    """Each eval run under `run_dir`, matched to the board setting it ran (one run per setting)."""
    runs: Runs = {}
    for folder in _run_dirs(run_dir):
        run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        setting = _match(board, run, folder / RUN_FILE)
        if setting.name in runs:
            raise ConfigError(f"{folder} and {runs[setting.name][0]} both ran setting "
                              f"{setting.name!r}; submit one run per setting")
        runs[setting.name] = (folder, run)
    return runs


def _one_agent(runs: Runs, run_dir: str | Path) -> tuple[str, str]:
    """The one agent recipe file and memgym version every run used."""
    recipes = {r.get("agent_recipe_file") or "" for _, r in runs.values()}
    versions = {(r.get("versions") or {}).get("memgym", "") for _, r in runs.values()}
    if len(recipes) != 1 or len(versions) != 1:
        raise ConfigError(f"{run_dir}: the runs used {len(recipes)} agent recipes and "
                          f"{len(versions)} memgym versions; a submission is one agent and one "
                          "memgym version")
    return recipes.pop(), versions.pop()


def _write_settings(board: Board, runs: Runs, target: Path) -> None:
    """Each setting's run.json and its predictions (without per-call turns) under `target`."""
    for setting_name, (folder, _) in runs.items():
        (target / setting_name).mkdir(parents=True)
        shutil.copyfile(folder / RUN_FILE, target / setting_name / RUN_FILE)
        _copy_predictions(folder / PREDICTIONS_FILE, target / setting_name / PREDICTIONS_FILE,
                          question_level=board.level == "question")


def _score_and_verify(board: Board, target: Path, meta: dict[str, Any]) -> Verdict:
    """Write the recomputed scores into submission.json, verify it, raise if it is rejected."""
    _write_meta(target, meta)
    verdict = verify_submission(board, target, repo_root=board.folder.parent.parent)
    meta["scores"] = {"settings": dict(verdict.scores), "average": verdict.average}
    if board.level == "question":
        meta["scores"].update(metrics=dict(verdict.metrics), by_category=verdict.by_category,
                              claimed=_claimed_means(board, target))
    _write_meta(target, meta)
    verdict = verify_submission(board, target, repo_root=board.folder.parent.parent)
    real = [p for p in verdict.problems if not _is_claim(p)]
    if real:
        raise ConfigError(f"{target.name}: the submission is rejected (nothing was written):\n  "
                          + "\n  ".join(str(p) for p in real[:20]))
    return verdict


def _swap_into_place(build: Path, target: Path) -> None:
    """Move the verified `build` to `target`, replacing an old one only after the move is ready."""
    old = target.parent / f".{target.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    try:
        build.rename(target)
    except OSError:
        if old.exists():
            old.rename(target)  # put the old submission back
        raise
    shutil.rmtree(old, ignore_errors=True)


def _claimed_means(board: Board, target: Path) -> dict[str, float]:
    """Each claimed metric's mean over the submission's questions, when every question has one
    (the judge's verdicts that `memgym eval --judge-*` recorded); unverifiable, so only claimed."""
    values: dict[str, list[Any]] = {name: [] for name in board.claimed_metrics}
    for path in sorted(target.glob(f"*/{PREDICTIONS_FILE}")):
        for row in read_jsonl(path):
            for q in row.get("questions") or []:
                for name, found in values.items():
                    found.append(q.get(name))
    return {name: sum(v) / len(v) for name, v in values.items()
            if v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)}


def _is_claim(problem: Problem) -> bool:
    return problem.field.startswith("scores")


def _write_meta(target: Path, meta: Mapping[str, Any]) -> None:
    (target / METADATA_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                        encoding="utf-8")


def _command_summary(board: Board, commands: Mapping[str, str]) -> str:
    """submission.json's one-line `command`: where the exact per-setting commands are."""
    return (f"one `memgym eval` per setting ({', '.join(commands)}), each in submission.json's "
            f"`commands` and the {board.id} board's README")
