"""`memgym quickstart rmm`: RMM's reranker on real LoCoMo, before and after REINFORCE from citations.

What it measures (Tan et al. 2025, "In Prospect and Retrospect", section 4, retrospective
reflection): for every LoCoMo question (categories 1-4) the real encoder (all-MiniLM-L6-v2)
retrieves the top-K = 20 memories, `memgym.agents.reranker.MemoryReranker`
(`q' = q + W_q q`, `m' = m + W_m m`, `s = q'.m'`) keeps the top-M = 5, and we score
recall@5 (the fraction of the question's evidence turns among the 5) and the answer's F1
(LoCoMo's per-category scorer, `memgym.rewards.locomo.locomo_scores`). Three rankings:

- **base**: the untrained reranker (W = 0), i.e. the encoder's own top-5;
- **trained**: after REINFORCE on Memory-R1's train conversation (conv-26) only, with the
  paper's settings: Gumbel top-M sampling at tau = 0.5, +1 for each cited pick and -1 for each
  uncited one, baseline 0.5, batch 4, lr 1e-3 (the default here is 3e-5: see `SETTINGS`);
  the loss is `memgym.trainer.module_policy`'s `module_loss` (the trainer's `fixed_baseline_advantages`, `broadcast_credit` and
  `grpo_loss`), the rewards its `citation_rewards`;
- **oracle**: the evidence turns found in the top-20 first, then the encoder's order
  (the best any reranker of these 20 candidates can do).
Evaluation is on Memory-R1's test conversations (all but conv-26 and conv-30), ranking
greedily (the M best scores, no Gumbel noise) so base, trained and oracle are deterministic.

Departures from RMM, forced by a CPU budget of minutes (all recorded in quickstart.json):

- **Memories are the conversation's turns** ("<speaker>: <utterance>", with a shared image's
  caption), not RMM's LLM topic summaries from prospective reflection: no LLM fast enough to
  summarise ten LoCoMo conversations runs on 2 CPU cores in this budget. Evidence is then
  exactly LoCoMo's evidence dia_ids.
- **Citations come from an evidence-based citer**, not an LLM: of the 5 memories shown, it
  cites those that are evidence turns of the question (`[NO_CITE]` when none is). That is the
  reward an ideal citing LLM would give; SmolLM2-135M-Instruct is too slow for it on CPU.
- **The answerer is extractive**: the answer is the utterance text of the cited memories
  (LoCoMo's "Not mentioned in the conversation" when nothing is cited). Its F1 is low in
  absolute terms (an utterance is longer than a LoCoMo answer) but moves with retrieval.
- The episode loop of `ModulePolicyTrainer` (an env plus an agent playing RMM's write steps)
  is not used: with turns as memories there is no write step, so the quickstart embeds each
  conversation once and feeds the questions to the same loss directly; its `train/` folder
  has metrics.jsonl (through `MetricsLogger`) and the reranker (`save_pretrained`), loadable
  by `agents/rmm.yaml` as `reranker_path`.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memgym.errors import ConfigError
from memgym.progress import PhaseClock, print_markdown
from memgym.quickstart.report import QuickstartResult, fresh_out_dir, paired_gain

__all__ = [
    "SETTINGS",
    "RMMCase",
    "RMMQuickstartResult",
    "add_arguments",
    "build_cases",
    "evidence_citer",
    "extractive_answer",
    "locomo_file",
    "oracle_top",
    "rank_cases",
    "run",
    "run_rmm_quickstart",
    "score_rankings",
]

SETTINGS: dict[str, Any] = {
    "encoder": "all-minilm-l6-v2",
    "top_k": 20,          # RMM: K = 20 retrieved
    "top_m": 5,           # RMM: M = 5 kept
    "tau": 0.5,           # RMM: Gumbel softmax temperature
    "baseline": 0.5,      # RMM: REINFORCE baseline
    "batch_size": 4,      # RMM: batch size
    "learning_rate": 3e-5,  # RMM: 1e-3 (paper_learning_rate); see below
    "paper_learning_rate": 1e-3,
    "epochs": 20,
    "estimator": "plackett_luce",
    "seed": 0,
}
"""The quickstart's settings: RMM's where the paper gives them (commented), except the learning
rate. At RMM's lr 1e-3 (AdamW) the first epoch over conv-26's 150 questions already scrambles the
zero-initialised W_q, W_m (recall@5 on conv-26 itself falls from 0.36 to 0.19; on the test
conversations 35.4 -> 27.3 after 8 epochs), so the default is 3e-5, chosen on the validation
conversation conv-30 (recall@5 0.35 -> 0.37, monotone over 24 epochs; 1e-4 was noisier, 3e-4
fell). `--lr 1e-3` runs the paper's value."""

