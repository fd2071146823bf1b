"""`memgym quickstart rmm --protocol online`: RMM's retrospective reflection as RMM runs it.

RMM (Tan et al. 2025, section 4) does not train its reranker offline and freeze it: it adapts
the reranker *online*, as the dialogue goes on, from the citations of the LLM that answers. This
module runs that protocol on LoCoMo, prequentially:

    for each test conversation:
        the reranker starts from its initial state (W = 0: the encoder's order), or from a
        state pretrained offline (the "pretrained" variant)
        for each question, in the release's order:
            sample the top-M shown to the answerer (Gumbel top-M at temperature tau)
            score it: recall@5 and answer F1 of what was shown          <- measured BEFORE ...
            cite (evidence citer), reward each pick (+1 cited, -1 not)
            after `batch_size` questions: one REINFORCE step              <- ... the update

so every question's score comes from a reranker that has never been updated on it. The
conversation's state is thrown away at its end; no test conversation informs another.

**No stale samples.** Each update uses exactly the samples drawn since the previous update, all
drawn by the weights that are about to be updated, and their sampling-time log-probabilities
(`RerankSample.logp`) are the loss's old log-probs. The importance ratio exp(logp - old_logp) is
therefore 1 at the step (the gradient is REINFORCE's, and the clip never binds); `reinforce_step`
checks it, so a buffer that outlives an update is an error rather than a silently biased
gradient. The step calls the trainer's `fixed_baseline_advantages` / `group_advantages`,
`broadcast_credit` and `grpo_loss` directly: `module_policy.module_loss` takes the same
sampling-time log-probs but only a fixed baseline, not the per-question "picks" baseline.

What is scored as "online" is what the answerer was shown (the Gumbel sample, as in deployment:
exploration has a price); `greedy_view` rows score the M best scores of the same state at the
same moment (the reranker's own ranking without exploration), for reference.

The rows of the table, all on the same test questions: **base** (the encoder's top-5),
**offline** (pretrained on the train and validation conversations, then frozen, greedy),
**online** (from W = 0), **online + pretrained** (from the offline state), **oracle**.
Hyperparameters (`ONLINE_SETTINGS`) were chosen on the validation conversation conv-30 alone
(`VALIDATION`): the test conversations chose nothing. Departures from RMM are
`memgym.quickstart.rmm`'s (memories are turns, the evidence-based citer, the extractive
answerer).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memgym.errors import ConfigError
from memgym.quickstart.report import fresh_out_dir
from memgym.quickstart.rmm import (
    SETTINGS,
    RMMCase,
    build_cases,
    evidence_citer,
    oracle_top,
    rank_cases,
    score_rankings,
)
from memgym.trainer.module_policy import citation_rewards

__all__ = ["ONLINE_SETTINGS", "VALIDATION", "VARIANTS", "add_protocol_arguments",
           "cached_encoder", "goal_check", "learning_curve", "make_optimizer", "pick_advantages",
           "prequential_conversation", "pretrain", "reinforce_step", "run",
           "run_online_quickstart", "score_variants"]

ONLINE_SETTINGS: dict[str, Any] = {
    "tau": 0.02,              # RMM: 0.5 (near-uniform on cosine scores; see VALIDATION)
    "estimator": "rmm",       # RMM's log-softmax over the K candidates for every pick
    "optimizer": "sgd",
    "learning_rate": 0.01,    # the online update's
    "batch_size": 1,          # RMM: 4; update after every answered question
    "baseline": "picks",      # RMM: 0.5; the mean reward of the question's own picks
    "pretrain_epochs": 3,     # the offline state: passes over conv-26 + conv-30
    "pretrain_learning_rate": 0.003,
    "seed": 0,
}
"""The online protocol's settings, each chosen on the validation conversation conv-30 alone
(`VALIDATION` holds the numbers that chose them); RMM's value in the comment where it differs."""

