"""`verify`: recompute every score of a submission from its predictions, against the board's gold.

The gold answers come from building the board's own env tasks (`gym.make(setting.env_id,
**setting.env_kwargs)`, task ids 0..episodes-1), never from the submission. Each prediction row's
raw final `response` is parsed and scored again exactly as `LongContextMemoryEnv` scores an answer
(the answer format's parser, the board's scorer, accuracy 0 without an extracted answer), and the
per-setting score is the mean over tasks of the mean over attempts (avg@K, as
`memgym.eval.metrics.summarize` computes it).

A submission is rejected, with a reason naming the file and the field, for: claimed scores that
disagree with the recomputed ones (in submission.json or in a row's reward_components), missing or
duplicated (task_id, attempt) rows, tasks outside the board, env settings other than the board's,
a gold answer or question that is not the board's, an incomplete episode (a failed LLM call), a
wrong or absent memgym version or agent recipe, missing metadata, unexpected or oversized files
and fields, malformed JSON. Files are read by `memgym.leaderboard.files` (bounded, inert). A row must record `failed_calls`
(0 when complete), and submission.json's `commands` must be, per setting, the command
`memgym.leaderboard.reproduce.eval_command` builds from that setting's run.json (its agent
overrides aside: re-deriving them depends on the verifying memgym's recipe schema).

Without the board's data (its gold cannot be built) nothing is switched off: every check that
needs no gold still runs (files, schema, sizes, repeats, coverage, scores in range, and the
claimed scores' own arithmetic: submission.json's against the rows', a row's against its
questions'), and a submission that passes them is `unverifiable`, never `ok`.

Privileged agents (`PRIVILEGED_KINDS`: the kinds whose agents read the task, `needs_task`, and
hand-written task solvers; and any agent whose run.json records `agent_needs_task`, as a user's
kind) verify like any other but carry `Verdict.privileged`: boards show them as reference
lines, never ranked.

A question-level board (`level: question`, the dialogue boards) scores each row's `questions`
records instead: every record's `prediction` (the answer the env scored) is scored again with
LoCoMo's per-category rules against the board's gold answers and category for that question id
(`memgym.rewards.locomo.locomo_scores`), for the ranked metric and every shown one; a setting's
score is the mean over its questions (all attempts pooled), and per-category means are kept too.
Rejected besides: a question id that is not one of the board's for that task, a question asked
twice or missing, a category or gold that is not the board's, a claimed per-question, per-episode,
per-metric or per-category score that disagrees. Claimed metrics (an LLM judge) are only checked
to be numbers in [0, 1]; they are reported as unverified.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgym.errors import MemgymError
from memgym.eval.metrics import mean_ci
from memgym.leaderboard.board import Board, Setting, load_board
from memgym.leaderboard.files import LIMITS, Limits, Problem, read_json, read_jsonl, string_too_long
from memgym.leaderboard.reproduce import eval_command, without_overrides

__all__ = ["METADATA_FILE", "PREDICTIONS_FILE", "PRIVILEGED_KINDS", "RECORDED_METRICS", "RUN_FILE",
           "GoldSet", "Verdict", "board_gold", "privileged_reason", "question_scores",
           "score_response", "setting_score", "verify_board", "verify_submission"]

METADATA_FILE, RUN_FILE, PREDICTIONS_FILE = "submission.json", "run.json", "predictions.jsonl"
TOLERANCE = 1e-6
"""Largest allowed difference between a claimed and a recomputed score."""

_METADATA_KEYS = {"schema_version", "board", "name", "model", "agent_recipe", "memgym_version",
                  "seeds", "hardware", "date", "link", "command", "commands", "scores",
                  "notes"}


@dataclass(frozen=True)
class GoldSet:
    """The board's own tasks of one setting: question and gold answers per task id, and scoring."""

    questions: dict[int, str]
    golds: dict[int, list[str]]
    scorers: dict[int, str]
    answer_format: str
    lenient_extraction: bool
    dialogue: dict[int, dict[str, tuple[list[str], str]]] = field(default_factory=dict)
    """Question-level boards: per task id, question id -> (gold answers, category), in order."""


@dataclass
class Verdict:
    """The outcome of verifying one submission."""

    folder: Path
    problems: list[Problem] = field(default_factory=list)
    unverifiable: str | None = None
    """Why the board's gold could not be built here (its data is absent): the scores were not
    recomputed, only every check that needs no gold ran; never `ok`."""
    scores: dict[str, float] = field(default_factory=dict)
    """Recomputed score per setting (only settings the submission covers); when `unverifiable`,
    the scores the rows claim (checked only for their arithmetic)."""
    ci95: dict[str, list[float] | None] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    complete: bool = False
    """Whether every board setting is covered (only complete submissions are ranked)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Question-level boards: each recomputed metric, the mean over settings of its question mean."""
    by_category: dict[str, dict[str, float]] = field(default_factory=dict)
    """Question-level boards: category -> metric -> mean over the category's questions."""
    claimed: dict[str, float] = field(default_factory=dict)
    """Claimed metrics that cannot be recomputed (an LLM judge): unverified, never ranked."""
    privileged: str | None = None
    """Why the agent is privileged (it reads the gold, or is a hand-written task policy): such
    an entry is a reference line on the board, never ranked (`privileged_reason`)."""

    @property
    def ok(self) -> bool:
        """Verified: no problem and the gold could be built."""
        return not self.problems and self.unverifiable is None

    @property
    def average(self) -> float | None:
        """Mean of the recomputed setting scores."""
        return float(sum(self.scores.values()) / len(self.scores)) if self.scores else None


