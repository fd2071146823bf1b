"""MemAgent vs MEM1-style, full context, BM25 and the oracle on a real model and real HotpotQA.

    memgym models prepare smollm2-135m-instruct && memgym models prepare smollm2-135m-memagent
    nohup python bench/real_model_table.py --n 20 --docs 10 30 > runs/real_model_table.log &
    python bench/real_model_table.py --n 20 --docs 10 30 --table-only    # the table again

Every cell is one `memgym eval` run (the CLI itself, in a subprocess: the same env, agents,
backend, scoring and summary as any user's run), greedy (`temperature=0`), one torch thread,
`--resume` (a killed table picks up where it stopped). Scored by the env's defaults: the last
`\\boxed{}` (MemAgent's parser) checked by sub_em (MemAgent's test verifier); the intervals are
memgym's (Wilson for 0/1 scores).

Questions: rows 21-100 of ../shared/data/hotpotqa_distractor_sample100.jsonl (its first 20 rows
ARE the bundled sample, which `bench/make_smollm2_memagent_adapter.py` trains on; this script
refuses to run if an id or a question of the bundled sample is among them), written to
`<out>/heldout_hotpotqa.jsonl` and passed as `data_path`; the first `--n` become the tasks.
`--bundled` adds cells on the bundled sample (the adapter's training questions: a check that it
learnt them, not a held-out score).

Sizes for SmolLM2's 8,192-token window: chunks of 1,000 tokens, a 256-token memory whose
rewrites are capped at 128 new tokens, answers at 48 new tokens, full context / oracle / BM25
prompts cut to 7,600 tokens (middle truncation), BM25 top 4 passages of 256 tokens. Tokens are
counted with SmolLM2's own tokenizer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_HOTPOTQA = next(
    (p for p in (ROOT / ".." / "shared" / "data" / "hotpotqa_distractor_sample100.jsonl",
                 ROOT / ".." / ".." / "shared" / "data" / "hotpotqa_distractor_sample100.jsonl")
     if p.is_file()), ROOT / ".." / "shared" / "data" / "hotpotqa_distractor_sample100.jsonl")
"""The 100-question file beside the checkout (../shared/data; ../../shared/data for a git
worktree under a folder of worktrees)."""
BUNDLED = ROOT / "memgym" / "data" / "bundled" / "hotpotqa_dev_sample.jsonl"
MODELS = ("smollm2-135m-instruct", "smollm2-135m-memagent")

CHUNK_TOKENS, MEMORY_TOKENS = 1000, 256
AGENTS: dict[str, tuple[str, list[str]]] = {
    "memagent": ("agents/memagent_smollm2.yaml",
                 ["memory_max_new_tokens=128", "answer_max_new_tokens=48"]),
    "full_context": ("agents/full_context.yaml",
                     ["max_context_tokens=7600", "answer_max_new_tokens=48"]),
    "rag_bm25": ("agents/rag_bm25.yaml", ["passage_tokens=256", "top_k=4",
                                          "max_context_tokens=7600", "answer_max_new_tokens=48"]),
    "oracle": ("agents/oracle.yaml", ["max_context_tokens=7600", "answer_max_new_tokens=48"]),
    "mem1": ("agents/mem1.yaml", ["state_max_new_tokens=128", "answer_max_new_tokens=176"]),
}
"""Agent -> (recipe, overrides that fit SmolLM2), in run order (one-call agents before MEM1,
the costliest). MEM1's final turn repeats its <IS> state
(up to 128 tokens) before <answer>, so its answer cap is 128 + 48."""


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def heldout_file(out: Path, source: Path = SHARED_HOTPOTQA, skip: int = 20) -> tuple[Path, int]:
    """Write the rows after the first `skip` of `source` to `out`; refuse any bundled overlap.

    Returns the file and how many questions it holds.
    """
    rows, bundled = _rows(source)[skip:], _rows(BUNDLED)
    ids = {r["_id"] for r in bundled}
    questions = {r["question"].strip().lower() for r in bundled}
    shared = [r["_id"] for r in rows if r["_id"] in ids or r["question"].strip().lower()
              in questions]
    if shared:
        sys.exit(f"{source}: rows after {skip} share {len(shared)} questions with the bundled "
                 f"sample the adapter trains on ({shared[:3]}); choose --skip so they do not")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if not out.is_file() or out.read_text(encoding="utf-8") != text:  # two tables may share it
        out.write_text(text, encoding="utf-8")
    return out, len(rows)


def eval_command(model: str, agent: str, docs: int, n: int, data: Path | None,
                 out: Path) -> list[str]:
    """The `memgym eval` command line of one cell."""
    recipe, overrides = AGENTS[agent]
    env_kwargs = [f"num_docs={docs}", f"chunk_tokens={CHUNK_TOKENS}",
                  f"memory_tokens={MEMORY_TOKENS}", f"tokenizer={model}"]
    if data is not None:
        env_kwargs.append(f"data_path={data}")
    return ["memgym", "eval", "--env", "MemAgent-HotpotQA-v0", "--env-kwargs", *env_kwargs,
            "--agent", recipe, "--agent-overrides", "temperature=0", *overrides,
            "--backend", "transformers", "--model", model, "--threads", "1",
            "--episodes", str(n), "--out", str(out), "--resume", "--no-progress"]


def answer_rates(out: Path) -> tuple[float | None, float | None]:
    """(share of final answers holding a `\\boxed{`, lenient score: the gold found anywhere in
    the whole final text, box or not: memgym's `gold_in_pred_em`) over predictions.jsonl."""
    from memgym.rewards.scorers import gold_in_pred_em

    path = out / "predictions.jsonl"
    rows = _rows(path) if path.is_file() else []
    if not rows:
        return None, None
    boxed = sum("\\boxed{" in r.get("response", "") for r in rows) / len(rows)
    lenient = sum(gold_in_pred_em(r.get("response", ""), r["golds"]) for r in rows) / len(rows)
    return boxed, lenient


def cell(out: Path) -> dict | None:
    """One finished cell's numbers from its summary.json, or None."""
    path = out / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())["metrics"]
    score = summary["metrics"]["accuracy"]  # sub_em of the boxed answer (the env's scorer)
    wall = out / "wall_s.txt"
    boxed, lenient = answer_rates(out)
    return {"n": score["n"], "mean": score["mean"], "ci95": score["ci95"],
            "peak_prompt_tokens": summary["efficiency"]["peak_prompt_tokens"]["max"],
            "wall_s": float(wall.read_text()) if wall.is_file() else None,
            "boxed": boxed, "lenient": lenient}