VALIDATION: dict[str, Any] = {
    "conversation": "conv-30 (81 questions with evidence); online rows: recall@5 of what was "
                    "shown, mean of 3 sampling seeds",
    "base": 0.346, "oracle": 0.549,
    "tau, no learning (what sampling alone costs)": {
        "0.5": 0.142, "0.1": 0.191, "0.05": 0.251, "0.02": 0.325, "0.01": 0.356},
    "baseline (tau 0.02, plackett_luce, sgd lr 0.01)": {
        "0.5 (RMM)": 0.294, "0.0": 0.357, "-0.8": 0.392, "picks": 0.383},
    "estimator (tau 0.02, sgd lr 0.01, picks)": {"plackett_luce": 0.383, "rmm": 0.424},
    "learning rate (tau 0.02, rmm, sgd, picks)": {
        "0.003": 0.379, "0.006": 0.399, "0.01": 0.424, "0.015": 0.399, "0.03": 0.403,
        "0.1": 0.319},
    "tau (rmm, sgd lr 0.01, picks)": {"0.015": 0.420, "0.02": 0.424, "0.03": 0.366,
                                      "0.05": 0.310},
    "adamw lr (tau 0.02, rmm, picks)": {"3e-4": 0.407, "1e-3": 0.337, "3e-3": 0.263},
    "batch 4 (tau 0.02, rmm, sgd)": {"picks, lr 0.04": 0.420, "0.5 (RMM), lr 0.01": 0.387,
                                     "0.5 (RMM), lr 0.04": 0.214},
    "pretraining on conv-26, frozen greedy on conv-30 (sgd, picks)": {
        "lr 0.003 x 3 epochs": 0.408, "lr 0.003 x 5": 0.408, "lr 0.003 x 10": 0.365,
        "lr 0.001 x 5": 0.383, "lr 0.01 x 1": 0.402, "lr 0.01 x 5": 0.263,
        "lr 0.003 x 5, + 30 synthetic dialogues (207 questions)": 0.230},
    "online from the conv-26 state (lr 0.01)": {"3 epochs": 0.436, "5 epochs": 0.409},
    "pretraining temperature, 3 epochs (frozen / online from it)": {
        "0.02, lr 0.003": "0.408 / 0.436", "0.05, lr 0.003": "0.377 / 0.420",
        "0.05, lr 0.01": "0.433 / 0.413", "0.1, lr 0.003": "0.358 / 0.424",
        "0.1, lr 0.01": "0.377 / 0.413"},
}
"""The conv-30 numbers that chose `ONLINE_SETTINGS` (recall@5)."""

OPTIMIZERS = ("sgd", "adamw")
"""The optimizers the online update may use."""

DEPARTURES = {
    "memories": "the conversation's turns ('<speaker>: <utterance>' + image caption), not "
                "RMM's LLM topic summaries (no LLM fast enough on CPU)",
    "citations": "evidence-based citer: cites the shown memories that are evidence turns of "
                 "the question (not an LLM)",
    "answers": "extractive: the utterance text of the cited memories, or 'Not mentioned in the "
               "conversation' when none is cited",
    "order": "a conversation's questions are asked after it, in the release's order (grouped "
             "by category), not interleaved with its sessions",
    "baseline": "each question's picks are centred on their own mean reward ('picks'), not "
                "RMM's fixed 0.5, which drives the shown memories down (chosen on conv-30)",
    "temperature": "tau 0.02 on cosine scores (RMM: 0.5, near-uniform over 20 candidates whose "
                   "cosines span about 0.16)",
}
"""How this protocol departs from RMM, beside `memgym.quickstart.rmm`'s (in quickstart.json)."""