# -- scoring: the env's answer step, from the recorded response -----------------------------------
def score_response(response: str, golds: Sequence[str], *, scorer: str, answer_format: str,
                   lenient_extraction: bool = False) -> float:
    """Accuracy of one final response, computed as `LongContextMemoryEnv` computes it."""
    from memgym.envs.long_context import MAX_ACTION_CHARS
    from memgym.rewards import extract_answer, get_scorer
    from memgym.rewards.scorers import reads_raw_text

    text = response[-MAX_ACTION_CHARS:]
    extracted = extract_answer(text, answer_format)
    found = extracted is not None and bool(extracted.strip())
    fn = get_scorer(scorer)
    if reads_raw_text(fn):
        prediction: str | None = text
    elif found:
        prediction = extracted
    else:
        prediction = text.strip() if lenient_extraction else None
    return 0.0 if prediction is None else float(fn(prediction, list(golds)))


def board_gold(board: Board, setting: Setting) -> GoldSet:
    """Build the board's env for `setting` and read its tasks 0..episodes-1 (questions, golds).

    Raises:
        MemgymError: the env cannot be built (e.g. the board's data files are absent).
    """
    import gymnasium as gym

    import memgym  # noqa: F401  (registers the ids)
    from memgym.errors import ConfigError

    try:
        env = gym.make(setting.env_id, **setting.env_kwargs)
    except (OSError, gym.error.Error, TypeError) as exc:
        raise ConfigError(f"board {board.id}, setting {setting.name}: cannot build "
                          f"{setting.env_id}: {exc}") from exc
    base = env.unwrapped
    if base.num_tasks < board.episodes:
        raise ConfigError(f"board {board.id}, setting {setting.name}: the env has "
                          f"{base.num_tasks} tasks, fewer than the board's episodes={board.episodes}")
    if board.level == "question":
        return _dialogue_gold(board, setting, base)
    questions, golds, scorers = {}, {}, {}
    for t in range(board.episodes):
        task = base.tasks[t]
        questions[t], golds[t] = task.question, [str(a) for a in task.answers]
        name = base.scorer if base.scorer is not None else (task.scorer or "sub_em")
        scorers[t] = name if isinstance(name, str) else name.__name__
    return GoldSet(questions, golds, scorers, base.answer_format, bool(base.lenient_extraction))


def _dialogue_gold(board: Board, setting: Setting, base: Any) -> GoldSet:
    """The question golds of a dialogue env's conversations 0..episodes-1 (every question)."""
    from memgym.errors import ConfigError

    conversations = getattr(base, "conversations", None)
    if conversations is None:
        raise ConfigError(f"board {board.id}, setting {setting.name}: {setting.env_id} is not a "
                          "dialogue env (no conversations); `level: question` needs one")
    dialogue = {t: {q.question_id: ([str(a) for a in q.answers], str(q.category or ""))
                    for q in conversations[t].questions} for t in range(board.episodes)}
    return GoldSet({}, {}, {}, "", False, dialogue)


def question_scores(prediction: str, golds: Sequence[str], category: str
                    ) -> dict[str, float]:
    """LoCoMo's F1 / EM / BLEU-1 of one recorded answer, as `DialogueMemoryEnv` scores it, and
    mem0's F1 (`mem0_f1`: another scale, the one Memory-R1's published F1 uses)."""
    from memgym.envs.dialogue import MAX_ANSWER_CHARS
    from memgym.rewards.locomo import answer_mem0_f1, locomo_scores

    answer = prediction[:MAX_ANSWER_CHARS]
    return {**locomo_scores(answer, list(golds), category),
            "mem0_f1": answer_mem0_f1(answer, list(golds), category)}


def setting_score(per_row: Mapping[tuple[int, int], float]) -> tuple[float, list[float] | None]:
    """Mean over tasks of the mean over attempts, and its 95% interval (as `summarize`)."""
    by_task: dict[int, list[float]] = defaultdict(list)
    for (task_id, _), value in per_row.items():
        by_task[task_id].append(value)
    block = mean_ci([sum(v) / len(v) for _, v in sorted(by_task.items())])
    return float(block["mean"]), block["ci95"]


PRIVILEGED_KINDS: dict[str, str] = {
    "oracle": "reads the task's gold context (needs_task)",
    "dialogue_oracle": "reads the gold evidence turns (needs_task)",
    "bank_oracle": "writes the gold facts into its bank (needs_task)",
    "scripted_policy": "a hand-written policy of the task's own structure (a task oracle)",
}
"""Agent recipe kinds whose entries are reference lines, never ranked, and why: the kinds whose
agents declare `needs_task` (tests/leaderboard checks this against every shipped recipe), and
scripted policies (a task author's hand-written solver, `memgym.agents.policy`)."""


def privileged_reason(recipe: Any, run: Any = None) -> str | None:
    """Why a run's resolved agent recipe (run.json's `recipe`) is privileged, or None.

    A shipped kind is looked up in `PRIVILEGED_KINDS`; any other kind (a user's `module:Name`
    or registered one, which verify never imports) by what `memgym eval` recorded of the agent
    it ran: run.json's `agent_needs_task`.
    """
    kind = recipe.get("kind") if isinstance(recipe, dict) else None
    if isinstance(kind, str) and kind in PRIVILEGED_KINDS:
        return f"{kind}: {PRIVILEGED_KINDS[kind]}"
    if isinstance(run, dict) and run.get("agent_needs_task") is True:
        return f"{kind if isinstance(kind, str) else 'the agent'}: reads the task (needs_task)"
    return None