def table(out: Path, models: list[str], docs: list[int], labels: list[str]) -> str:
    """The markdown table of every finished cell."""
    header = ("| model | data | docs | agent | N | sub_em (boxed) | 95% CI | boxed | lenient "
              "| peak prompt tok | wall s |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model in models:
        for label in labels:
            for d in docs:
                for agent in AGENTS:
                    c = cell(out / model / label / f"docs{d}" / agent)
                    if c is None:
                        continue
                    ci = "-" if c["ci95"] is None else f"{c['ci95'][0]:.2f}-{c['ci95'][1]:.2f}"
                    boxed = "-" if c["boxed"] is None else f"{c['boxed']:.2f}"
                    lenient = "-" if c["lenient"] is None else f"{c['lenient']:.2f}"
                    wall = "-" if c["wall_s"] is None else f"{c['wall_s']:.0f}"
                    lines.append(f"| {model} | {label} | {d} | {agent} | {c['n']} | "
                                 f"{c['mean']:.2f} | {ci} | {boxed} | {lenient} | "
                                 f"{c['peak_prompt_tokens']} | {wall} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every missing cell (models x data x docs x agents), then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument("--docs", nargs="+", type=int, default=[10, 30])
    parser.add_argument("--n", type=int, default=20, help="questions per cell")
    parser.add_argument("--bundled", action="store_true",
                        help="also run on the bundled sample (the adapter's training questions)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "real_model_table")
    parser.add_argument("--data", type=Path, default=SHARED_HOTPOTQA,
                        help="the 100-question HotpotQA file whose rows 21-100 are evaluated")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)

    if not args.data.is_file():
        sys.exit(f"--data {args.data}: no such file; give the 100-question HotpotQA sample")
    data, held = heldout_file(args.out / "heldout_hotpotqa.jsonl", args.data)
    print(f"held-out questions: {held} (rows 21-100; no id or question shared with the bundled "
          "sample)", flush=True)
    sets = [("heldout", data)] + ([("bundled", None)] if args.bundled else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if not args.table_only:
        for d in args.docs:
            for label, path in sets:
                for model in args.models:
                    for agent in args.agents:
                        out = args.out / model / label / f"docs{d}" / agent
                        if cell(out) is not None and cell(out)["n"] >= args.n:
                            continue
                        cmd = eval_command(model, agent, d, args.n, path, out)
                        print(" ".join(cmd), flush=True)
                        start = time.time()
                        done = subprocess.run(cmd, env=env, cwd=ROOT, check=False)
                        if done.returncode == 0:
                            (out / "wall_s.txt").write_text(f"{time.time() - start:.1f}\n")
                        print(f"  -> rc {done.returncode}, {time.time() - start:.0f} s",
                              flush=True)
    print(table(args.out, args.models, args.docs, [label for label, _ in sets]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