# -- the update ------------------------------------------------------------------------------
def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    """"sgd" (plain: each update adds lr x advantage x the pick's score gradient, an outer
    product of query and memory) or "adamw" (weight decay 0)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    raise ConfigError(f"optimizer={name!r}; choose one of {OPTIMIZERS}")


def pick_advantages(rewards: Sequence[float], baseline: float | str) -> torch.Tensor:
    """[M] advantages of one sample's picks: r - b (RMM's fixed baseline b), or with
    `baseline="picks"` r minus the mean of the sample's own picks (GRPO's group mean, the picks
    as the group, unscaled): cited picks rise and uncited fall by amounts that sum to zero, and
    a question with no cited pick teaches nothing."""
    from memgym.trainer.advantages import fixed_baseline_advantages, group_advantages

    comps = torch.tensor([float(r) for r in rewards], dtype=torch.float32)[:, None]   # [M, 1]
    if baseline == "picks":
        return group_advantages(comps, torch.ones(1), len(rewards), scale_rewards="none")[0]
    if isinstance(baseline, str):
        raise ConfigError(f"baseline={baseline!r}: a number (RMM: 0.5) or 'picks'")
    return fixed_baseline_advantages(comps, torch.ones(1), float(baseline))[0]


def reinforce_step(reranker: Any, optimizer: torch.optim.Optimizer, samples: Sequence[Any],
                   rewards: Sequence[Sequence[float]], *, baseline: float | str
                   ) -> dict[str, float]:
    """One REINFORCE step on fresh samples: `pick_advantages` per pick, the trainer's GRPO loss.

    `samples` must have been drawn by the reranker's current weights: their sampling-time
    log-probs are the old log-probs, and the ratio is checked to be 1 (else the samples are
    stale and this on-policy step would be biased).
    """
    from memgym.trainer.advantages import broadcast_credit
    from memgym.trainer.loss import LossNorm, grpo_loss

    flat = [float(r) for rs in rewards for r in rs]
    adv = torch.cat([pick_advantages(rs, baseline) for rs in rewards])        # [R]
    credit = broadcast_credit(adv.tolist(), [[True]] * len(flat))            # one row per pick
    reranker.train()
    logps = torch.cat([reranker.log_probs(s) for s in samples])[:, None]      # [R, 1]
    old = torch.cat([s.logp for s in samples])[:, None]                      # [R, 1] sampling-time
    drift = float((logps.detach() - old).abs().max())
    if drift > 1e-4:
        raise ConfigError(f"reinforce_step: the samples are stale (their log-probs moved by "
                          f"{drift:.3g} since they were drawn, i.e. an update came between); "
                          "draw fresh samples after every step")
    weights = torch.tensor(credit.weights, dtype=torch.float32)
    norm = LossNorm(total_row_weight=float(weights.sum()),
                    total_token_weight=float(weights.sum()), max_completion_length=1)
    loss, _ = grpo_loss(logps, old, torch.tensor(credit.advantages), torch.ones_like(logps),
                        weights, norm, loss_type="grpo")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    reranker.eval()
    return {"loss": float(loss.detach()), "reward": sum(flat) / len(flat)}


# -- one conversation, prequentially ---------------------------------------------------------
def prequential_conversation(cases: Sequence[RMMCase], reranker: Any,
                             optimizer: torch.optim.Optimizer, *, batch_size: int,
                             baseline: float | str, generator: torch.Generator
                             ) -> dict[str, list[dict[str, Any]]]:
    """Answer `cases` in order, one REINFORCE step after each `batch_size` of them.

    Each question is scored before the update it causes. Returns {"online": rows of what was
    shown (the sample), "greedy_view": rows of the same state's greedy top-M}, rows as
    `rmm.rank_cases` writes them plus the pick rewards. A last incomplete batch is not trained.
    """
    if batch_size < 1:
        raise ConfigError(f"online batch_size={batch_size} must be >= 1")
    reranker.eval()
    shown, greedy = [], []
    pending: list[tuple[Any, list[float]]] = []
    for case in cases:
        sample = reranker.sample(case.query, case.candidates, generator=generator,
                                 candidate_ids=case.candidate_ids)
        best = reranker.sample(case.query, case.candidates, greedy=True,
                               candidate_ids=case.candidate_ids)
        rewards = citation_rewards(sample.chosen_ids, evidence_citer(case, sample.chosen_ids))
        shown.append({**rank_cases([case], lambda _c, s=sample: s.chosen_ids)[0],
                      "rewards": rewards})
        greedy.append(rank_cases([case], lambda _c, b=best: b.chosen_ids)[0])
        pending.append((sample, rewards))
        if len(pending) == batch_size:
            reinforce_step(reranker, optimizer, [s for s, _ in pending],
                           [r for _, r in pending], baseline=baseline)
            pending = []      # every sample is used once, by the weights that drew it
    return {"online": shown, "greedy_view": greedy}


def pretrain(cases: Sequence[RMMCase], reranker: Any, *, epochs: int, learning_rate: float,
             optimizer: str, batch_size: int, baseline: float | str, seed: int
             ) -> list[dict[str, float]]:
    """The offline protocol's training: `epochs` shuffled passes of the online update.

    Returns one row per epoch (mean pick reward, recall@5 of what was shown).
    """
    opt = make_optimizer(optimizer, reranker.parameters(), learning_rate)
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    order, curve = list(cases), []
    for epoch in range(epochs):
        rng.shuffle(order)
        rows = prequential_conversation(order, reranker, opt, batch_size=batch_size,
                                        baseline=baseline, generator=generator)["online"]
        curve.append({"epoch": epoch + 1,
                      "reward": float(np.mean([x for r in rows for x in r["rewards"]])),
                      "recall@5": float(np.mean([r["recall@5"] for r in rows]))})
    return curve


# -- the table -------------------------------------------------------------------------------
VARIANTS: dict[str, str] = {
    "offline": "Offline (pretrained on conv-26 + conv-30, frozen)",
    "online": "Online (from W = 0; default)",
    "online_pretrained": "Online (from the offline state)",
    "online_greedy_view": "Online, greedy view (from W = 0)",
    "online_pretrained_greedy_view": "Online, greedy view (from the offline state)",
}
"""The trained rows, each compared with base and oracle on the same questions."""
TABLE_ROWS = ("offline", "online", "online_pretrained")


def score_variants(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per metric and split: base and oracle scores, and per variant its score, paired gain,
    relative gain and gap closed (`rmm.score_rankings` for each variant against base/oracle)."""
    per = {v: score_rankings({"base": rows["base"], "trained": rows[v], "oracle": rows["oracle"]})
           for v in VARIANTS if v in rows}
    first = next(iter(per.values()))
    table: dict[str, Any] = {}
    for metric, body in first.items():
        splits = {}
        for split, cell in body["splits"].items():
            splits[split] = {"base": cell["base"], "oracle": cell["oracle"]}
            for v, t in per.items():
                c = t[metric]["splits"][split]
                splits[split][v] = {**c["trained"], "paired_gain": c["paired_gain"],
                                    "relative_gain": c["relative_gain"],
                                    "gap_closed": c["gap_closed"]}
        table[metric] = {"splits": splits}
    return table


def goal_check(metrics: dict[str, Any], variant: str) -> dict[str, Any]:
    """The issue's goal for one variant: >= +15% relative recall@5, >= half the base-to-oracle
    gap, and no category whose mean recall@5 falls below base."""
    splits = metrics["recall@5"]["splits"]
    overall = splits["overall"][variant]
    worst = min((splits[s][variant]["paired_gain"]["mean"] for s in splits if s != "overall"),
                default=0.0)
    return {"relative_gain": overall["relative_gain"], "gap_closed": overall["gap_closed"],
            "relative_gain_at_least_15%": (overall["relative_gain"] or 0) >= 0.15,
            "half_gap_closed": (overall["gap_closed"] or 0) >= 0.5,
            "worst_category_paired_gain": worst, "no_category_regresses": worst >= 0}


def learning_curve(rows: dict[str, list[dict[str, Any]]], positions: Sequence[int],
                   width: int = 25) -> list[dict[str, Any]]:
    """Mean recall@5 by a question's position in its conversation, in bins of `width`."""
    curve = []
    for start in range(0, max(positions) + 1, width):
        idx = [i for i, p in enumerate(positions) if start <= p < start + width]
        curve.append({"questions": f"{start + 1}-{start + width}", "n": len(idx),
                      **{name: float(np.mean([rs[i]["recall@5"] for i in idx]))
                         for name, rs in rows.items()}})
    return curve


def _markdown(table: dict[str, Any]) -> str:
    from memgym.quickstart.rmm import METRICS, SPLIT_TITLES

    def cell(score: dict[str, Any]) -> str:
        return f"{100 * score['mean']:.1f} ± {100 * score['ci95_halfwidth']:.1f}"

    def gain(c: dict[str, Any]) -> str:
        g, ci = c["paired_gain"], c["paired_gain"]["ci95"]
        text = f"{100 * g['mean']:+.1f}" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
                                             if ci else "")
        rel = "n/a" if c["relative_gain"] is None else f"{100 * c['relative_gain']:+.1f}%"
        gap = "n/a" if c["gap_closed"] is None else f"{100 * c['gap_closed']:.1f}%"
        return f"{text}; {rel}; {gap}"

    parts = []
    for metric, title in METRICS.items():
        splits = table["metrics"][metric]["splits"]
        names = list(splits)
        head = ["Ranking"] + [f"{SPLIT_TITLES[s]} (n={splits[s]['base']['n']})" for s in names]
        lines = [f"**{title}** (%, ± 95% half-width)", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]
        labelled = [("base", "Base (encoder top-5, W = 0)"),
                    *((v, VARIANTS[v]) for v in TABLE_ROWS),
                    ("oracle", "Oracle (evidence in top-20 first)")]
        for name, label in labelled:
            lines.append(f"| {label} | " + " | ".join(cell(splits[s][name]) for s in names)
                         + " |")
        for v in TABLE_ROWS:
            lines.append(f"| {v}: paired gain [95% CI]; relative; gap closed | "
                         + " | ".join(gain(splits[s][v]) for s in names) + " |")
        parts.append("\n".join(lines))
    views = table["metrics"]["recall@5"]["splits"]["overall"]
    return ("\n\n".join(parts) + "\n\nPrequential: each question is scored before the update it "
            "causes; the online rows score the Gumbel top-5 that was shown. Greedy view of the "
            f"same states: {100 * views['online_greedy_view']['mean']:.1f} (from W = 0), "
            f"{100 * views['online_pretrained_greedy_view']['mean']:.1f} (from the offline "
            "state). Memories: the turns; citations: the evidence-based citer; answers: the "
            "cited turns' text (quickstart.json `departures`).\n")