# -- checks -----------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_metadata(board: Board, meta: Any, label: str, limits: Limits) -> list[Problem]:
    if not isinstance(meta, dict):
        return [Problem(label, "", "must be a JSON object")]
    problems = [Problem(label, k, "unknown field") for k in sorted(set(meta) - _METADATA_KEYS)][:10]
    if meta.get("schema_version") != 1:
        problems.append(Problem(label, "schema_version", "must be 1"))
    if meta.get("board") != board.id:
        problems.append(Problem(label, "board", f"must be {board.id!r}, got {meta.get('board')!r:.80}"))
    for key in board.submission_fields:
        value = meta.get(key)
        if key == "seeds":
            if not isinstance(value, list) or not value or not all(_is_int(s) for s in value):
                problems.append(Problem(label, "seeds", "must be a non-empty list of integers"))
            continue
        if not isinstance(value, str) or (not value.strip() and key != "link"):
            problems.append(Problem(label, key, "required: a non-empty string"))
            continue
        if len(value) > limits.short_chars:
            problems.append(Problem(label, key, f"longer than {limits.short_chars} characters"))
        elif key == "date":
            try:
                _dt.date.fromisoformat(value)
            except ValueError:
                problems.append(Problem(label, "date", f"{value[:40]!r} is not YYYY-MM-DD"))
        elif key == "link" and value and not value.startswith(("https://", "http://")):
            problems.append(Problem(label, "link", "must be an http(s) URL or empty"))
    notes = meta.get("notes", "")
    if not isinstance(notes, str) or len(notes) > limits.short_chars:
        problems.append(Problem(label, "notes", f"must be a string of at most "
                                                f"{limits.short_chars} characters"))
    version = meta.get("memgym_version")
    if isinstance(version, str) and board.memgym_version and not _version_ok(version, board):
        problems.append(Problem(label, "memgym_version",
                                f"{version[:40]!r} does not satisfy the board's {board.memgym_version}"))
    scores = meta.get("scores")
    if not isinstance(scores, dict) or not isinstance(scores.get("settings"), dict):
        problems.append(Problem(label, "scores", "must be {\"settings\": {name: score}, "
                                                 "\"average\": score}"))
    return problems


def _version_ok(version: str, board: Board) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) in SpecifierSet(board.memgym_version)
    except (InvalidVersion, InvalidSpecifier):
        return False


def _check_env_kwargs(board: Board, setting: Setting, kwargs: Any, label: str) -> list[Problem]:
    if not isinstance(kwargs, dict):
        return [Problem(label, "env_kwargs", "must be a JSON object")]
    problems = []
    for key, want in setting.env_kwargs.items():
        if key not in kwargs:
            problems.append(Problem(label, f"env_kwargs.{key}", f"missing; the board runs "
                                                                f"{key}={want!r}"))
        elif not _same_value(kwargs[key], want, board):
            problems.append(Problem(label, f"env_kwargs.{key}", f"{kwargs[key]!r:.80} is not the "
                                                                f"board's {want!r}"))
    for key in sorted(set(kwargs) - set(setting.env_kwargs)):
        allowed = board.free_env_kwargs.get(key)
        if allowed is None:
            problems.append(Problem(label, f"env_kwargs.{key}", "not a setting of this board "
                                                                "(other env settings are refused)"))
        elif allowed != "any" and kwargs[key] not in allowed:
            problems.append(Problem(label, f"env_kwargs.{key}", f"{kwargs[key]!r:.80} is not one "
                                                                f"of {allowed}"))
    return problems


def _same_value(got: Any, want: Any, board: Board) -> bool:
    """Equal, or the same file of the board's data folder (paths differ between machines)."""
    if isinstance(got, bool) != isinstance(want, bool):
        return False
    if got == want:
        return True
    data = str(board.data_dir or "")
    if data and isinstance(want, str) and isinstance(got, str) and want.startswith(data + "/"):
        return got.replace("\\", "/").endswith(want[len(data):])
    return False


def _check_run(board: Board, setting: Setting, run: Any, meta: Mapping[str, Any], label: str,
               repo_root: Path | None) -> list[Problem]:
    if not isinstance(run, dict):
        return [Problem(label, "", "must be a JSON object (the run.json `memgym eval` wrote)")]
    problems = []
    if run.get("env_id") != setting.env_id:
        problems.append(Problem(label, "env_id", f"{run.get('env_id')!r:.80} is not the board's "
                                                 f"{setting.env_id!r}"))
    problems += _check_env_kwargs(board, setting, run.get("env_kwargs"), label)
    if run.get("avg_k") not in board.avg_k:
        problems.append(Problem(label, "avg_k", f"{run.get('avg_k')!r:.20} is not one of the "
                                                f"board's {list(board.avg_k)}"))
    if run.get("episodes") != board.episodes:
        problems.append(Problem(label, "episodes", f"{run.get('episodes')!r:.20}: the board "
                                                   f"evaluates {board.episodes} tasks"))
    seeds = meta.get("seeds")
    if isinstance(seeds, list) and run.get("seed") not in seeds:
        problems.append(Problem(label, "seed", f"{run.get('seed')!r:.20} is not among "
                                               f"submission.json's seeds"))
    versions = run.get("versions")
    version = versions.get("memgym") if isinstance(versions, dict) else None
    if not isinstance(version, str):
        problems.append(Problem(label, "versions.memgym", "absent: run.json must record the "
                                                          "memgym version that produced it"))
    elif version != meta.get("memgym_version"):
        problems.append(Problem(label, "versions.memgym", f"{version[:40]!r} differs from "
                                                          "submission.json's memgym_version"))
    problems += _check_recipe(run, meta, label, repo_root)
    return problems