NO_ANSWER = "Not mentioned in the conversation"
CATEGORIES = ("single-hop", "multi-hop", "temporal", "open-domain")
SPLIT_TITLES = {"overall": "All", "single-hop": "Single-hop", "multi-hop": "Multi-hop",
                "temporal": "Temporal", "open-domain": "Open-domain"}
METRICS = {"recall@5": "recall@5 of the evidence turns", "f1": "answer F1"}
RANKINGS = ("base", "trained", "oracle")


@dataclass
class RMMCase:
    """One question with its retrieved top-K candidates, embedded once.

    Attributes:
        question_id, category, answers, evidence: from LoCoMo (evidence: dia_ids).
        query: [D] the question's embedding.
        candidates: [K, D] the top-K memories' embeddings, in the encoder's order.
        candidate_ids: their dia_ids.
        texts: dia_id -> utterance text (for the extractive answerer).
    """

    question_id: str
    category: str
    answers: tuple[str, ...]
    evidence: frozenset[str]
    query: Any
    candidates: Any
    candidate_ids: tuple[str, ...]
    texts: dict[str, str]


RMMQuickstartResult = QuickstartResult
"""Where the quickstart wrote its files and the table it computed (every quickstart's result)."""


# -- data ------------------------------------------------------------------------------------
def _memory_text(turn: Any) -> str:
    from memgym.data.dialogue import render_turn_text

    return render_turn_text(turn, with_speaker=True)


def build_cases(conversations: Sequence[Any], encoder: Any, *, top_k: int) -> tuple[
        list[RMMCase], int]:
    """Embed each conversation's turns and questions; keep each question's top-K turns.

    Questions without a resolved evidence turn are left out (recall is undefined for them).

    Returns:
        (the cases, how many questions were left out).
    """
    import torch

    cases, skipped = [], 0
    for conv in conversations:
        turns = list(conv.turns())
        questions = [q for q in conv.questions if q.evidence]
        skipped += len(conv.questions) - len(questions)
        if not turns or not questions:
            continue
        mem = np.asarray(encoder.encode([_memory_text(t) for t in turns]), dtype=np.float32)
        qs = np.asarray(encoder.encode([q.question for q in questions]), dtype=np.float32)
        ids = [t.dia_id for t in turns]
        texts = {t.dia_id: t.text for t in turns}
        k = min(top_k, len(turns))
        for q, q_emb in zip(questions, qs):
            top = np.argsort(-(mem @ q_emb), kind="stable")[:k]
            cases.append(RMMCase(q.question_id, q.category, tuple(q.answers),
                                 frozenset(q.evidence), torch.from_numpy(q_emb.copy()),
                                 torch.from_numpy(mem[top].copy()),
                                 tuple(ids[i] for i in top), texts))
    return cases, skipped


# -- the citer, the answerer, the oracle -----------------------------------------------------
def evidence_citer(case: RMMCase, shown_ids: Sequence[str]) -> tuple[str, ...]:
    """The labelled stand-in for RMM's citing LLM: cite the shown memories that are evidence."""
    return tuple(i for i in shown_ids if i in case.evidence)


def extractive_answer(case: RMMCase, cited_ids: Sequence[str]) -> str:
    """The CPU answerer: the cited memories' utterances joined, or LoCoMo's no-answer."""
    return " ".join(case.texts[i] for i in cited_ids) if cited_ids else NO_ANSWER


