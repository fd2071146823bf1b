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
and fields, malformed JSON. Files are read by `memgym.leaderboard.files` (bounded, inert).

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

__all__ = ["METADATA_FILE", "PREDICTIONS_FILE", "RUN_FILE", "GoldSet", "Verdict", "board_gold",
           "question_scores", "score_response", "setting_score", "verify_board",
           "verify_submission"]

METADATA_FILE, RUN_FILE, PREDICTIONS_FILE = "submission.json", "run.json", "predictions.jsonl"
TOLERANCE = 1e-6
"""Largest allowed difference between a claimed and a recomputed score."""

_METADATA_KEYS = {"schema_version", "board", "name", "model", "agent_recipe", "memgym_version",
                  "seeds", "hardware", "date", "link", "command", "scores", "notes"}


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
    """Why the board's gold could not be built here (its data is absent); not the submission's fault."""
    scores: dict[str, float] = field(default_factory=dict)
    """Recomputed score per setting (only settings the submission covers)."""
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
    """LoCoMo's F1 / EM / BLEU-1 of one recorded answer, as `DialogueMemoryEnv` scores it."""
    from memgym.envs.dialogue import MAX_ANSWER_CHARS
    from memgym.rewards.locomo import locomo_scores

    return locomo_scores(prediction[:MAX_ANSWER_CHARS], list(golds), category)


def setting_score(per_row: Mapping[tuple[int, int], float]) -> tuple[float, list[float] | None]:
    """Mean over tasks of the mean over attempts, and its 95% interval (as `summarize`)."""
    by_task: dict[int, list[float]] = defaultdict(list)
    for (task_id, _), value in per_row.items():
        by_task[task_id].append(value)
    block = mean_ci([sum(v) / len(v) for _, v in sorted(by_task.items())])
    return float(block["mean"]), block["ci95"]


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
    if row.get("failed_calls", 0) != 0:
        return "failed_calls", "an incomplete episode (a failed LLM call) is not a result"
    return None


def _row_problem(row: Any, gold: GoldSet, board: Board, avg_k: int, limits: Limits
                 ) -> tuple[str, str] | None:
    """(field, reason) of the first thing wrong with one prediction row's shape, or None."""
    problem = _row_shape_problem(row, _EPISODE_ROW_FIELDS, board, avg_k, limits)
    if problem is None and not _is_number(row["reward_components"].get(board.metric)):
        return f"reward_components.{board.metric}", "must be a number"
    return problem


def _check_predictions(board: Board, setting: Setting, gold: GoldSet, run: Mapping[str, Any],
                       path: Path, label: str, limits: Limits
                       ) -> tuple[dict[tuple[int, int], float], list[Problem]]:
    rows, problems = read_jsonl(path, label, limits)
    avg_k = run.get("avg_k") if _is_int(run.get("avg_k")) else 1
    kwargs = run.get("env_kwargs") if isinstance(run.get("env_kwargs"), dict) else {}
    answer_format = kwargs.get("answer_format", gold.answer_format)
    if not isinstance(answer_format, str):
        answer_format = gold.answer_format
    scores: dict[tuple[int, int], float] = {}
    for number, row in rows:
        where = f"line {number}"
        bad = _row_problem(row, gold, board, avg_k, limits)
        if bad is not None:
            problems.append(Problem(label, f"{where}: {bad[0]}" if bad[0] else where, bad[1]))
            continue
        key = (row["task_id"], row["attempt"])
        if key in scores:
            problems.append(Problem(label, f"{where}: task_id", f"task {key[0]} attempt {key[1]} "
                                                                "appears twice"))
            continue
        t = row["task_id"]
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
            problems.append(Problem(label, f"{where}: response", f"cannot be scored: {exc}"))
            continue
        claimed = row["reward_components"][board.metric]
        if abs(claimed - value) > TOLERANCE:
            problems.append(Problem(label, f"{where}: reward_components.{board.metric}",
                                    f"claims {claimed}, the board's scorer gives {value}"))
        scores[key] = value
    want = {(t, a) for t in range(board.episodes) for a in range(avg_k)}
    missing = sorted(want - set(scores))
    if missing and not any(p.field.endswith(("task_id", "attempt")) for p in problems):
        shown = ", ".join(f"task {t} attempt {a}" for t, a in missing[:5])
        problems.append(Problem(label, "", f"{len(missing)} (task, attempt) rows missing: {shown}"
                                           + (" ..." if len(missing) > 5 else "")))
    elif missing:
        problems.append(Problem(label, "", f"{len(missing)} (task, attempt) rows missing"))
    return scores, problems


QuestionScores = list[tuple[str, dict[str, float]]]
"""(category, {metric: value}) of every verified question of a setting."""