def _check_recipe(run: Mapping[str, Any], meta: Mapping[str, Any], label: str,
                  repo_root: Path | None) -> list[Problem]:
    recipe, text = run.get("recipe"), run.get("agent_recipe_text")
    if not isinstance(recipe, dict) or not recipe.get("kind"):
        return [Problem(label, "recipe", "absent: run.json must hold the resolved agent recipe")]
    if not isinstance(text, str) or not text.strip():
        return [Problem(label, "agent_recipe_text", "absent: run.json must hold the recipe's text")]
    named = meta.get("agent_recipe")
    if run.get("agent_recipe_file") != named:
        return [Problem(label, "agent_recipe_file", f"{run.get('agent_recipe_file')!r:.120} is not "
                                                    f"submission.json's agent_recipe {named!r:.120}")]
    if repo_root is not None and isinstance(named, str) and not Path(named).is_absolute() \
            and ".." not in Path(named).parts:
        committed = repo_root / named
        if committed.is_file() and committed.read_text(encoding="utf-8") != text:
            return [Problem(label, "agent_recipe_text", f"differs from the committed {named}")]
    return []


_EPISODE_ROW_FIELDS = (
    ("task_id", _is_int, "an integer"), ("attempt", _is_int, "an integer"),
    ("response", lambda v: isinstance(v, str), "a string"),
    ("golds", lambda v: isinstance(v, list) and all(isinstance(g, str) for g in v),
     "a list of strings"),
    ("reward_components", lambda v: isinstance(v, dict), "an object"))
_QUESTION_ROW_FIELDS = (
    ("task_id", _is_int, "an integer"), ("attempt", _is_int, "an integer"),
    ("questions", lambda v: isinstance(v, list), "a list of records"),
    ("reward_components", lambda v: isinstance(v, dict), "an object"))


def _row_shape_problem(row: Any, fields: tuple, board: Board, avg_k: int, limits: Limits
                       ) -> tuple[str, str] | None:
    """(field, reason) of the first thing wrong with a row's shape (`fields`: (key, check,
    kind) triples), its task and attempt range and its completeness; None when all is well."""
    if not isinstance(row, dict):
        return "", "a row must be a JSON object"
    long = string_too_long(row, limits.string_chars)
    if long is not None:
        return long, f"longer than {limits.string_chars} characters"
    for key, ok, kind in fields:
        if not ok(row.get(key)):
            return key, f"must be {kind}"
    if not 0 <= row["task_id"] < board.episodes:
        return "task_id", f"{row['task_id']} is not a task of the board (0..{board.episodes - 1})"
    if not 0 <= row["attempt"] < avg_k:
        return "attempt", f"{row['attempt']} is outside 0..{avg_k - 1} (run.json's avg_k)"
    if not _is_int(row.get("failed_calls")):
        return "failed_calls", ("must be an integer (the episode's failed LLM calls, 0 when "
                                "complete); a row without it cannot show it is complete")
    if row["failed_calls"] != 0:
        return "failed_calls", "an incomplete episode (a failed LLM call) is not a result"
    return None


def _row_problem(row: Any, board: Board, avg_k: int, limits: Limits) -> tuple[str, str] | None:
    """(field, reason) of the first thing wrong with one prediction row's shape, or None."""
    problem = _row_shape_problem(row, _EPISODE_ROW_FIELDS, board, avg_k, limits)
    if problem is None:
        claimed = row["reward_components"].get(board.metric)
        if not _is_number(claimed) or not 0 <= claimed <= 1:
            return f"reward_components.{board.metric}", "must be a number in [0, 1]"
    return problem


def _gold_problems(row: Mapping[str, Any], gold: GoldSet, answer_format: str, board: Board,
                   label: str, where: str) -> tuple[float | None, list[Problem]]:
    """Re-score one well-formed row against the board's gold: (its score, problems)."""
    t, problems = row["task_id"], []
    if row["golds"] != gold.golds[t]:
        problems.append(Problem(label, f"{where}: golds", f"{row['golds']!r:.120} is not the "
                                                          "board's gold answer for this task"))
    if row.get("question") is not None and row.get("question") != gold.questions[t]:
        problems.append(Problem(label, f"{where}: question", "not the board's question for "
                                                             f"task {t}"))
    try:
        value = score_response(row["response"], gold.golds[t], scorer=gold.scorers[t],
                               answer_format=answer_format,
                               lenient_extraction=gold.lenient_extraction)
    except MemgymError as exc:
        return None, [*problems, Problem(label, f"{where}: response", f"cannot be scored: {exc}")]
    claimed = row["reward_components"][board.metric]
    if abs(claimed - value) > TOLERANCE:
        problems.append(Problem(label, f"{where}: reward_components.{board.metric}",
                                f"claims {claimed}, the board's scorer gives {value}"))
    return value, problems


