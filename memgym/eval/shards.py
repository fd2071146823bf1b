"""Sharded evaluation: split one run's (task, attempt) rows over N processes, then merge them.

    memgym eval ... --shard 0/2 --out runs/x.0 --base-url http://node-a:8000/v1
    memgym eval ... --shard 1/2 --out runs/x.1 --base-url http://node-b:8000/v1
    memgym eval merge runs/x.0 runs/x.1 --out runs/x

Row r = task_id * K + attempt (K = --avg-k) belongs to shard r mod N: the shards are disjoint,
cover every row, do not depend on anything but (I, N, K), and get equal shares (within one
row). Every shard resets and samples each row with the same seeds as the unsharded run
(`memgym.eval.runner`), so the merged predictions are those of the unsharded run and the merged
summary.json holds the metrics it would have written (`summarize` of the same rows).

`merge_shards` refuses shards that do not belong together, naming the file and the field: a
different env, env kwargs, agent recipe, model, seed, K, episode count or memgym version; a
shard index missing or given twice; a row in the wrong shard; a row missing (an unfinished
shard: rerun it with --resume).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from memgym.errors import ConfigError, DataError
from memgym.eval.metrics import summarize
from memgym.eval.records import PREDICTIONS, RUN, SUMMARY, TRACES, read_jsonl

__all__ = ["MERGE_KEYS", "in_shard", "merge_shards", "parse_shard"]

MERGE_KEYS = ("env_id", "env_kwargs", "recipe", "agent", "seed", "avg_k", "episodes",
              "env_num_tasks", "model")
"""run.json fields every shard of one run must share (and memgym's version)."""

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str | Sequence[int] | None, setting: str = "--shard"
                ) -> tuple[int, int] | None:
    """Parse "I/N" (0 <= I < N) into (I, N); None stays None.

    Raises:
        ConfigError: not of the form I/N with 0 <= I < N (the message shows an example).
    """
    if text is None:
        return None
    if isinstance(text, str):
        match = _SHARD.match(text)
        if not match:
            raise ConfigError(f"{setting} {text!r}: give I/N, shard I of N counted from 0, e.g. "
                              "--shard 0/4 ... --shard 3/4")
        index, count = int(match[1]), int(match[2])
    else:
        index, count = (int(x) for x in text)
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"{setting} {index}/{count}: need N >= 1 and 0 <= I < N (shards are "
                          f"counted from 0: {setting} 0/{max(count, 1)} is the first)")
    return index, count


def in_shard(task_id: int, attempt: int, avg_k: int, shard: tuple[int, int] | None) -> bool:
    """Whether row (task_id, attempt) of a run with `avg_k` attempts per task is in `shard`."""
    if shard is None:
        return True
    index, count = shard
    return (task_id * avg_k + attempt) % count == index


def _read_run(directory: Path) -> dict[str, Any]:
    path = directory / "run.json"
    if not path.is_file():
        raise ConfigError(f"{path} not found: {directory} is not the --out of a `memgym eval` "
                          "run (or the run never started)")
    run = json.loads(path.read_text(encoding="utf-8"))
    if run.get("shard") is None:
        raise ConfigError(f"{path}: this run was not sharded (no 'shard' field); merge the "
                          "outputs of `memgym eval ... --shard I/N` runs")
    return run


def _check_agree(runs: Sequence[tuple[Path, dict[str, Any]]]) -> tuple[int, int]:
    """Check the shards belong to one run and together are all N of them; returns (N, avg_k)."""
    (first_dir, first), *rest = runs
    for directory, run in rest:
        for key in (*MERGE_KEYS, "memgym version"):
            if key == "memgym version":
                a, b = (r.get("versions", {}).get("memgym") for r in (first, run))
            else:
                a, b = first.get(key), run.get(key)
            if a != b:
                raise ConfigError(
                    f"{directory / 'run.json'}: {key}={b!r}, but {first_dir / 'run.json'} has "
                    f"{key}={a!r}; the shards of one run must share it (rerun that shard with "
                    "the same flags)")
    seen: dict[int, Path] = {}
    counts = {parse_shard(run["shard"], f"{d / 'run.json'}: shard")[1] for d, run in runs}
    if len(counts) > 1:
        given = ", ".join(f"{d}: {r['shard']}" for d, r in runs)
        raise ConfigError(f"the shards say different N: {sorted(counts)} ({given}); merge the "
                          "shards of one run")
    count = counts.pop()
    for directory, run in runs:
        index = parse_shard(run["shard"])[0]
        if index in seen:
            raise ConfigError(f"shard {index}/{count} is given twice: {seen[index]} and {directory}")
        seen[index] = directory
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise ConfigError(f"shards {', '.join(f'{i}/{count}' for i in missing)} are missing; "
                          f"merge all {count} shards (given: {', '.join(map(str, seen.values()))})")
    return count, int(first["avg_k"])