def _plot(out: Path, table: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memgym.quickstart.rmm import SPLIT_TITLES

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    curve = table["curve"]
    xs = range(len(curve))
    colors = {"base": "tab:gray", "offline": "tab:orange", "online": "tab:blue",
              "online_pretrained": "tab:purple", "oracle": "tab:green"}
    for name, color in colors.items():
        ax1.plot(xs, [c[name] for c in curve], marker="o", color=color, label=name)
    ax1.set_xticks(list(xs), [c["questions"] for c in curve], rotation=45)
    ax1.set(xlabel="question position in its conversation", ylabel="recall@5 (prequential)",
            title="Online learning curve, test conversations")
    ax1.legend()
    ax1.grid(alpha=0.3)
    splits = table["metrics"]["recall@5"]["splits"]
    names = list(splits)
    bars = ("base", *TABLE_ROWS, "oracle")
    for k, name in enumerate(bars):
        ax2.bar([x + 0.16 * (k - 2) for x in range(len(names))],
                [splits[s][name]["mean"] for s in names], 0.16, label=name, color=colors[name],
                yerr=[splits[s][name]["ci95_halfwidth"] for s in names], capsize=2)
    ax2.set_xticks(list(range(len(names))), [SPLIT_TITLES[s] for s in names])
    ax2.set(ylabel="recall@5 of evidence turns", ylim=(0, 1.05),
            title="LoCoMo test conversations (95% CI)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "quickstart.png", dpi=120)
    plt.close(fig)


# -- the run ---------------------------------------------------------------------------------
OUTPUTS = ("base", "oracle", *VARIANTS, "pretrained", "quickstart.json", "table.md",
           "quickstart.png")


def cached_encoder(name: str | Any) -> Any:
    """The encoder a quickstart embeds with: a named or folder encoder behind the on-disk
    embedding cache (`memgym.memory.embedding_cache`); "hash" and encoder objects as they are."""
    if not isinstance(name, str):
        return name
    from memgym.agents.rmm import load_encoder

    encoder = load_encoder(name)
    if name == "hash" or name.startswith("hash:"):
        return encoder
    from memgym.memory.embedding_cache import CachedEncoder

    return CachedEncoder(encoder)


def _load(path: Path, encoder: Any, test_conversations: int | None, log: Callable[[str], None]
          ) -> tuple[list[RMMCase], list[list[RMMCase]], list[str], int]:
    """(train + validation cases, test cases per conversation, test ids, questions left out)."""
    from memgym.data.locomo import load_locomo

    pre = load_locomo(path, split="train") + load_locomo(path, split="validation")
    test = load_locomo(path, split="test")[:test_conversations]
    if not pre or not test:
        raise ConfigError(f"--data-path {path}: needs conv-26 or conv-30 (Memory-R1's train and "
                          "validation conversations) and at least one test conversation")
    pre_cases, skipped = build_cases(pre, encoder, top_k=SETTINGS["top_k"])
    per_conv = []
    for conv in test:
        cases, n = build_cases([conv], encoder, top_k=SETTINGS["top_k"])
        per_conv.append(cases)
        skipped += n
        log(f"  {conv.conversation_id}: {len(cases)} questions")
    return pre_cases, per_conv, [c.conversation_id for c in test], skipped


def _online_rows(per_conv: Sequence[Sequence[RMMCase]], start: dict[str, Any], dim: int,
                 cfg: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Run every test conversation from `start` (a state dict), each with a fresh reranker."""
    from memgym.agents.reranker import MemoryReranker

    out: dict[str, list[dict[str, Any]]] = {"online": [], "greedy_view": []}
    for index, cases in enumerate(per_conv):
        reranker = MemoryReranker(dim, top_m=SETTINGS["top_m"], tau=cfg["tau"],
                                  estimator=cfg["estimator"])
        reranker.load_state_dict(start)
        opt = make_optimizer(cfg["optimizer"], reranker.parameters(), cfg["learning_rate"])
        gen = torch.Generator().manual_seed(cfg["seed"] * 1000 + index)
        rows = prequential_conversation(cases, reranker, opt, batch_size=cfg["batch_size"],
                                        baseline=cfg["baseline"], generator=gen)
        for key, kept in out.items():
            kept.extend(rows[key])
    return out


def run_online_quickstart(data_path: str | Path, out_dir: str | Path = "runs/quickstart-rmm",
                          *, encoder: str | Any = SETTINGS["encoder"],
                          settings: dict[str, Any] | None = None,
                          test_conversations: int | None = None, overwrite: bool = False,
                          threads: int | str | None = "auto",
                          log: Callable[[str], None] = print) -> Any:
    """RMM's online protocol on LoCoMo's test conversations, beside base, offline and oracle.

    Args:
        data_path: LoCoMo's locomo10.json.
        out_dir: the run folder (created).
        encoder: the encoder's name or folder ("hash": the offline HashingEncoder, for tests),
            or an object with `encode(texts)`; named encoders go through the embedding cache.
        settings: overrides of `ONLINE_SETTINGS` (unknown keys are an error).
        test_conversations: run only the first this many test conversations.
        overwrite: replace the results of an earlier run in `out_dir`.
        threads: torch CPU threads for the encoder (`memgym.llm.set_torch_threads`); the
            reranker's tiny products then run on one.
        log: where progress lines go.

    Returns:
        `rmm.RMMQuickstartResult` (the folder, the table, the seconds of each stage).
    """
    from memgym.agents.reranker import MemoryReranker
    from memgym.llm import set_torch_threads
    from memgym.quickstart.rmm import RANKINGS, RMMQuickstartResult, locomo_file

    path = locomo_file(data_path)
    unknown = sorted(set(settings or {}) - set(ONLINE_SETTINGS))
    if unknown:
        raise ConfigError(f"online settings {unknown}: unknown; valid: {sorted(ONLINE_SETTINGS)}")
    cfg = {**ONLINE_SETTINGS, **(settings or {})}
    out = fresh_out_dir(out_dir, OUTPUTS, overwrite)
    set_torch_threads(threads, setting="threads")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 1)
        clock = time.perf_counter()

    encoder_name = encoder if isinstance(encoder, str) else getattr(encoder, "name", "custom")
    log(f"[1/5] embedding LoCoMo with {encoder_name} (cached on disk after the first run) ...")
    pre_cases, per_conv, test_ids, skipped = _load(path, cached_encoder(encoder),
                                                   test_conversations, log)
    test_cases = [c for cs in per_conv for c in cs]
    lap("embed")
    torch.set_num_threads(1)  # [20, 384] products: more threads only add synchronisation

    dim, m = int(pre_cases[0].query.shape[0]), SETTINGS["top_m"]
    reranker = MemoryReranker(dim, top_m=m, tau=cfg["tau"], estimator=cfg["estimator"])
    zero = {k: v.clone() for k, v in reranker.state_dict().items()}
    log(f"[2/5] base and oracle on {len(test_cases)} test questions ...")
    rows = {"base": rank_cases(test_cases, lambda c: c.candidate_ids[:m]),
            "oracle": rank_cases(test_cases, lambda c: oracle_top(c, m))}
    lap("base_eval")

    log(f"[3/5] offline: {cfg['pretrain_epochs']} passes over {len(pre_cases)} train and "
        f"validation questions (lr {cfg['pretrain_learning_rate']:g}), then frozen ...")
    torch.manual_seed(cfg["seed"])
    pretrain_curve = pretrain(pre_cases, reranker, epochs=cfg["pretrain_epochs"],
                              learning_rate=cfg["pretrain_learning_rate"],
                              optimizer=cfg["optimizer"], batch_size=cfg["batch_size"],
                              baseline=cfg["baseline"], seed=cfg["seed"])
    reranker.save_pretrained(out / "pretrained" / "reranker")
    pretrained = {k: v.clone() for k, v in reranker.state_dict().items()}
    rows["offline"] = rank_cases(test_cases, lambda c: reranker.sample(
        c.query, c.candidates, greedy=True, candidate_ids=c.candidate_ids).chosen_ids)
    lap("offline")

    log(f"[4/5] online, prequential, per test conversation (lr {cfg['learning_rate']:g}, "
        f"tau {cfg['tau']:g}) ...")
    for name, start in (("online", zero), ("online_pretrained", pretrained)):
        online = _online_rows(per_conv, start, dim, cfg)
        rows[name], rows[f"{name}_greedy_view"] = online["online"], online["greedy_view"]
    lap("online")

    log("[5/5] writing the table ...")
    for name, rs in rows.items():
        _write_jsonl(out / name / "predictions.jsonl", rs)
    metrics = score_variants(rows)
    positions = [i for cs in per_conv for i in range(len(cs))]
    table: dict[str, Any] = {
        "protocol": "online", "metrics": metrics,
        "goal": {v: goal_check(metrics, v) for v in TABLE_ROWS},
        "curve": learning_curve({n: rows[n] for n in ("base", *TABLE_ROWS, "oracle")},
                                positions),
        "pretrain_curve": pretrain_curve,
        "eval_questions": len(test_cases), "eval_conversations": test_ids,
        "pretrain_questions": len(pre_cases), "questions_without_evidence_left_out": skipped,
        "settings": {**SETTINGS, **cfg, "encoder": encoder_name},
        "validation": VALIDATION,
        "departures": DEPARTURES, "seconds": seconds,
        "files": {n: str(out / n / "predictions.jsonl") for n in rows}}
    table["splits"] = {s: {**c, "trained": c["online"]}
                       for s, c in metrics["recall@5"]["splits"].items()}
    table["average"] = {**{n: table["splits"]["overall"][n]["mean"] for n in RANKINGS},
                        "splits": ["overall"], **{k: table["goal"]["online"][k] for k in
                                                  ("relative_gain", "gap_closed")}}
    (out / "quickstart.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "table.md").write_text(_markdown(table))
    _plot(out, table)
    lap("write")
    return RMMQuickstartResult(out, table, seconds)


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# -- command line ----------------------------------------------------------------------------
PROTOCOLS = ("online", "offline")


def add_protocol_arguments(parser: Any) -> None:
    """`--protocol` and the online protocol's own flag (`--tau`)."""
    parser.add_argument("--protocol", choices=PROTOCOLS, default="online",
                        help="online: RMM's retrospective reflection, learning per test "
                             "conversation, prequentially (default); offline: train on conv-26 "
                             "and freeze, with RMM's paper settings")
    parser.add_argument("--tau", type=float, default=None,
                        help=f"online: sampling temperature (default {ONLINE_SETTINGS['tau']:g})")


def run(args: Any) -> int:
    """`memgym quickstart rmm --protocol online`: run it and print the table."""
    from rich.console import Console
    from rich.markdown import Markdown

    overrides = {k: v for k, v in (("tau", args.tau), ("learning_rate", args.lr),
                                   ("pretrain_epochs", args.epochs), ("seed", args.seed))
                 if v is not None}
    result = run_online_quickstart(args.data_path, args.out, encoder=args.encoder,
                                   settings=overrides,
                                   test_conversations=args.test_conversations,
                                   overwrite=args.overwrite, threads=args.threads)
    console = Console()
    console.print(Markdown((result.out_dir / "table.md").read_text()))
    console.print(f"files: {result.out_dir.resolve()} (quickstart.json, table.md, quickstart.png)")
    return 0