def _answer_format(run: Mapping[str, Any], gold: GoldSet | None) -> str:
    kwargs = run.get("env_kwargs") if isinstance(run.get("env_kwargs"), dict) else {}
    default = gold.answer_format if gold is not None else ""
    value = kwargs.get("answer_format", default)
    return value if isinstance(value, str) else default


def _check_predictions(board: Board, gold: GoldSet | None, run: Mapping[str, Any],
                       path: Path, label: str, limits: Limits
                       ) -> tuple[dict[tuple[int, int], float], list[Problem]]:
    """Every row of an episode-level setting: its shape, repeats and coverage always; its score
    recomputed against `gold`, or (gold None: the board's data is absent) its claimed score."""
    rows, problems = read_jsonl(path, label, limits)
    avg_k = run.get("avg_k") if _is_int(run.get("avg_k")) else 1
    answer_format = _answer_format(run, gold)
    scores: dict[tuple[int, int], float] = {}
    for number, row in rows:
        where = f"line {number}"
        bad = _row_problem(row, board, avg_k, limits)
        if bad is not None:
            problems.append(Problem(label, f"{where}: {bad[0]}" if bad[0] else where, bad[1]))
            continue
        key = (row["task_id"], row["attempt"])
        if key in scores:
            problems.append(Problem(label, f"{where}: task_id", f"task {key[0]} attempt {key[1]} "
                                                                "appears twice"))
            continue
        value: float | None = row["reward_components"][board.metric]
        if gold is not None:
            value, found = _gold_problems(row, gold, answer_format, board, label, where)
            problems += found
        if value is not None:
            scores[key] = value
    return scores, problems + _missing_rows(board, avg_k, set(scores), label, problems)


def _missing_rows(board: Board, avg_k: int, seen: set[tuple[int, int]], label: str,
                  problems: Sequence[Problem]) -> list[Problem]:
    """The (task, attempt) rows of the board a setting's predictions lack, as one problem."""
    missing = sorted({(t, a) for t in range(board.episodes) for a in range(avg_k)} - seen)
    if not missing:
        return []
    if any(p.field.endswith(("task_id", "attempt")) for p in problems):
        return [Problem(label, "", f"{len(missing)} (task, attempt) rows missing")]
    shown = ", ".join(f"task {t} attempt {a}" for t, a in missing[:5])
    return [Problem(label, "", f"{len(missing)} (task, attempt) rows missing: {shown}"
                               + (" ..." if len(missing) > 5 else ""))]


QuestionScores = list[tuple[str, dict[str, float]]]
"""(category, {metric: value}) of every verified question of a setting."""

RECORDED_METRICS = ("f1", "em", "bleu1")
"""The metrics `DialogueMemoryEnv` records per question: a record must claim each of them.
Others a board shows (mem0_f1) are recomputed from the answer, and checked if claimed."""


def _question_row_problem(row: Any, board: Board, avg_k: int, limits: Limits
                          ) -> tuple[str, str] | None:
    """(field, reason) of the first thing wrong with a question-level row's shape, or None."""
    return _row_shape_problem(row, _QUESTION_ROW_FIELDS, board, avg_k, limits)


def _record_claims(board: Board, record: Mapping[str, Any]
                   ) -> tuple[dict[str, float], tuple[str, str] | None]:
    """A record's claimed scores: each recorded metric required, in [0, 1]; claimed ones bounded."""
    claims: dict[str, float] = {}
    for name in board.metrics:
        value = record.get(name)
        if value is None and name not in RECORDED_METRICS:
            continue
        if not _is_number(value) or not 0 <= value <= 1:
            return {}, (name, "must be a number in [0, 1] (the env's score of this question)")
        claims[name] = float(value)
    for name in board.claimed_metrics:
        value = record.get(name)
        if value is not None and not (_is_number(value) and 0 <= value <= 1):
            return {}, (name, "must be null or a number in [0, 1]")
    return claims, None


def _check_question(board: Board, record: Any, want: dict[str, tuple[list[str], str]] | None,
                    seen: set[str]) -> tuple[tuple[str, dict[str, float]] | None,
                                                        tuple[str, str] | None]:
    """Check one question record; ((category, scores), None) or (None, (field, reason)).

    With `want` (the board's questions of this task) the scores are recomputed from the
    recorded answer; without it (the board's data is absent) they are the record's claims.
    """
    if not isinstance(record, dict):
        return None, ("", "a question record must be a JSON object")
    qid, prediction = record.get("question_id"), record.get("prediction")
    if not isinstance(qid, str):
        return None, ("question_id", "must be a string")
    if want is not None and qid not in want:
        reason = f"{qid[:80]!r} is not a question of the board's split for this task"
        return None, ("question_id", reason)
    if qid in seen:
        return None, ("question_id", f"{qid[:80]!r} is answered twice")
    seen.add(qid)
    if not isinstance(prediction, str):
        return None, ("prediction", "must be a string (the answer the env scored)")
    claims, bad = _record_claims(board, record)
    if bad is not None:
        return None, bad
    if want is None:
        category = record.get("category")
        return (category if isinstance(category, str) else "", claims), None
    golds, category = want[qid]
    if record.get("category") is not None and record.get("category") != category:
        reason = f"{record.get('category')!r:.60} is not the board's category {category!r}"
        return None, ("category", reason)
    if record.get("golds") is not None and record.get("golds") != golds:
        return None, ("golds", "not the board's gold answers for this question")
    scores = question_scores(prediction, golds, category)
    for name, claimed in claims.items():
        if abs(claimed - scores[name]) > TOLERANCE:
            return None, (name, f"claims {claimed}, the board's scorer gives {scores[name]}")
    return (category, {m: scores[m] for m in board.metrics}), None