def _question_row_problem(row: Any, board: Board, avg_k: int, limits: Limits
                          ) -> tuple[str, str] | None:
    """(field, reason) of the first thing wrong with a question-level row's shape, or None."""
    return _row_shape_problem(row, _QUESTION_ROW_FIELDS, board, avg_k, limits)


def _check_question(board: Board, record: Any, want: dict[str, tuple[list[str], str]],
                    seen: set[str]) -> tuple[tuple[str, dict[str, float]] | None,
                                                        tuple[str, str] | None]:
    """Re-score one question record; ((category, scores), None) or (None, (field, reason))."""
    if not isinstance(record, dict):
        return None, ("", "a question record must be a JSON object")
    qid, prediction = record.get("question_id"), record.get("prediction")
    if not isinstance(qid, str):
        return None, ("question_id", "must be a string")
    if qid not in want:
        reason = f"{qid[:80]!r} is not a question of the board's split for this task"
        return None, ("question_id", reason)
    if qid in seen:
        return None, ("question_id", f"{qid[:80]!r} is answered twice")
    seen.add(qid)
    golds, category = want[qid]
    if not isinstance(prediction, str):
        return None, ("prediction", "must be a string (the answer the env scored)")
    if record.get("category") is not None and record.get("category") != category:
        reason = f"{record.get('category')!r:.60} is not the board's category {category!r}"
        return None, ("category", reason)
    if record.get("golds") is not None and record.get("golds") != golds:
        return None, ("golds", "not the board's gold answers for this question")
    scores = question_scores(prediction, golds, category)
    for name in board.metrics:
        claimed = record.get(name)
        if not _is_number(claimed):
            return None, (name, "must be a number (the env's score of this question)")
        if abs(claimed - scores[name]) > TOLERANCE:
            return None, (name, f"claims {claimed}, the board's scorer gives {scores[name]}")
    for name in board.claimed_metrics:
        value = record.get(name)
        if value is not None and not (_is_number(value) and 0 <= value <= 1):
            return None, (name, "must be null or a number in [0, 1]")
    return (category, {m: scores[m] for m in board.metrics}), None


def _check_question_predictions(board: Board, gold: GoldSet, run: Mapping[str, Any], path: Path,
                                label: str, limits: Limits
                                ) -> tuple[QuestionScores, list[Problem]]:
    """Re-score every question record of a question-level setting's predictions."""
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
        want, seen = gold.dialogue[key[0]], set()
        episode: QuestionScores = []
        for i, record in enumerate(row["questions"][:limits.rows]):
            got, bad = _check_question(board, record, want, seen)
            if bad is not None:
                at = f"{where}: questions[{i}]" + (f".{bad[0]}" if bad[0] else "")
                problems.append(Problem(label, at, bad[1]))
            else:
                episode.append(got)
        missing = [q for q in want if q not in seen]
        if missing:
            problems.append(Problem(label, f"{where}: questions", f"{len(missing)} of the "
                                    f"board's questions of task {key[0]} missing: "
                                    f"{', '.join(missing[:5])}" + (" ..." if len(missing) > 5
                                                                   else "")))
        elif len(episode) == len(want):
            problems += _check_episode_claims(board, row, episode, f"{where}: reward_components",
                                              label)
        out += episode
    want_rows = {(t, a) for t in range(board.episodes) for a in range(avg_k)}
    missing_rows = sorted(want_rows - seen_rows)
    if missing_rows:
        shown = ", ".join(f"task {t} attempt {a}" for t, a in missing_rows[:5])
        problems.append(Problem(label, "", f"{len(missing_rows)} (task, attempt) rows missing: "
                                           f"{shown}" + (" ..." if len(missing_rows) > 5 else "")))
    return out, problems


def _check_episode_claims(board: Board, row: Mapping[str, Any], episode: QuestionScores,
                          at: str, label: str) -> list[Problem]:
    """A row's reward_components (the episode's mean per metric) against the recomputed means."""
    problems = []
    for name in board.metrics:
        claimed = row["reward_components"].get(name)
        value = sum(s[name] for _, s in episode) / len(episode) if episode else 0.0
        if not _is_number(claimed):
            problems.append(Problem(label, f"{at}.{name}", "must be a number"))
        elif abs(claimed - value) > TOLERANCE:
            problems.append(Problem(label, f"{at}.{name}", f"claims {claimed}, the questions' "
                                                           f"mean is {value}"))
    return problems


