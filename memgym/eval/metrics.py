"""Metrics of an evaluation, computed from its prediction rows alone.

`summarize(rows)` is the only place evaluation metrics are computed: the runner writes its result
into summary.json, and anyone can recompute it from predictions.jsonl (the leaderboard does).

Complete episodes only: an episode with a failed LLM call is not a result (its score says
nothing about the agent). Metrics are computed over the complete rows; the incomplete ones are
counted (`incomplete_episodes`, `errors`) so the CLI can say so, and a resumed run reruns them.

Confidence intervals: 95%, over per-task means, and always inside [0, 1] for scores in [0, 1].
With K attempts per task (avg@K) each task's K scores are averaged first, and the tasks are the
independent samples, so the interval reflects the uncertainty from the choice of tasks and is
not narrowed by repeating attempts. When every per-task score is 0 or 1 (binary accuracy at
K = 1, or best-of-K) the interval is Wilson's score interval; otherwise it is a percentile
bootstrap over the per-task means (2000 resamples, seeded, so the same rows always give the
same interval). Each block says which in `ci_method` ("wilson" or "bootstrap"), and the
summary's top-level `ci_method` maps each metric to its method. With fewer than two tasks the
interval is null.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP_RESAMPLES", "MEASURED_LENGTH_KEYS", "Z_95", "bootstrap_ci", "dataset_hash",
           "is_complete", "mean_ci", "summarize", "wilson_ci"]

Z_95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""

MEASURED_LENGTH_KEYS = ("context_tokens", "tokens")
"""Task metadata keys holding a measured context length (bucketed by powers of two)."""


BOOTSTRAP_RESAMPLES = 2000
"""Resamples of the bootstrap interval (seeded with 0: deterministic)."""


def is_complete(row: Mapping[str, Any]) -> bool:
    """Whether a prediction row is a result: none of its LLM calls failed."""
    return not row.get("failed_calls", 0)


def wilson_ci(successes: int, n: int, z: float = Z_95) -> list[float]:
    """Wilson's score interval for `successes` out of `n` binary trials (inside [0, 1])."""
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, no rounding error
    high = 1.0 if successes == n else min(1.0, centre + half)
    return [low, high]