def _check_question_row(board: Board, row: Mapping[str, Any], want: dict | None,
                        where: str, label: str, limits: Limits
                        ) -> tuple[QuestionScores, list[Problem]]:
    """Every question record of one well-formed row, its coverage and its episode means."""
    seen: set[str] = set()
    episode: QuestionScores = []
    problems: list[Problem] = []
    for i, record in enumerate(row["questions"][:limits.rows]):
        got, bad = _check_question(board, record, want, seen)
        if bad is not None:
            at = f"{where}: questions[{i}]" + (f".{bad[0]}" if bad[0] else "")
            problems.append(Problem(label, at, bad[1]))
        else:
            episode.append(got)
    missing = [q for q in want if q not in seen] if want is not None else []
    if missing:
        problems.append(Problem(label, f"{where}: questions", f"{len(missing)} of the "
                                f"board's questions of task {row['task_id']} missing: "
                                f"{', '.join(missing[:5])}" + (" ..." if len(missing) > 5
                                                               else "")))
    elif not problems:
        problems += _check_episode_claims(board, row, episode, f"{where}: reward_components",
                                          label)
    return episode, problems


def _check_question_predictions(board: Board, gold: GoldSet | None, run: Mapping[str, Any],
                                path: Path, label: str, limits: Limits
                                ) -> tuple[QuestionScores, list[Problem]]:
    """Every question record of a question-level setting's predictions: re-scored against
    `gold`, or (gold None: the board's data is absent) every check that needs no gold."""
    rows, problems = read_jsonl(path, label, limits)
    avg_k = run.get("avg_k") if _is_int(run.get("avg_k")) else 1
    out: QuestionScores = []
    seen_rows: set[tuple[int, int]] = set()
    for number, row in rows:
        where = f"line {number}"
        bad = _question_row_problem(row, board, avg_k, limits)
        if bad is not None:
            problems.append(Problem(label, f"{where}: {bad[0]}" if bad[0] else where, bad[1]))
            continue
        key = (row["task_id"], row["attempt"])
        if key in seen_rows:
            problems.append(Problem(label, f"{where}: task_id", f"task {key[0]} attempt {key[1]} "
                                                                "appears twice"))
            continue
        seen_rows.add(key)
        want = gold.dialogue[key[0]] if gold is not None else None
        episode, found = _check_question_row(board, row, want, where, label, limits)
        problems += found
        out += episode
    return out, problems + _missing_rows(board, avg_k, seen_rows, label, problems)


