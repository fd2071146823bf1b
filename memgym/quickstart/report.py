"""What every quickstart shares: the run folder, the result, and the score table
(base vs trained vs oracle per split, averages, relative gain, gap closed)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgym.errors import ConfigError

__all__ = ["QuickstartResult", "fresh_out_dir", "paired_gain", "score_bars", "score_table"]


@dataclass
class QuickstartResult:
    """Where a quickstart wrote its files and the table it computed."""

    out_dir: Path
    table: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


def fresh_out_dir(out_dir: str | Path, owned: Sequence[str], overwrite: bool) -> Path:
    """Create the run folder; the files and folders `owned` of an earlier run are removed with
    `overwrite`, else refused (so a second run never mixes its results with the first's)."""
    out = Path(out_dir)
    ours = [out / name for name in owned]
    if any(p.exists() for p in ours):
        if not overwrite:
            raise ConfigError(f"{out} already holds quickstart results; pass --overwrite to "
                              "replace them, or choose another --out")
        for p in ours:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def score_table(base: dict[str, dict[str, float]], trained: dict[str, dict[str, float]],
                oracle: dict[str, dict[str, float]], splits: Sequence[str]) -> dict[str, Any]:
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


def paired_gain(base: Sequence[float], trained: Sequence[float]) -> dict[str, Any]:
    """Mean per-item difference trained - base, with its bootstrap 95% interval (None below 2
    items): the same items scored before and after training, so the pairing removes the items'
    own difficulty from the interval."""
    from memgym.eval.metrics import bootstrap_ci

    if len(base) != len(trained):
        raise ValueError(f"paired_gain: {len(base)} base scores but {len(trained)} trained")
    diffs = [float(t) - float(b) for b, t in zip(base, trained)]
    if len(diffs) < 2:
        return {"mean": sum(diffs) / len(diffs) if diffs else None, "ci95": None, "n": len(diffs)}
    return {"mean": sum(diffs) / len(diffs), "ci95": bootstrap_ci(diffs), "n": len(diffs)}


def score_bars(ax: Any, table: dict[str, Any], splits: Sequence[str], titles: dict[str, str]
               ) -> None:
    """Draw base, trained and oracle accuracy per split with 95% error bars on `ax`."""
    xs = range(len(splits))
    for k, (name, color) in enumerate((("base", "tab:gray"), ("trained", "tab:blue"),
                                       ("oracle", "tab:green"))):
        means = [table["splits"][s][name]["mean"] for s in splits]
        errs = [table["splits"][s][name]["ci95_halfwidth"] for s in splits]
        ax.bar([x + 0.27 * (k - 1) for x in xs], means, 0.27, yerr=errs, label=name,
               color=color, capsize=3)
    ax.set_xticks(list(xs), [titles[s].replace(": ", ":\n") for s in splits])
    ax.set(ylabel="accuracy", ylim=(0, 1.05), title="Held-out evaluation (95% CI)")
    ax.legend()
