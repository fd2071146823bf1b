"""`memgym quickstart`: base vs GRPO-trained vs oracle memory policy, in MemFactory's Table 2 layout.

1. Load the embedded tiny MemAgent model (`memgym/assets/tiny-memagent`, built by
   `memgym.quickstart.build_model`).
2. Evaluate it with `memgym.eval` on four held-out splits (`experiment.EVAL_SPLITS`): in-domain,
   longer streams than it ever trained on, values updated twice (it only ever saw one update),
   and another task family (two keys per question).
3. Train its memory policy with memgym's GRPO trainer on the training split (other seeds).
4. Evaluate the trained model on the same splits with the same sampling; evaluate the scripted
   oracle memory policy as the ceiling.
5. Write, under the run folder: every evaluation's files (predictions, traces, summary), the
   training run (metrics.jsonl, learning curve), `quickstart.json` (scores with 95% confidence
   intervals, averages, relative gain and the fraction of the base-to-oracle gap closed, all
   computed from the evaluation files), `table.md`, and `quickstart.png`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgym.assets import TINY_MEMAGENT
from memgym.errors import ConfigError
from memgym.models import resolve_model_path
from memgym.progress import PhaseClock, print_markdown
from memgym.quickstart import experiment as X

__all__ = ["EMBEDDED_MODEL", "QuickstartResult", "run_quickstart", "score_table", "add_arguments",
           "run"]

EMBEDDED_MODEL = TINY_MEMAGENT

SPLIT_TITLES = {"in_domain": "In-domain", "ood_longer": "OOD: longer streams",
                "ood_two_updates": "OOD: updated twice", "ood_two_keys": "OOD: two keys"}


@dataclass
class QuickstartResult:
    """Where the quickstart wrote its files and the table it computed."""

    out_dir: Path
    table: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


def _accuracy(summary: dict[str, Any]) -> dict[str, float]:
    acc = summary["metrics"]["metrics"]["accuracy"]
    low, high = acc["ci95"]
    return {"mean": acc["mean"], "ci95": [low, high], "ci95_halfwidth": (high - low) / 2,
            "n": acc["n"]}


def _evaluate(agent: Any, out: Path, *, eval_tasks: int, seed: int, tokenizer_path: str,
              progress: bool) -> dict[str, dict[str, float]]:
    from memgym.eval import evaluate

    scores = {}
    for split in X.EVAL_SPLITS:
        summary = evaluate(X.ENV_ID, agent, out_dir=out / split, episodes=eval_tasks, seed=seed,
                           env_kwargs=X.split_env_kwargs(split, num_tasks=eval_tasks,
                                                         tokenizer=tokenizer_path),
                           concurrency=eval_tasks, progress=progress)
        scores[split] = _accuracy(summary)
    return scores


def score_table(base: dict[str, dict[str, float]], trained: dict[str, dict[str, float]],
                oracle: dict[str, dict[str, float]],
                splits: Sequence[str] = X.EVAL_SPLITS) -> dict[str, Any]:
    """Per-split scores, their averages (all `splits`; those named "ood_*"), relative gain and
    gap closed, as fractions (every quickstart's table).

    relative_gain = (trained - base) / base; gap_closed = (trained - base) / (oracle - base).
    """
    def ratio(num: float, den: float) -> float | None:
        return num / den if den > 0 else None

    table: dict[str, Any] = {"splits": {}}
    for split in splits:
        b, t, o = base[split]["mean"], trained[split]["mean"], oracle[split]["mean"]
        table["splits"][split] = {"base": base[split], "trained": trained[split],
                                  "oracle": oracle[split],
                                  "relative_gain": ratio(t - b, b),
                                  "gap_closed": ratio(t - b, o - b)}
    ood = [split for split in splits if split.startswith("ood_")]
    for row, names in (("average", splits), ("ood_average", ood)):
        avg = {name: sum(scores[split]["mean"] for split in names) / len(names)
               for name, scores in (("base", base), ("trained", trained), ("oracle", oracle))}
        table[row] = {**avg, "splits": list(names),
                      "relative_gain": ratio(avg["trained"] - avg["base"], avg["base"]),
                      "gap_closed": ratio(avg["trained"] - avg["base"],
                                          avg["oracle"] - avg["base"])}
    return table


def _markdown(table: dict[str, Any]) -> str:
    def cell(score: dict[str, float]) -> str:
        return f"{100 * score['mean']:.1f} ± {100 * score['ci95_halfwidth']:.1f}"

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:+.1f}%"

    head = ["Model"] + [SPLIT_TITLES[s] for s in X.EVAL_SPLITS] + ["Avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, label in (("base", "Base (embedded tiny MemAgent)"), ("trained", "+ GRPO (memgym)"),
                        ("oracle", "Oracle memory policy")):
        cells = [cell(table["splits"][s][name]) for s in X.EVAL_SPLITS]
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | {100 * table['average'][name]:.1f} |")
    gains = [pct(table["splits"][s]["relative_gain"]) for s in X.EVAL_SPLITS]
    lines.append("| Relative gain | " + " | ".join(gains) +
                 f" | {pct(table['average']['relative_gain'])} |")
    closed = [pct(table["splits"][s]["gap_closed"]).lstrip("+") for s in X.EVAL_SPLITS]
    lines.append("| Base-to-oracle gap closed | " + " | ".join(closed) +
                 f" | {pct(table['average']['gap_closed']).lstrip('+')} |")
    ood = table["ood_average"]
    return ("\n".join(lines) + "\n\nAccuracy (exact match, %) ± 95% confidence half-width. "
            f"Out-of-distribution average: {100 * ood['base']:.1f} -> {100 * ood['trained']:.1f} "
            f"(relative gain {pct(ood['relative_gain'])}, gap closed "
            f"{pct(ood['gap_closed']).lstrip('+')}).\n")


def _plot(out: Path, train_dir: Path, table: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (train_dir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    rows = [r for r in rows if "reward" in r]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    ax1.plot([r["step"] for r in rows], [r["reward"] for r in rows], color="tab:blue")
    ax1.set(xlabel="GRPO step", ylabel="mean episode reward (train split)",
            title="Learning curve")
    ax1.grid(alpha=0.3)
    splits = list(X.EVAL_SPLITS)
    xs = range(len(splits))
    for k, (name, color) in enumerate((("base", "tab:gray"), ("trained", "tab:blue"),
                                       ("oracle", "tab:green"))):
        means = [table["splits"][s][name]["mean"] for s in splits]
        errs = [table["splits"][s][name]["ci95_halfwidth"] for s in splits]
        ax2.bar([x + 0.27 * (k - 1) for x in xs], means, 0.27, yerr=errs, label=name,
                color=color, capsize=3)
    ax2.set_xticks(list(xs), [SPLIT_TITLES[s].replace(": ", ":\n") for s in splits])
    ax2.set(ylabel="accuracy", ylim=(0, 1.05), title="Held-out evaluation (95% CI)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "quickstart.png", dpi=120)
    plt.close(fig)


def run_quickstart(out_dir: str | Path = "runs/quickstart", *, steps: int | None = None,
                   eval_tasks: int = X.EVAL_TASKS, model_path: str | Path = EMBEDDED_MODEL,
                   seed: int = 0, progress: bool = True, overwrite: bool = False,
                   grpo_overrides: dict[str, Any] | None = None,
                   threads: int | str | None = "auto", log=print) -> QuickstartResult:
    """Evaluate, train and re-evaluate the embedded model; write the table and files into `out_dir`.

    Args:
        out_dir: the run folder (created; relative paths are under the current directory).
        steps: GRPO steps (default `experiment.GRPO["max_steps"]`).
        eval_tasks: held-out tasks per evaluation split.
        model_path: the model to start from (default: the embedded one).
        seed: the evaluation seed (same for base, trained and oracle).
        progress: show progress bars.
        overwrite: replace the results of an earlier quickstart in `out_dir`.
        grpo_overrides: changes to `experiment.GRPO` (smaller runs for tests).
        threads: torch CPU threads for every phase (`memgym.llm.set_torch_threads`; None is
            `memgym eval`'s default, 1 unless OMP_NUM_THREADS). "auto" (torch's default) by
            default: training dominates the quickstart and ran 1.4x faster on 2 threads than
            on 1 on a 2-core machine (bench/README.md), more than 1 thread saves in evaluation.
        log: where progress lines go.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from memgym.agents.recipe import load_agent
    from memgym.llm import set_torch_threads
    from memgym.llm.hf import TransformersBackend
    from memgym.trainer.config import GRPOConfig
    from memgym.trainer.grpo import GRPOTrainer

    if eval_tasks < 2:
        raise ConfigError(f"eval_tasks={eval_tasks}: a confidence interval needs at least 2 "
                          "tasks per split")
    out = Path(out_dir)
    ours = [out / name for name in ("base", "oracle", "train", "trained", "quickstart.json")]
    if any(p.exists() for p in ours):
        if not overwrite:
            raise ConfigError(f"{out} already holds quickstart results; pass --overwrite to "
                              "replace them, or choose another --out")
        for p in ours:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    set_torch_threads(threads, setting="threads")
    model_path = tokenizer_path = resolve_model_path(str(model_path))  # "embedded" works too
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    seconds: dict[str, float] = {}
    grpo_steps = steps if steps is not None else X.GRPO["max_steps"]
    log = PhaseClock([17.6, 238.3 * grpo_steps / 40, 23.4, 1.0], log,  # bench/README.md
                     reference="on 2 idle cores").annotate

    t0 = time.perf_counter()
    log("[1/4] evaluating the embedded model ...")
    backend = TransformersBackend(model, tokenizer, max_batch_size=128)
    base = _evaluate(load_agent(X.agent_recipe(), backend), out / "base", eval_tasks=eval_tasks,
                     seed=seed, tokenizer_path=tokenizer_path, progress=progress)
    backend.close()
    oracle = _evaluate(load_agent(X.ORACLE_RECIPE, None), out / "oracle", eval_tasks=eval_tasks,
                       seed=seed, tokenizer_path=tokenizer_path, progress=False)
    seconds["base_eval"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[2/4] GRPO training of the memory policy ...")
    grpo = dict(X.GRPO, torch_threads=threads, **(grpo_overrides or {}),
                output_dir=str(out / "train"))
    if steps is not None:
        grpo["max_steps"] = steps
    config = GRPOConfig(**grpo)
    trainer = GRPOTrainer(config, policy=model, tokenizer=tokenizer,
                          env_kwargs=X.split_env_kwargs("train", num_tasks=X.TRAIN_TASKS,
                                                        tokenizer=tokenizer_path),
                          agent=X.agent_recipe(**X.ROLLOUT_SAMPLING))
    trainer.train()
    trainer.close()
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[3/4] evaluating the trained model ...")
    backend = TransformersBackend(trainer.model, tokenizer, max_batch_size=128)
    trained = _evaluate(load_agent(X.agent_recipe(), backend), out / "trained",
                        eval_tasks=eval_tasks, seed=seed, tokenizer_path=tokenizer_path,
                        progress=progress)
    backend.close()
    seconds["trained_eval"] = time.perf_counter() - t0

    log("[4/4] writing the table ...")
    table = score_table(base, trained, oracle)
    table["eval_tasks_per_split"] = eval_tasks
    table["grpo_steps"] = config.max_steps
    table["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    table["files"] = {name: str(out / name / split / "predictions.jsonl")
                      for name in ("base", "trained", "oracle") for split in X.EVAL_SPLITS}
    (out / "quickstart.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "table.md").write_text(_markdown(table))
    _plot(out, out / "train", table)
    return QuickstartResult(out, table, seconds)


# -- command line -----------------------------------------------------------------------------
def add_arguments(parser: Any) -> None:
    """`memgym quickstart` arguments."""
    parser.add_argument("--out", default="runs/quickstart", help="run folder (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"GRPO steps (default {X.GRPO['max_steps']})")
    parser.add_argument("--eval-tasks", type=int, default=X.EVAL_TASKS,
                        help="held-out tasks per evaluation split (default: %(default)s)")
    parser.add_argument("--model", default=str(EMBEDDED_MODEL),
                        help="model folder to start from (default: the embedded tiny model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", default="auto", metavar="N",
                        help="torch CPU threads: a number, or 'auto' (default: torch's, one per "
                             "core; training, most of the quickstart, is faster with them)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier quickstart in --out")
    from memgym.quickstart import rmm

    from memgym.quickstart import memory_r1

    agents = parser.add_subparsers(dest="quickstart_agent", metavar="{rmm,memory-r1}",
                                   help="another agent's quickstart (none: MemAgent's)")
    rmm.add_arguments(agents.add_parser(
        "rmm", help="RMM's reranker on LoCoMo: recall@5 and F1 before/after REINFORCE",
        description="RMM's reranker on real LoCoMo with the real encoder: recall@5 and "
                    "answer F1 before and after REINFORCE from citations (memgym.quickstart.rmm)"))
    memory_r1.add_arguments(agents.add_parser(
        "memory-r1", help="Memory-R1's manager: GRPO with a frozen reader on synthetic dialogues",
        description="Memory-R1 stage 1 on MemoryBank-Synthetic-v0: a tiny manager built by SFT "
                    "from an imperfect teacher, then GRPO with a deterministic frozen reader "
                    "(memgym.quickstart.memory_r1)"))


def run(args: Any) -> int:
    """Run the quickstart (`memgym quickstart rmm`: RMM's) and print the table."""
    if getattr(args, "quickstart_agent", None) == "rmm":
        from memgym.quickstart import rmm

        return rmm.run(args)
    if getattr(args, "quickstart_agent", None) == "memory-r1":
        from memgym.quickstart import memory_r1

        return memory_r1.run(args)
    from rich.console import Console

    result = run_quickstart(args.out, steps=args.steps, eval_tasks=args.eval_tasks,
                            model_path=args.model, seed=args.seed,
                            progress=not args.no_progress, overwrite=args.overwrite,
                            threads=args.threads)
    console = Console()
    print_markdown((result.out_dir / "table.md").read_text(), console)
    console.print(f"files: {result.out_dir.resolve()} (quickstart.json, table.md, quickstart.png)")
    return 0