def _check_episode_claims(board: Board, row: Mapping[str, Any], episode: QuestionScores,
                          at: str, label: str) -> list[Problem]:
    """A row's reward_components (the episode's mean per metric) against its questions' mean."""
    problems = []
    for name in board.metrics:
        claimed = row["reward_components"].get(name)
        values = [s[name] for _, s in episode if name in s]
        if claimed is None and name not in RECORDED_METRICS:
            continue
        value = sum(values) / len(values) if values else 0.0
        if not _is_number(claimed):
            problems.append(Problem(label, f"{at}.{name}", "must be a number"))
        elif abs(claimed - value) > TOLERANCE:
            problems.append(Problem(label, f"{at}.{name}", f"claims {claimed}, the questions' "
                                                           f"mean is {value}"))
    return problems


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def question_summary(board: Board, per_setting: Mapping[str, QuestionScores]
                     ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(metric -> mean over settings of the question mean, category -> metric -> pooled mean).

    A metric that some question lacks (a claim-only check without the board's data) is left out.
    """
    metrics: dict[str, float] = {}
    for m in board.metrics:
        means = [_mean([s[m] for _, s in qs if m in s]) for qs in per_setting.values()]
        if means and all(v is not None for v in means):
            metrics[m] = sum(means) / len(means)
    by_category: dict[str, dict[str, float]] = {}
    pooled = [item for qs in per_setting.values() for item in qs]
    for category in board.categories:
        scores = [s for c, s in pooled if c == category]
        if scores:
            by_category[category] = {m: sum(s[m] for s in scores) / len(scores)
                                     for m in board.metrics if all(m in s for s in scores)}
    return metrics, by_category


def _listing(folder: Path, board: Board, limits: Limits) -> tuple[set[str], list[Problem]]:
    """The setting folders present, and problems with unexpected entries."""
    allowed = {s.name for s in board.settings}
    present: set[str] = set()
    problems: list[Problem] = []
    count = 0
    for entry in sorted(folder.iterdir()):
        count += 1
        if count > limits.files:
            problems.append(Problem(str(folder), "", f"more than {limits.files} entries"))
            break
        rel = f"{folder.name}/{entry.name}"
        if entry.name == METADATA_FILE:
            continue
        if entry.is_symlink() or not entry.is_dir() or entry.name not in allowed:
            problems.append(Problem(rel, "", "unexpected entry: a submission holds submission.json "
                                             "and one folder per board setting"))
            continue
        present.add(entry.name)
        for inner in sorted(entry.iterdir())[:limits.files]:
            if inner.name not in (RUN_FILE, PREDICTIONS_FILE):
                problems.append(Problem(f"{rel}/{inner.name}", "", "unexpected file (a setting "
                                        f"folder holds {RUN_FILE} and {PREDICTIONS_FILE})"))
    return present, problems


def verify_submission(board: Board, folder: str | Path, *,
                      gold_cache: dict[str, GoldSet | str] | None = None,
                      limits: Limits = LIMITS, repo_root: Path | None = None) -> Verdict:
    """Verify one submission folder against `board`; never raises on bad submission content.

    Every check that needs no gold (well-formed files, schema, sizes, repeats, coverage, the
    claimed scores' own arithmetic) always runs; where the board's data is absent, the scores
    cannot be recomputed and the verdict is `unverifiable` (never `ok`), with those problems.

    Args:
        board: the loaded board.
        folder: the submission folder (submission.json + one folder per setting covered).
        gold_cache: built GoldSets (or the reason one cannot be built) per setting name, shared
            across the submissions of one board.
        limits: size bounds.
        repo_root: the repository, to compare a named agent recipe with the committed file.
    """
    folder = Path(folder)
    verdict = Verdict(folder)
    if folder.is_symlink() or not folder.is_dir():
        verdict.problems.append(Problem(str(folder), "", "not a submission folder"))
        return verdict
    label = f"{folder.name}/{METADATA_FILE}"
    meta, problems = read_json(folder / METADATA_FILE, label, limits.short_chars * 64)
    verdict.problems += problems
    if meta is None:
        return verdict
    verdict.problems += _check_metadata(board, meta, label, limits)
    if not isinstance(meta, dict):
        return verdict
    verdict.metadata = meta
    present, problems = _listing(folder, board, limits)
    verdict.problems += problems
    if not present:
        verdict.problems.append(Problem(folder.name, "", "covers no board setting"))
    cache = gold_cache if gold_cache is not None else {}
    per_setting: dict[str, QuestionScores] = {}
    for setting in board.settings:
        if setting.name in present:
            _verify_setting(board, setting, folder, meta, verdict, per_setting,
                            _gold(board, setting, cache), limits, repo_root)
    verdict.complete = present == {s.name for s in board.settings}
    _check_all_claims(board, verdict, meta, label, per_setting)
    return verdict


def _gold(board: Board, setting: Setting, cache: dict[str, GoldSet | str]) -> GoldSet | str:
    """The setting's GoldSet, or why it cannot be built here (cached per setting)."""
    if setting.name not in cache:
        try:
            cache[setting.name] = board_gold(board, setting)
        except MemgymError as exc:
            cache[setting.name] = str(exc)
    return cache[setting.name]


def _verify_setting(board: Board, setting: Setting, folder: Path, meta: Mapping[str, Any],
                    verdict: Verdict, per_setting: dict[str, QuestionScores],
                    gold: GoldSet | str, limits: Limits, repo_root: Path | None) -> None:
    """One setting folder: run.json, then the predictions (re-scored, or checked without gold)."""
    if isinstance(gold, str):
        verdict.unverifiable = gold
    base = f"{folder.name}/{setting.name}"
    run, problems = read_json(folder / setting.name / RUN_FILE, f"{base}/{RUN_FILE}",
                              limits.line_bytes)
    verdict.problems += problems
    if run is None:
        return
    verdict.problems += _check_run(board, setting, run, meta, f"{base}/{RUN_FILE}", repo_root)
    if not isinstance(run, dict):
        return
    verdict.privileged = verdict.privileged or privileged_reason(run.get("recipe"), run)
    verdict.problems += _check_command(board, setting, run, meta, folder.name)
    known = gold if isinstance(gold, GoldSet) else None
    path, label = folder / setting.name / PREDICTIONS_FILE, f"{base}/{PREDICTIONS_FILE}"
    if board.level == "question":
        per_q, problems = _check_question_predictions(board, known, run, path, label, limits)
        verdict.problems += problems
        if per_q and not problems:
            per_setting[setting.name] = per_q
            block = mean_ci([s[board.metric] for _, s in per_q])
            verdict.scores[setting.name] = float(block["mean"])
            verdict.ci95[setting.name] = block["ci95"]
        return
    scores, problems = _check_predictions(board, known, run, path, label, limits)
    verdict.problems += problems
    if scores and not problems:
        verdict.scores[setting.name], verdict.ci95[setting.name] = setting_score(scores)


def _check_command(board: Board, setting: Setting, run: Mapping[str, Any],
                   meta: Mapping[str, Any], name: str) -> list[Problem]:
    """submission.json's reproduce command for this setting is the one its run.json gives
    (all but the agent overrides, which `submit` derived; see `memgym.leaderboard.reproduce`)."""
    commands = meta.get("commands")
    at = f"commands.{setting.name}"
    if not isinstance(commands, dict):
        return [Problem(f"{name}/{METADATA_FILE}", "commands", "must map each setting to the "
                        "command that reproduces its run (`memgym leaderboard submit` writes it)")]
    got = commands.get(setting.name)
    want = eval_command(run, setting.name, board.id, overrides=False)
    if not isinstance(got, str) or without_overrides(got) != want:
        return [Problem(f"{name}/{METADATA_FILE}", at, f"is not the command run.json gives: "
                        f"{eval_command(run, setting.name, board.id)}"[:2000])]
    return []


def _check_all_claims(board: Board, verdict: Verdict, meta: Mapping[str, Any], label: str,
                      per_setting: Mapping[str, QuestionScores]) -> None:
    """submission.json's claimed scores against the recomputed ones (or, without the board's
    data, against the scores its own rows claim)."""
    if board.level == "question":
        verdict.metrics, verdict.by_category = question_summary(board, per_setting)
    _check_claims(verdict, meta, label)
    if board.level == "question":
        _check_question_claims(board, verdict, meta, label)


def _check_claims(verdict: Verdict, meta: Mapping[str, Any], label: str) -> None:
    """Compare submission.json's claimed scores with the recomputed ones."""
    scores = meta.get("scores")
    if not isinstance(scores, dict) or not isinstance(scores.get("settings"), dict):
        return
    claimed = scores["settings"]
    for name, value in verdict.scores.items():
        got = claimed.get(name)
        if not _is_number(got):
            verdict.problems.append(Problem(label, f"scores.settings.{name}", "missing"))
        elif abs(got - value) > TOLERANCE:
            verdict.problems.append(Problem(label, f"scores.settings.{name}",
                                            f"claims {got}, recomputed {value}"))
    for name in sorted(set(claimed) - set(verdict.scores))[:10]:
        verdict.problems.append(Problem(label, f"scores.settings.{name}"[:200],
                                        "claims a setting that was not verified"))
    average = scores.get("average")
    checkable = verdict.scores and not verdict.problems
    if checkable and (not _is_number(average) or abs(average - verdict.average) > TOLERANCE):
        verdict.problems.append(Problem(label, "scores.average",
                                        f"claims {average!r:.40}, recomputed {verdict.average}"))


def _check_question_claims(board: Board, verdict: Verdict, meta: Mapping[str, Any],
                           label: str) -> None:
    """submission.json's `metrics`, `by_category` and `claimed` against the recomputed ones."""
    scores = meta.get("scores")
    if not isinstance(scores, dict):
        return
    checkable = verdict.scores and not any(
        not p.field.startswith("scores") for p in verdict.problems)
    for key, recomputed in (("metrics", {"": verdict.metrics}),
                            ("by_category", verdict.by_category)):
        claimed = scores.get(key)
        if not isinstance(claimed, dict):
            verdict.problems.append(Problem(label, f"scores.{key}", "must be an object of "
                                            + ("metric -> score" if key == "metrics"
                                               else "category -> metric -> score")))
            continue
        if checkable:
            verdict.problems += _compare_claims(key, claimed, recomputed, label,
                                                strict=verdict.unverifiable is None)
        if key == "by_category" and verdict.unverifiable is None:
            for extra in sorted(set(claimed) - set(recomputed))[:10]:
                verdict.problems.append(Problem(label, f"scores.by_category.{extra}"[:200],
                                                "not a category of the board's questions"))
    _read_claimed_metrics(board, verdict, scores.get("claimed", {}), label)


def _compare_claims(key: str, claimed: Mapping[str, Any],
                    recomputed: Mapping[str, Mapping[str, float]], label: str,
                    strict: bool) -> list[Problem]:
    """Each recomputed value against its claim; `strict`: a missing claim is a problem too."""
    problems = []
    for group, values in recomputed.items():
        got_group = claimed if not group else claimed.get(group)
        at = f"scores.{key}" + (f".{group}" if group else "")
        if not isinstance(got_group, dict):
            if strict:
                problems.append(Problem(label, at[:200], "missing"))
            continue
        for name, value in values.items():
            got = got_group.get(name)
            if not _is_number(got):
                if strict or got is not None:
                    problems.append(Problem(label, f"{at}.{name}"[:200], "missing"))
            elif abs(got - value) > TOLERANCE:
                problems.append(Problem(label, f"{at}.{name}"[:200],
                                        f"claims {got}, recomputed {value}"))
    return problems


def _read_claimed_metrics(board: Board, verdict: Verdict, claimed: Any, label: str) -> None:
    """submission.json's `scores.claimed` (an LLM judge): bounded numbers, kept unverified."""
    if not isinstance(claimed, dict):
        verdict.problems.append(Problem(label, "scores.claimed", "must be an object"))
        return
    for name, value in list(claimed.items())[:20]:
        if name not in board.claimed_metrics:
            verdict.problems.append(Problem(label, f"scores.claimed.{name}"[:200],
                                            f"not a claimable metric of the board "
                                            f"({list(board.claimed_metrics)})"))
        elif not (_is_number(value) and 0 <= value <= 1):
            verdict.problems.append(Problem(label, f"scores.claimed.{name}"[:200],
                                            "must be a number in [0, 1]"))
        else:
            verdict.claimed[name] = float(value)


def verify_board(board_dir: str | Path, *, limits: Limits = LIMITS) -> tuple[Board, list[Verdict]]:
    """Verify every submission of a board folder (submissions/*); returns the board and verdicts."""
    board = load_board(board_dir)
    cache: dict[str, GoldSet | str] = {}
    repo_root = board.folder.parent.parent
    folder = board.submissions_dir
    entries = sorted(p for p in folder.iterdir()) if folder.is_dir() else []
    return board, [verify_submission(board, p, gold_cache=cache, limits=limits,
                                     repo_root=repo_root) for p in entries]