def bootstrap_ci(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> list[float]:
    """The 95% percentile-bootstrap interval of the mean of `values` (deterministic for a seed).

    It lies within [min(values), max(values)], so inside [0, 1] for scores in [0, 1].
    """
    x = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def mean_ci(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample std, n and a 95% interval of `values` that respects their range.

    Wilson's interval when every value is 0 or 1, else a bootstrap over the values (see the
    module docstring); `ci_method` names which, and is None with fewer than two values.
    """
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {"mean": None, "ci95": None, "std": None, "n": 0, "ci_method": None}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "ci95": None, "std": None, "n": n, "ci_method": None}
    std = float(x.std(ddof=1))
    if np.all((x == 0.0) | (x == 1.0)):
        return {"mean": mean, "ci95": wilson_ci(int(x.sum()), n), "std": std, "n": n,
                "ci_method": "wilson"}
    return {"mean": mean, "ci95": bootstrap_ci(x), "std": std, "n": n,
            "ci_method": "bootstrap"}


def _task_means(rows: Sequence[Mapping[str, Any]], value) -> list[float]:
    by_task: dict[Any, list[float]] = defaultdict(list)
    for row in rows:
        by_task[row["task_id"]].append(float(value(row)))
    return [float(np.mean(v)) for _, v in sorted(by_task.items(), key=lambda kv: str(kv[0]))]


def _metric_names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names = ["reward"]
    for row in rows:
        for name in row.get("reward_components", {}):
            if name not in names:
                names.append(name)
    return names


def _metrics(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every metric's mean and CI over per-task means, for one group of rows."""
    out = {}
    for name in _metric_names(rows):
        if name == "reward":
            out[name] = mean_ci(_task_means(rows, lambda r: r["reward"]))
        else:
            out[name] = mean_ci(_task_means(
                rows, lambda r, n=name: r["reward_components"].get(n, 0.0)))
    return out


def _percentiles(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "p50": None, "p95": None, "max": None}
    x = np.asarray(values, dtype=np.float64)
    return {"mean": float(x.mean()), "p50": float(np.percentile(x, 50)),
            "p95": float(np.percentile(x, 95)), "max": float(x.max())}


def _efficiency(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    tokens = [row["tokens"] for row in rows]
    calls = [t for row in rows for t in row["turns"]]
    return {
        "llm_calls_per_episode": _percentiles([t["llm_calls"] for t in tokens]),
        "prompt_tokens_total": int(sum(t["prompt"] for t in tokens)),
        "completion_tokens_total": int(sum(t["completion"] for t in tokens)),
        "prompt_tokens_per_episode": _percentiles([t["prompt"] for t in tokens]),
        "completion_tokens_per_episode": _percentiles([t["completion"] for t in tokens]),
        "peak_prompt_tokens": _percentiles([t["max_prompt"] for t in tokens]),
        "peak_context_tokens": _percentiles([t["peak_context"] for t in tokens
                                             if t.get("peak_context") is not None]),
        "final_memory_tokens": _percentiles([t["memory"] for t in tokens
                                             if t.get("memory") is not None]),
        "episode_latency_s": _percentiles([row["latency_s"] for row in rows]),
        "call_latency_s": _percentiles([t["latency_s"] for t in calls]),
        "tokens_estimated": any(t.get("estimated", False) for t in tokens),
    }


def _breakdown(rows: Sequence[Mapping[str, Any]], key) -> dict[str, Any]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        value = key(row)
        if value is not None and value != "":
            groups[str(value)].append(row)

    def order(item):  # numbers sort numerically, then names
        k = item[0]
        try:
            return (0, float(k), "")
        except ValueError:
            return (1, 0.0, k)

    return {k: {"episodes": len(v), "tasks": len({r["task_id"] for r in v}), **_metrics(v)}
            for k, v in sorted(groups.items(), key=order)}


def _length(row: Mapping[str, Any]) -> Any:
    """A task's length bucket: its `target_tokens`, else the power of two above its measured length.

    Composed-to-length tasks share a target; tasks of N documents each measure differently, so
    their measured lengths are grouped into octaves named by their upper bound.
    """
    meta = row.get("metadata") or {}
    if meta.get("target_tokens") is not None:
        return meta["target_tokens"]
    measured = next((meta[k] for k in MEASURED_LENGTH_KEYS
                     if isinstance(meta.get(k), (int, float))), None)
    if measured is None or measured <= 0:
        return None
    return 2 ** math.ceil(math.log2(measured))


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _question_scores(questions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Means of one group of per-question records (a category, or all)."""
    judged = any(q.get("judge") is not None for q in questions)
    out: dict[str, Any] = {"questions": len(questions)}
    for name in ("f1", "em", "bleu1", "judge"):
        out[name] = _mean([q.get(name) for q in questions])
    # LongMemEval's accuracy is a judge's verdict; without a judge, exact match stands in
    out["accuracy"] = out["judge"] if judged else out["em"]
    out["accuracy_from"] = "judge" if judged else "em"
    out["recall_session"] = _mean([q.get("recall_session") for q in questions])
    out["recall_turn"] = _mean([q.get("recall_turn") for q in questions])
    return out


def _dialogue(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Question-level metrics of multi-question episodes (rows with `questions`), or None.

    Per-category F1 / EM / BLEU-1 (LoCoMo's categories; LongMemEval's question types, with
    `accuracy`: the judge's when there is one, else EM), retrieval recall@k (`recall_session`:
    whether an evidence session is among the sessions of the memories shown, LongMemEval's;
    `recall_turn`: the fraction of evidence turns among their source turns, LoCoMo's), and the
    memory bank's size and operation counts per episode. Questions of every episode and attempt
    are pooled (LoCoMo and LongMemEval average over questions).
    """
    rows = [r for r in rows if r.get("questions") is not None]
    if not rows:
        return None
    questions = [q for r in rows for q in r["questions"]]
    by_category: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for q in questions:
        by_category[str(q.get("category") or "")].append(q)
    banks = [r.get("bank", {}) for r in rows]
    ops: dict[str, list[int]] = defaultdict(list)
    for bank in banks:
        for key, value in (bank.get("op_counts") or {}).items():
            ops[key].append(int(value))
    ks = sorted({b.get("top_k") for b in banks if b.get("top_k") is not None})
    return {
        **_question_scores(questions),
        "by_category": {k: _question_scores(v) for k, v in sorted(by_category.items())},
        "recall_at_k": {"k": ks[0] if len(ks) == 1 else ks,
                        "session": _mean([q.get("recall_session") for q in questions]),
                        "turn": _mean([q.get("recall_turn") for q in questions])},
        "bank_size": _percentiles([b["bank_size"] for b in banks if "bank_size" in b]),
        "op_counts": {k: {"total": int(sum(v)), "per_episode": float(np.mean(v))}
                      for k, v in sorted(ops.items())},
    }


def dataset_hash(rows: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 of the evaluated tasks' (task id, question, gold answers), in task id order."""
    tasks = {}
    for row in rows:
        tasks[row["task_id"]] = [row["task_id"], row.get("question", ""), list(row["golds"])]
    ordered = sorted(tasks, key=lambda k: (0, k, "") if isinstance(k, int) else (1, 0, str(k)))
    payload = json.dumps([tasks[k] for k in ordered], ensure_ascii=False)
    return "sha256:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


def summarize(predictions: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """All metrics of an evaluation from its prediction rows (as written to predictions.jsonl).

    A row repeated for the same (task_id, attempt) counts once (the last one), so a resumed run
    that re-ran an episode is not double counted. Rows with a failed LLM call are incomplete:
    counted, but left out of every metric.

    Returns:
        episodes (complete ones), incomplete_episodes, tasks, attempts per task (avg@K's K),
        each metric (reward and every reward component) as mean / ci95 / std / n / ci_method
        over per-task means, ci_method per metric, best_of_k accuracy, breakdowns by task_type,
        num_docs, length and number of chunks, efficiency (tokens, calls, latency
        percentiles), error counts and the dataset hash; for multi-question episodes (the
        dialogue envs) also `dialogue`: per-category F1/EM/BLEU-1, accuracy, recall@k, bank
        size and operation counts (see `_dialogue`).
    """
    latest: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    for row in predictions:
        latest[(row["task_id"], row.get("attempt", 0))] = row
    incomplete = [row for row in latest.values() if not is_complete(row)]
    rows = [row for row in latest.values() if is_complete(row)]
    attempts: dict[Any, int] = defaultdict(int)
    for row in rows:
        attempts[row["task_id"]] += 1
    by_task: dict[Any, list[float]] = defaultdict(list)
    for row in rows:  # best of K: a task counts as solved if any attempt solved it
        components = row["reward_components"]
        by_task[row["task_id"]].append(float(components.get("accuracy", row["reward"])))
    best = [max(v) for _, v in sorted(by_task.items(), key=lambda kv: str(kv[0]))]
    metrics = _metrics(rows)
    return {
        "episodes": len(rows),
        "incomplete_episodes": len(incomplete),
        "tasks": len(attempts),
        "attempts_per_task": {"min": min(attempts.values(), default=0),
                              "max": max(attempts.values(), default=0)},
        "metrics": metrics,
        "ci_method": {name: block["ci_method"] for name, block in metrics.items()},
        "best_of_k_accuracy": mean_ci(best),
        "by_task_type": _breakdown(rows, lambda r: r.get("task_type")),
        "by_num_docs": _breakdown(rows, lambda r: (r.get("metadata") or {}).get("num_docs")),
        "by_length": _breakdown(rows, _length),
        "by_num_chunks": _breakdown(rows, lambda r: r.get("num_chunks")),
        "efficiency": _efficiency(rows),
        "errors": {
            "episodes_with_failed_calls": len(incomplete),
            "failed_calls": int(sum(r.get("failed_calls", 0) for r in incomplete)),
            "episodes_with_format_errors": sum(1 for r in rows if r.get("format_errors")),
        },
        "dataset_hash": dataset_hash(rows),
        **({"dialogue": block} if (block := _dialogue(rows)) is not None else {}),
    }