def question_summary(board: Board, per_setting: Mapping[str, QuestionScores]
                     ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(metric -> mean over settings of the question mean, category -> metric -> pooled mean)."""
    metrics = {m: sum(sum(s[m] for _, s in qs) / len(qs) for qs in per_setting.values())
               / len(per_setting) for m in board.metrics} if per_setting else {}
    by_category: dict[str, dict[str, float]] = {}
    pooled = [item for qs in per_setting.values() for item in qs]
    for category in board.categories:
        scores = [s for c, s in pooled if c == category]
        if scores:
            by_category[category] = {m: sum(s[m] for s in scores) / len(scores)
                                     for m in board.metrics}
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
    cache = gold_cache if gold_cache is not None else {}
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
    per_setting: dict[str, QuestionScores] = {}
    for setting in board.settings:
        if setting.name not in present:
            continue
        gold = cache.get(setting.name)
        if gold is None:
            try:
                gold = board_gold(board, setting)
            except MemgymError as exc:
                gold = str(exc)
            cache[setting.name] = gold
        if isinstance(gold, str):
            verdict.unverifiable = gold
            continue
        base = f"{folder.name}/{setting.name}"
        run, problems = read_json(folder / setting.name / RUN_FILE, f"{base}/{RUN_FILE}",
                                  limits.line_bytes)
        verdict.problems += problems
        if run is None:
            continue
        verdict.problems += _check_run(board, setting, run, meta, f"{base}/{RUN_FILE}", repo_root)
        if not isinstance(run, dict):
            continue
        if board.level == "question":
            per_q, problems = _check_question_predictions(
                board, gold, run, folder / setting.name / PREDICTIONS_FILE,
                f"{base}/{PREDICTIONS_FILE}", limits)
            verdict.problems += problems
            if per_q and not problems:
                per_setting[setting.name] = per_q
                block = mean_ci([s[board.metric] for _, s in per_q])
                verdict.scores[setting.name] = float(block["mean"])
                verdict.ci95[setting.name] = block["ci95"]
            continue
        scores, problems = _check_predictions(board, setting, gold, run,
                                              folder / setting.name / PREDICTIONS_FILE,
                                              f"{base}/{PREDICTIONS_FILE}", limits)
        verdict.problems += problems
        if scores and not problems:
            verdict.scores[setting.name], verdict.ci95[setting.name] = setting_score(scores)
    verdict.complete = present == {s.name for s in board.settings}
    if board.level == "question":
        verdict.metrics, verdict.by_category = question_summary(board, per_setting)
    _check_claims(verdict, meta, label)
    if board.level == "question":
        _check_question_claims(board, verdict, meta, label)
    return verdict


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
        if verdict.unverifiable is None:
            verdict.problems.append(Problem(label, f"scores.settings.{name}"[:200],
                                            "claims a setting that was not verified"))
    average = scores.get("average")
    checkable = verdict.scores and not verdict.problems and verdict.unverifiable is None
    if checkable and (not _is_number(average) or abs(average - verdict.average) > TOLERANCE):
        verdict.problems.append(Problem(label, "scores.average",
                                        f"claims {average!r:.40}, recomputed {verdict.average}"))


def _check_question_claims(board: Board, verdict: Verdict, meta: Mapping[str, Any],
                           label: str) -> None:
    """submission.json's `metrics`, `by_category` and `claimed` against the recomputed ones."""
    scores = meta.get("scores")
    if not isinstance(scores, dict):
        return
    checkable = verdict.scores and verdict.unverifiable is None and not any(
        not p.field.startswith("scores") for p in verdict.problems)
    for key, recomputed in (("metrics", {"": verdict.metrics}),
                            ("by_category", verdict.by_category)):
        claimed = scores.get(key)
        if not isinstance(claimed, dict):
            verdict.problems.append(Problem(label, f"scores.{key}", "must be an object of "
                                            + ("metric -> score" if key == "metrics"
                                               else "category -> metric -> score")))
            continue
        if not checkable:
            continue
        for group, values in recomputed.items():
            got_group = claimed if not group else claimed.get(group)
            at = f"scores.{key}" + (f".{group}" if group else "")
            if not isinstance(got_group, dict):
                verdict.problems.append(Problem(label, at[:200], "missing"))
                continue
            for name, value in values.items():
                got = got_group.get(name)
                if not _is_number(got):
                    verdict.problems.append(Problem(label, f"{at}.{name}"[:200], "missing"))
                elif abs(got - value) > TOLERANCE:
                    verdict.problems.append(Problem(label, f"{at}.{name}"[:200],
                                                    f"claims {got}, recomputed {value}"))
        if key == "by_category":
            for extra in sorted(set(claimed) - set(recomputed))[:10]:
                verdict.problems.append(Problem(label, f"scores.by_category.{extra}"[:200],
                                                "not a category of the board's questions"))
    claimed = scores.get("claimed", {})
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