def _shard_rows(directory: Path, run: Mapping[str, Any], name: str
                ) -> dict[tuple[int, int], dict[str, Any]]:
    """The rows of one shard's file (the last per row), each checked to belong to the shard."""
    shard = parse_shard(run["shard"])
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    for row in read_jsonl(directory / name):
        key = (row["task_id"], row.get("attempt", 0))
        if not in_shard(*key, int(run["avg_k"]), shard):
            raise DataError(f"{directory / name}: row task_id={key[0]} attempt={key[1]} does not "
                            f"belong to shard {run['shard']}; the file was not written by that "
                            "shard's run")
        rows[key] = row
    return rows


def merge_shards(dirs: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """Merge the outputs of the N shards of one run into `out`, as the unsharded run writes it.

    Writes predictions.jsonl and traces.jsonl (rows in (task, attempt) order), run.json (the
    shared settings, the shards' dirs, base URLs and wall times) and summary.json
    ({"metrics": summarize(predictions), "run": ...}).

    Raises:
        ConfigError: the shards do not belong together or are not all there (see module doc),
            or `out` already holds predictions.
        DataError: a shard is unfinished (rows missing: rerun it with --resume) or holds a row
            of another shard.
    """
    if not dirs:
        raise ConfigError("memgym eval merge: give the shard directories, e.g. "
                          "`memgym eval merge runs/x.0 runs/x.1 --out runs/x`")
    runs = [(Path(d), _read_run(Path(d))) for d in dirs]
    count, avg_k = _check_agree(runs)
    predictions: dict[tuple[int, int], dict[str, Any]] = {}
    traces: dict[tuple[int, int], dict[str, Any]] = {}
    for directory, run in runs:
        rows = _shard_rows(directory, run, PREDICTIONS)
        expected = {(t, a) for t in range(int(run["episodes"])) for a in range(avg_k)
                    if in_shard(t, a, avg_k, parse_shard(run["shard"]))}
        missing = sorted(expected - set(rows))
        if missing:
            raise DataError(f"{directory / PREDICTIONS}: {len(missing)} of the shard's "
                            f"{len(expected)} rows are missing (first: task_id={missing[0][0]} "
                            f"attempt={missing[0][1]}); the shard did not finish: rerun it "
                            "with --resume, then merge")
        predictions.update(rows)
        traces.update(_shard_rows(directory, run, TRACES))
    target = Path(out)
    if read_jsonl(target / PREDICTIONS):
        raise ConfigError(f"--out {target} already holds predictions; merge into a new directory")
    target.mkdir(parents=True, exist_ok=True)
    _write_rows(target / PREDICTIONS, predictions)
    _write_rows(target / TRACES, traces)
    merged = {k: v for k, v in runs[0][1].items() if k not in ("shard", "base_url")}
    summaries = [_read_summary(d) for d, _ in runs]
    merged["shards"] = [{"dir": str(d), "shard": r["shard"], "base_url": r.get("base_url"),
                         "wall_time_s": s.get("run", {}).get("wall_time_s")}
                        for (d, r), s in zip(runs, summaries)]
    (target / RUN).write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n",
                              encoding="utf-8")
    walls = [s["run"]["wall_time_s"] for s in summaries if "wall_time_s" in s.get("run", {})]
    summary: dict[str, Any] = {
        "metrics": summarize([predictions[k] for k in sorted(predictions)]),
        "run": {**merged, "wall_time_s": max(walls, default=None),
                "episodes_run_now": sum(s.get("run", {}).get("episodes_run_now", 0)
                                        for s in summaries)}}
    capabilities = next((s["backend_capabilities"] for s in summaries
                         if "backend_capabilities" in s), None)
    if capabilities is not None:
        summary["backend_capabilities"] = capabilities
    (target / SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
    return summary


def _read_summary(directory: Path) -> dict[str, Any]:
    path = directory / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_rows(path: Path, rows: Mapping[tuple[int, int], Mapping[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(rows[k], ensure_ascii=False) + "\n" for k in sorted(rows))
