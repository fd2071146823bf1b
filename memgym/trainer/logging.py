"""Training metrics, named once: the JSONL file, rich console lines, wandb, the learning curve.

`metrics.jsonl` in the run folder gets one JSON object per optimizer step (always; it is the
record the resume test and the plots read). wandb is optional, imported lazily, offline when
`WANDB_API_KEY` is unset, and any wandb failure turns wandb off with a warning instead of
failing the run. The learning curve (`learning_curve.png`) is redrawn with matplotlib's Agg
backend whenever metrics are flushed.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["METRICS", "MetricsLogger", "plot_learning_curve", "read_metrics"]

logger = logging.getLogger(__name__)

METRICS: dict[str, str] = {
    "step": "optimizer step (1-based)",
    "reward": "mean weighted reward of the step's episodes",
    "reward_std": "std of the weighted rewards",
    "rewards/<component>/mean": "mean of one rubric component (unweighted)",
    "rewards/<component>/std": "std of one rubric component",
    "frac_reward_zero_std": "fraction of groups whose rewards are all equal (no signal)",
    "loss": "the optimised loss (summed over micro-batches, averaged over iterations)",
    "kl": "mean k3 KL to the reference per trained token (beta > 0 only)",
    "entropy": "mean policy entropy per trained token",
    "clip_ratio/low_mean": "fraction of tokens clipped at 1 - epsilon with A < 0",
    "clip_ratio/high_mean": "fraction of tokens clipped at 1 + epsilon_high with A > 0",
    "clip_ratio/region_mean": "fraction of tokens clipped either way",
    "tis/mean": "mean truncated importance weight (sampler vs trainer)",
    "grad_norm": "global gradient norm before clipping",
    "learning_rate": "learning rate of the step",
    "completions/mean_length": "mean completion tokens per LLM call",
    "completions/max_length": "longest completion of the step",
    "completions/clipped_ratio": "fraction of calls that hit the token limit",
    "memory/mean_tokens": "mean memory size at the end of an episode",
    "episodes/turns_mean": "LLM calls per episode",
    "episodes/trainable_turns_mean": "trainable LLM calls per episode",
    "rows": "training rows (trainable Turns) of the step",
    "tokens/trained": "completion tokens trained on",
    "tokens/rollout": "prompt + completion tokens of every LLM call of the rollout",
    "time/rollout_s": "seconds spent generating episodes",
    "time/train_s": "seconds spent in forward/backward/optimizer",
    "throughput/train_tokens_per_s": "prompt+completion tokens trained on per second",
    "throughput/rollout_tokens_per_s": "completion tokens generated per second",
    "eval/reward": "mean reward on the held-out split (eval steps only)",
    "eval/rewards/<component>/mean": "held-out mean of one component",
}
"""Every metric the trainer logs, with its meaning (the <component> rows repeat per component)."""

_CONSOLE_KEYS = ("reward", "eval/reward", "loss", "kl", "entropy", "clip_ratio/region_mean",
                 "grad_norm", "frac_reward_zero_std", "time/rollout_s", "time/train_s")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a metrics.jsonl file (a torn last line from a killed run is skipped)."""
    rows = []
    path = Path(path)
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def plot_learning_curve(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path | None:
    """Draw reward (and held-out reward) per step into a PNG; None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    train = [(r["step"], r["reward"]) for r in rows if "reward" in r]
    evals = [(r["step"], r["eval/reward"]) for r in rows if "eval/reward" in r]
    comps = sorted({k for r in rows for k in r if k.startswith("rewards/") and
                    k.endswith("/mean")})
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="reward", color="tab:blue", linewidth=1.8)
    for key in comps:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot(*zip(*pts), label=key.split("/")[1], linewidth=0.9, alpha=0.6)
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval/reward", color="tab:red")
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


class MetricsLogger:
    """Writes each step's metrics to metrics.jsonl, the console, wandb and the learning curve.

    Args:
        output_dir: the run folder.
        config: the resolved recipe (sent to wandb as the run config).
        report_to: extra loggers ("wandb").
        run_name: the wandb run name.
        project: the wandb project.
        max_steps: the total, for the progress bar.
        logging_steps: print a console line every this many steps.
        resume_step: the step a resumed run continues from. Rows after it (logged by the
            killed run after its last checkpoint) are dropped by rewriting the file atomically,
            so it reads as one uninterrupted run; every earlier row is kept and new rows are
            appended. None (a fresh run) starts an empty file.
    """

    def __init__(self, output_dir: str | Path, *, config: Mapping[str, Any] | None = None,
                 report_to: Sequence[str] = (), run_name: str | None = None,
                 project: str = "memgym", max_steps: int | None = None, logging_steps: int = 1,
                 resume_step: int | None = None):
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.jsonl"
        self.plot_path = self.dir / "learning_curve.png"
        self.logging_steps = logging_steps
        if resume_step is None:
            self.rows: list[dict[str, Any]] = []
            self.path.write_text("", encoding="utf-8")
        else:
            rows = read_metrics(self.path) if self.path.is_file() else []
            self.rows = [r for r in rows if r.get("step", 0) <= resume_step]
            if len(self.rows) < len(rows):
                _atomic_write_rows(self.path, self.rows)
        self._wandb = None
        if "wandb" in report_to:
            self._wandb = self._init_wandb(config or {}, run_name or self.dir.name, project)
        self._progress = None
        self._task = None
        if max_steps:
            self._start_progress(max_steps, resume_step or 0)

    # -- sinks ----------------------------------------------------------------------------------
    def _init_wandb(self, config: Mapping[str, Any], name: str, project: str):
        try:
            import wandb
            mode = os.environ.get("WANDB_MODE") or (
                "online" if os.environ.get("WANDB_API_KEY") else "offline")
            return wandb.init(project=project, name=name, config=dict(config), mode=mode,
                              dir=str(self.dir), resume="allow", reinit="finish_previous")
        except Exception as exc:  # noqa: BLE001 - wandb must never fail or block a run
            logger.warning("wandb disabled: %s", exc)
            return None

    def _start_progress(self, total: int, done: int) -> None:
        try:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            self._progress = Progress(TextColumn("[bold]GRPO"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.description}"), TimeElapsedColumn(),
                                      TimeRemainingColumn(), transient=False)
            self._task = self._progress.add_task("", total=total, completed=done)
            self._progress.start()
        except Exception:  # noqa: BLE001 - no terminal features: the console lines still print
            self._progress = None

    # -- API ------------------------------------------------------------------------------------
    def log(self, metrics: Mapping[str, Any]) -> None:
        """Record one step's metrics (must contain "step")."""
        row = {k: _jsonable(v) for k, v in metrics.items()}
        self.rows.append(row)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        step = int(row["step"])
        if self._progress is not None:
            shown = "reward" if "reward" in row else "eval/reward"
            desc = f"{shown} {row.get(shown, float('nan')):.3f}"
            self._progress.update(self._task, completed=step, description=desc)
        if step % self.logging_steps == 0:
            parts = [f"{k}={row[k]:.4g}" for k in _CONSOLE_KEYS
                     if isinstance(row.get(k), (int, float))]
            line = f"step {step}: " + " ".join(parts)
            if self._progress is not None:
                self._progress.console.print(line, highlight=False)
            else:
                logger.info(line)
        if self._wandb is not None:
            try:
                self._wandb.log({k: v for k, v in row.items() if k != "step"}, step=step)
            except Exception as exc:  # noqa: BLE001 - never fail a run
                logger.warning("wandb logging failed, disabling it: %s", exc)
                self._wandb = None

    def log_samples(self, step: int, samples: Sequence[Mapping[str, Any]]) -> None:
        """Send sample episodes (memory after each step, answer, reward) to wandb as a table."""
        if self._wandb is None or not samples:
            return
        try:
            import wandb
            columns = sorted({k for s in samples for k in s})
            table = wandb.Table(columns=columns,
                                data=[[_jsonable(s.get(c)) for c in columns] for s in samples])
            self._wandb.log({"samples": table}, step=step)
        except Exception as exc:  # noqa: BLE001 - never fail a run
            logger.warning("wandb sample table failed, disabling wandb: %s", exc)
            self._wandb = None

    def plot(self) -> Path | None:
        """Redraw learning_curve.png from every row so far."""
        try:
            return plot_learning_curve(self.rows, self.plot_path)
        except Exception as exc:  # noqa: BLE001 - a plot must never fail a run
            logger.warning("learning curve not written: %s", exc)
            return None

    def close(self) -> None:
        """Stop the progress bar, draw the final curve and finish wandb."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self.plot()
        if self._wandb is not None:
            try:
                self._wandb.finish()
            except Exception as exc:  # noqa: BLE001 - never fail a run
                logger.warning("wandb finish failed: %s", exc)
            self._wandb = None


def _atomic_write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace the JSONL file at `path` by `rows`: written aside, fsynced, renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
