"""`memgym eval` wall time on CPU against --concurrency and torch threads (chooses the defaults).

    python bench/bench_eval_concurrency.py [--episodes 32] [--concurrency 8 16 32 64]

Each configuration runs the real CLI in a fresh process: the embedded tiny MemAgent model on
MemAgent-Synthetic-v0 (agents/memagent.yaml, transformers backend), with torch threads 1 and
the torch default (one per core). Prints one row per run: wall time of the evaluation itself
(summary.json's wall_time_s, model loading excluded) and episodes per second.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(episodes: int, concurrency: int, threads: str, out: Path) -> float:
    """Run `memgym eval` once; returns the evaluation's wall time in seconds."""
    cmd = [sys.executable, "-m", "memgym.cli", "eval", "--env", "MemAgent-Synthetic-v0",
           "--agent", str(ROOT / "agents" / "memagent.yaml"), "--backend", "transformers",
           "--model", "embedded", "--episodes", str(episodes), "--concurrency", str(concurrency),
           "--threads", threads, "--out", str(out), "--no-progress"]
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   capture_output=True)
    return json.loads((out / "summary.json").read_text())["run"]["wall_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[8, 16, 32, 64])
    parser.add_argument("--threads", nargs="*", default=["1", "auto"])
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}, {args.episodes} episodes")
    print("| threads | concurrency | wall s | episodes / s |\n|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            for c in args.concurrency:
                wall = one_run(args.episodes, c, threads, Path(tmp) / f"{threads}-{c}")
                print(f"| {threads} | {c} | {wall:.1f} | {args.episodes / wall:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