def oracle_top(case: RMMCase, m: int) -> tuple[str, ...]:
    """The best top-M of the K candidates: the evidence ones first, then the encoder's order."""
    ev = [i for i in case.candidate_ids if i in case.evidence]
    rest = [i for i in case.candidate_ids if i not in case.evidence]
    return tuple((ev + rest)[:m])


@functools.lru_cache(maxsize=65536)
def _f1(answer: str, answers: tuple[str, ...], category: str) -> float:
    """LoCoMo's F1 (memoised: base, trained and oracle often give one question the same answer,
    and the Porter stemming dominates the evaluation's time)."""
    from memgym.rewards.locomo import locomo_scores

    return locomo_scores(answer, answers, category)["f1"]


def rank_cases(cases: Sequence[RMMCase], choose: Callable[[RMMCase], Sequence[str]]
               ) -> list[dict[str, Any]]:
    """Per question: the top-M `choose` picks, its recall@M, the citations, answer and F1."""
    rows = []
    for case in cases:
        top = tuple(choose(case))
        cited = evidence_citer(case, top)
        answer = extractive_answer(case, cited)
        rows.append({"question_id": case.question_id, "category": case.category,
                     "top": list(top), "evidence": sorted(case.evidence), "cited": list(cited),
                     "recall@5": len(case.evidence & set(top)) / len(case.evidence),
                     "answer": answer,
                     "f1": _f1(answer, case.answers, case.category)})
    return rows


def _reranker_top(reranker: Any) -> Callable[[RMMCase], tuple[str, ...]]:
    def choose(case: RMMCase) -> tuple[str, ...]:
        sample = reranker.sample(case.query, case.candidates, greedy=True,
                                 candidate_ids=case.candidate_ids)
        return sample.chosen_ids
    return choose


