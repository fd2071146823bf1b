"""Env overhead: steps per second and peak memory of RULER-HQA episodes from 8K to 3.5M tokens.

A trivial policy (a fixed 40-word memory, a boxed answer) plays one episode of
`MemAgent-HotpotQA-v0` at each size, 5000-token chunks, the offline word tokenizer. The bundled
HotpotQA questions supply gold paragraphs; the distractor pool is synthetic paragraphs shaped like
HotpotQA's (~130 tokens), since the bundled sample is far too small for 25,600 documents.
Each size runs in a fresh subprocess so that its peak RSS is its own.

    python bench/bench_env.py            # all sizes
    python bench/bench_env.py --sizes 50 800
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

SIZES = [50, 200, 800, 3200, 12800, 25600]


def synthetic_pool(n: int, seed: int = 0):
    """`n` distinct paragraphs of 100-160 words drawn from a 5,000-word vocabulary."""
    import numpy as np

    from memgym.data.task import Document

    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(5000)]
    docs = []
    for i in range(n):
        words = rng.choice(vocab, size=int(rng.integers(100, 160)))
        docs.append(Document(f"Pool title {i}", " ".join(words) + "."))
    return docs


def run_one(num_docs: int) -> dict:
    """Play one episode at `num_docs` documents; return timings and peak RSS."""
    import gymnasium as gym

    import memgym  # noqa: F401

    t0 = time.perf_counter()
    pool = synthetic_pool(num_docs + 100)
    env = gym.make("MemAgent-HotpotQA-v0", num_docs=num_docs, pool=pool, limit=1)
    build_s = time.perf_counter() - t0
    memory = " ".join(["fact"] * 40)

    t0 = time.perf_counter()
    obs, info = env.reset(seed=0, options={"task_id": 0})
    reset_s = time.perf_counter() - t0
    steps, tokens = 0, info["chunk_tokens"]
    t0 = time.perf_counter()
    while obs["phase"] == "update":
        obs, _, _, _, info = env.step(memory)
        tokens += info["chunk_tokens"]
        steps += 1
    env.step("\\boxed{yes}")
    loop_s = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"num_docs": num_docs, "context_tokens": tokens, "steps": steps + 1,
            "ms_per_step": 1e3 * loop_s / (steps + 1), "steps_per_s": (steps + 1) / loop_s,
            "reset_ms": 1e3 * reset_s, "build_s": build_s, "peak_rss_mb": rss_mb}


def main() -> None:
    """Run every size in its own subprocess and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    print("| docs | context tokens | steps | ms / step | steps / s | reset ms | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True,
                             text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"| {r['num_docs']:,} | {r['context_tokens']:,} | {r['steps']:,} | "
              f"{r['ms_per_step']:.2f} | {r['steps_per_s']:.0f} | {r['reset_ms']:.1f} | "
              f"{r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