# -- training --------------------------------------------------------------------------------
def train_reranker(reranker: Any, cases: Sequence[RMMCase], out: Path, *, epochs: int,
                   batch_size: int, learning_rate: float, baseline: float, seed: int,
                   log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """REINFORCE from the evidence citer's citations, through module_policy's loss.

    Each step samples a Gumbel top-M for `batch_size` questions, rewards each pick with
    `citation_rewards` (+1 cited, -1 not) and steps AdamW on `module_loss` (baseline
    `baseline`). Writes metrics.jsonl and the reranker (`save_pretrained`) under `out`.
    """
    import torch

    from memgym.trainer.logging import MetricsLogger
    from memgym.trainer.module_policy import citation_rewards, module_loss

    out.mkdir(parents=True, exist_ok=True)
    config = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
              "baseline": baseline, "seed": seed, "train_questions": len(cases)}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    steps_per_epoch = -(-len(cases) // batch_size)
    logger = MetricsLogger(out, config=config, max_steps=epochs * steps_per_epoch,
                           logging_steps=max(1, steps_per_epoch))
    optimizer = torch.optim.AdamW(reranker.parameters(), lr=learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    order = list(range(len(cases)))
    rng = random.Random(seed)
    step = 0
    try:
        for _epoch in range(epochs):
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                batch = [cases[i] for i in order[start:start + batch_size]]
                reranker.eval()
                samples = [reranker.sample(c.query, c.candidates, generator=generator,
                                           candidate_ids=c.candidate_ids) for c in batch]
                rewards = [citation_rewards(s.chosen_ids, evidence_citer(c, s.chosen_ids))
                           for c, s in zip(batch, samples)]
                reranker.train()
                optimizer.zero_grad(set_to_none=True)
                loss, stats = module_loss(reranker, samples, rewards, baseline=baseline)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(reranker.parameters(), float("inf"))
                optimizer.step()
                step += 1
                picks = [r for rs in rewards for r in rs]
                logger.log({"step": step, "loss": float(loss.detach()),
                            "grad_norm": float(grad_norm), "learning_rate": learning_rate,
                            "reward": stats["reward"], "rewards/citation/mean": stats["reward"],
                            "frac_picks_cited": sum(r > 0 for r in picks) / len(picks)})
    finally:
        logger.close()
    reranker.eval()
    reranker.save_pretrained(out / "reranker")
    return logger.rows


# -- the table -------------------------------------------------------------------------------
def _score(rows: Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    from memgym.eval.metrics import mean_ci

    stats = mean_ci([r[metric] for r in rows])
    low, high = stats["ci95"] or (stats["mean"], stats["mean"])
    return {"mean": stats["mean"], "ci95": [low, high], "ci95_halfwidth": (high - low) / 2,
            "n": stats["n"], "ci_method": stats["ci_method"]}


def _paired_gain(base: Sequence[dict[str, Any]], trained: Sequence[dict[str, Any]],
                 metric: str) -> dict[str, Any]:
    """Mean per-question difference trained - base with its bootstrap 95% interval."""
    gain = paired_gain([b[metric] for b in base], [t[metric] for t in trained])
    return {"mean": gain["mean"], "ci95": gain["ci95"]}


def score_rankings(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per metric, per split ("overall" and each LoCoMo category present): base, trained and
    oracle scores with 95% intervals, the paired gain, relative gain and gap closed.

    relative_gain = (trained - base) / base; gap_closed = (trained - base) / (oracle - base);
    None when the denominator is not positive.
    """
    def ratio(num: float, den: float) -> float | None:
        return num / den if den > 0 else None

    present = [c for c in CATEGORIES if any(r["category"] == c for r in rows["base"])]
    table: dict[str, Any] = {}
    for metric in METRICS:
        splits = {}
        for split in ("overall", *present):
            sel = {name: [r for r in rs if split == "overall" or r["category"] == split]
                   for name, rs in rows.items()}
            scores = {name: _score(sel[name], metric) for name in RANKINGS}
            b, t, o = (scores[n]["mean"] for n in RANKINGS)
            splits[split] = {**scores, "paired_gain": _paired_gain(sel["base"], sel["trained"],
                                                                   metric),
                             "relative_gain": ratio(t - b, b), "gap_closed": ratio(t - b, o - b)}
        table[metric] = {"splits": splits, "average": {
            **{n: splits["overall"][n]["mean"] for n in RANKINGS},
            "splits": ["overall"], "relative_gain": splits["overall"]["relative_gain"],
            "gap_closed": splits["overall"]["gap_closed"]}}
    return table


def _markdown(table: dict[str, Any], lr: float) -> str:
    def cell(score: dict[str, Any]) -> str:
        return f"{100 * score['mean']:.1f} ± {100 * score['ci95_halfwidth']:.1f}"

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:+.1f}%"

    parts = []
    for metric, title in METRICS.items():
        splits = table["metrics"][metric]["splits"]
        names = list(splits)
        head = ["Ranking"] + [f"{SPLIT_TITLES[s]} (n={splits[s]['base']['n']})" for s in names]
        lines = [f"**{title}** (%, ± 95% half-width)", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, label in (("base", "Base (encoder top-5, reranker W = 0)"),
                            ("trained", f"+ REINFORCE (memgym, lr {lr:g})"),
                            ("oracle", "Oracle (evidence in top-20 first)")):
            lines.append(f"| {label} | " + " | ".join(cell(splits[s][name]) for s in names)
                         + " |")
        gains = []
        for s in names:
            g = splits[s]["paired_gain"]
            ci = g["ci95"]
            gains.append(f"{100 * g['mean']:+.1f}" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
                                                      if ci else ""))
        lines.append("| Paired gain [95% CI] | " + " | ".join(gains) + " |")
        lines.append("| Relative gain | " + " | ".join(pct(splits[s]["relative_gain"])
                                                       for s in names) + " |")
        lines.append("| Base-to-oracle gap closed | " + " | ".join(
            pct(splits[s]["gap_closed"]).lstrip("+") for s in names) + " |")
        parts.append("\n".join(lines))
    return ("\n\n".join(parts) + "\n\nTest conversations of Memory-R1's LoCoMo split, trained "
            "on conv-26 only. Memories: the turns themselves (not RMM's LLM summaries); "
            "citations: the evidence-based citer; answers: the cited turns' text (see "
            "quickstart.json `departures`).\n")


def _plot(out: Path, train_rows: Sequence[dict[str, Any]], table: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    rows = [r for r in train_rows if "reward" in r]
    window = max(1, len(rows) // 20)
    rewards = np.convolve([r["reward"] for r in rows], np.ones(window) / window, mode="valid")
    ax1.plot(range(window, window + len(rewards)), rewards, color="tab:blue")
    ax1.set(xlabel="REINFORCE step (batch 4, conv-26)",
            ylabel=f"mean pick reward (+1 cited, -1 not; mean over {window})",
            title="Learning curve")
    ax1.grid(alpha=0.3)
    splits = table["metrics"]["recall@5"]["splits"]
    names = list(splits)
    xs = range(len(names))
    for k, (name, color) in enumerate((("base", "tab:gray"), ("trained", "tab:blue"),
                                       ("oracle", "tab:green"))):
        ax2.bar([x + 0.27 * (k - 1) for x in xs], [splits[s][name]["mean"] for s in names],
                0.27, yerr=[splits[s][name]["ci95_halfwidth"] for s in names], label=name,
                color=color, capsize=3)
    ax2.set_xticks(list(xs), [SPLIT_TITLES[s] for s in names])
    ax2.set(ylabel="recall@5 of evidence turns", ylim=(0, 1.05),
            title="LoCoMo test conversations (95% CI)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "quickstart.png", dpi=120)
    plt.close(fig)


# -- the run ---------------------------------------------------------------------------------
def locomo_file(data_path: str | Path) -> Path:
    """`data_path` as LoCoMo's locomo10.json, which must exist (a ConfigError says how to get it)."""
    path = Path(data_path)
    if not path.is_file():
        raise ConfigError(f"--data-path {path}: no such file; `memgym quickstart rmm` needs "
                          "LoCoMo's locomo10.json (CC BY-NC 4.0, not shipped): `memgym data get "
                          "locomo` fetches it, and the quickstart then finds it without "
                          "--data-path")
    return path


def _write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def run_rmm_quickstart(data_path: str | Path, out_dir: str | Path = "runs/quickstart-rmm", *,
                       epochs: int | None = None, learning_rate: float | None = None,
                       encoder: str | Any = SETTINGS["encoder"], seed: int = SETTINGS["seed"],
                       test_conversations: int | None = None, overwrite: bool = False,
                       threads: int | str | None = "auto",
                       log: Callable[[str], None] = print) -> RMMQuickstartResult:
    """Evaluate the untrained reranker, train it on conv-26, re-evaluate; write the table.

    Args:
        data_path: LoCoMo's locomo10.json.
        out_dir: the run folder (created).
        epochs: passes over conv-26's questions (default `SETTINGS["epochs"]`).
        learning_rate: AdamW's lr (default `SETTINGS["learning_rate"]`; RMM's is 1e-3).
        encoder: the encoder's name or path ("hash": the offline HashingEncoder, for tests),
            or an object with `encode(texts)`.
        seed: the sampling and shuffling seed.
        test_conversations: evaluate on only the first this many test conversations.
        overwrite: replace the results of an earlier run in `out_dir`.
        threads: torch CPU threads (`memgym.llm.set_torch_threads`).
        log: where progress lines go.
    """
    from memgym.agents.reranker import MemoryReranker
    from memgym.llm import set_torch_threads

    path = locomo_file(data_path)
    epochs = SETTINGS["epochs"] if epochs is None else int(epochs)
    lr = SETTINGS["learning_rate"] if learning_rate is None else float(learning_rate)
    if epochs < 1 or not lr > 0:
        raise ConfigError(f"epochs={epochs} must be >= 1 and learning_rate={lr} > 0")
    out = fresh_out_dir(out_dir, ("base", "trained", "oracle", "train", "quickstart.json"),
                        overwrite)
    set_torch_threads(threads, setting="threads")
    seconds: dict[str, float] = {}
    log = PhaseClock([420.0, 30.0, 80.0, 4.0], log,  # one run, README.md (8 min 54 s)
                     reference="in one run on 2 shared cores").annotate

    t0 = time.perf_counter()
    encoder_name = encoder if isinstance(encoder, str) else getattr(encoder, "name", "custom")
    log(f"[1/4] embedding LoCoMo ({path}) with {encoder_name} ...")
    data = _embed(path, encoder, test_conversations)
    seconds["embed"] = time.perf_counter() - t0

    m = SETTINGS["top_m"]
    dim = int(data.train_cases[0].query.shape[0])
    reranker = MemoryReranker(dim, top_m=m, tau=SETTINGS["tau"], estimator=SETTINGS["estimator"])
    t0 = time.perf_counter()
    log(f"[2/4] evaluating the untrained reranker and the oracle on {len(data.test_cases)} test "
        "questions ...")
    rows = {"base": rank_cases(data.test_cases, _reranker_top(reranker)),
            "oracle": rank_cases(data.test_cases, lambda c: oracle_top(c, m))}
    seconds["base_eval"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"[3/4] REINFORCE on conv-26's {len(data.train_cases)} questions ({epochs} epochs, "
        f"lr {lr:g}, batch {SETTINGS['batch_size']}) ...")
    import torch

    torch.manual_seed(seed)
    train_rows = train_reranker(reranker, data.train_cases, out / "train", epochs=epochs,
                                batch_size=SETTINGS["batch_size"], learning_rate=lr,
                                baseline=SETTINGS["baseline"], seed=seed, log=log)
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows["trained"] = rank_cases(data.test_cases, _reranker_top(reranker))
    train_recall = _train_recall(data.train_cases, reranker)
    seconds["trained_eval"] = time.perf_counter() - t0

    log("[4/4] writing the table ...")
    table = _table(rows, data, train_recall, train_rows,
                   {**SETTINGS, "epochs": epochs, "learning_rate": lr, "encoder": encoder_name},
                   seconds, out)
    _write(out, rows, table, train_rows, lr)
    return RMMQuickstartResult(out, table, seconds)


@dataclass
class _Embedded:
    """LoCoMo's train and test conversations and their questions' embedded cases."""

    train_convs: list[Any]
    test_convs: list[Any]
    train_cases: list[RMMCase]
    test_cases: list[RMMCase]
    skipped: dict[str, int]


def _embed(path: Path, encoder: str | Any, test_conversations: int | None) -> _Embedded:
    """Load LoCoMo's train (conv-26) and test conversations and embed their questions' cases."""
    from memgym.data.locomo import load_locomo

    if isinstance(encoder, str):
        from memgym.agents.rmm import load_encoder

        encoder = load_encoder(encoder)
    train_convs = load_locomo(path, split="train")
    test_convs = load_locomo(path, split="test")[:test_conversations]
    if not train_convs or not test_convs:
        raise ConfigError(f"--data-path {path}: needs conv-26 (Memory-R1's train conversation) "
                          "and at least one test conversation (not conv-26 or conv-30)")
    train_cases, train_skipped = build_cases(train_convs, encoder, top_k=SETTINGS["top_k"])
    test_cases, test_skipped = build_cases(test_convs, encoder, top_k=SETTINGS["top_k"])
    return _Embedded(train_convs, test_convs, train_cases, test_cases,
                     {"train": train_skipped, "test": test_skipped})


def _train_recall(cases: Sequence[RMMCase], reranker: Any) -> dict[str, float]:
    """recall@5 on the training questions: retriever order, trained reranker, oracle."""
    m = SETTINGS["top_m"]
    return {name: float(np.mean([r["recall@5"] for r in rank_cases(cases, fn)]))
            for name, fn in (("base", lambda c: c.candidate_ids[:m]),
                             ("trained", _reranker_top(reranker)),
                             ("oracle", lambda c: oracle_top(c, m)))}


DEPARTURES = {
    "memories": "the conversation's turns ('<speaker>: <utterance>' + image caption), "
                "not RMM's LLM topic summaries (no LLM fast enough on CPU)",
    "citations": "evidence-based citer: cites the shown memories that are evidence "
                 "turns of the question (not an LLM)",
    "answers": "extractive: the utterance text of the cited memories, or 'Not "
               "mentioned in the conversation' when none is cited",
    "evaluation": "greedy top-5 (no Gumbel noise) for base and trained",
    "loop": "questions fed to module_policy.module_loss directly (no env episodes: "
            "turns as memories have no write step)"}
"""How this quickstart departs from RMM (recorded in quickstart.json)."""


def _table(rows: dict[str, list[dict[str, Any]]], data: _Embedded,
           train_recall: dict[str, float], train_rows: Sequence[dict[str, Any]],
           settings: dict[str, Any], seconds: dict[str, float], out: Path) -> dict[str, Any]:
    """quickstart.json: the scores with their intervals and every fact of the run."""
    table: dict[str, Any] = {
        "metrics": score_rankings(rows),
        "train_recall@5": train_recall,
        "eval_questions": len(data.test_cases),
        "eval_conversations": [c.conversation_id for c in data.test_convs],
        "questions_without_evidence_left_out": data.skipped,
        "train_conversations": [c.conversation_id for c in data.train_convs],
        "train_questions": len(data.train_cases),
        "reinforce_steps": len([r for r in train_rows if "reward" in r]),
        "settings": settings,
        "departures": DEPARTURES,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "files": {name: str(out / name / "predictions.jsonl") for name in RANKINGS},
    }
    table["splits"] = table["metrics"]["recall@5"]["splits"]
    table["average"] = table["metrics"]["recall@5"]["average"]
    return table


def _write(out: Path, rows: dict[str, list[dict[str, Any]]], table: dict[str, Any],
           train_rows: Sequence[dict[str, Any]], lr: float) -> None:
    for name in RANKINGS:
        _write_jsonl(out / name / "predictions.jsonl", rows[name])
    (out / "quickstart.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "table.md").write_text(_markdown(table, lr))
    _plot(out, train_rows, table)


# -- command line -----------------------------------------------------------------------------
def add_arguments(parser: Any) -> None:
    """`memgym quickstart rmm` arguments."""
    parser.add_argument("--data-path", default=None, metavar="PATH",
                        help="LoCoMo's locomo10.json (CC BY-NC 4.0, not shipped; default: the "
                             "copy `memgym data get locomo` cached)")
    parser.add_argument("--out", default="runs/quickstart-rmm",
                        help="run folder (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"passes over conv-26's questions (default {SETTINGS['epochs']}; "
                             "online: the offline state's passes, default 3)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"learning rate (default {SETTINGS['learning_rate']:g}; RMM's is "
                             f"{SETTINGS['paper_learning_rate']:g}, see rmm.SETTINGS; online: "
                             "the update's, default 0.01)")
    parser.add_argument("--encoder", default=SETTINGS["encoder"],
                        help="sentence encoder name or folder; 'hash' is an offline word-hash "
                             "encoder for smoke tests (default: %(default)s)")
    parser.add_argument("--test-conversations", type=int, default=None, metavar="N",
                        help="evaluate on the first N test conversations only (default: all)")
    parser.add_argument("--seed", type=int, default=SETTINGS["seed"])
    parser.add_argument("--threads", default="auto", metavar="N",
                        help="torch CPU threads: a number, or 'auto' (default)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier run in --out")
    from memgym.quickstart.rmm_online import add_protocol_arguments

    add_protocol_arguments(parser)


def run(args: Any) -> int:
    """Run the RMM quickstart (`--protocol online`: memgym.quickstart.rmm_online) and print the
    table."""
    from rich.console import Console

    from memgym.data.download import data_file
    from memgym.quickstart import rmm_online

    if args.data_path is None:  # the envs' default: the file `memgym data get locomo` cached
        args.data_path = str(data_file("locomo"))
    if getattr(args, "protocol", "online") == "online":
        return rmm_online.run(args)
    if getattr(args, "tau", None) is not None:
        raise ConfigError("--tau applies to --protocol online only (offline uses RMM's 0.5)")
    result = run_rmm_quickstart(args.data_path, args.out, epochs=args.epochs,
                                learning_rate=args.lr, seed=args.seed,
                                encoder=rmm_online.cached_encoder(args.encoder),
                                test_conversations=args.test_conversations,
                                overwrite=args.overwrite, threads=args.threads)
    console = Console()
    print_markdown((result.out_dir / "table.md").read_text(), console)
    console.print(f"files: {result.out_dir.resolve()} (quickstart.json, table.md, quickstart.png)")
    return 0
