"""RULER-HQA: each HotpotQA question over N documents, composed lazily (MemAgent's main task).

Construction (MemAgent, Yu et al. 2025, after RULER's qa task): a question keeps its own 10
paragraphs (2 gold, 8 distractors) and gets random paragraphs from the pool until it has
`num_docs` documents (50 ... 25,600) or, alternatively, `target_tokens` tokens; the documents are
rendered "Document i:\\n<title>\\n<text>" (1-based) and joined by a blank line. Two procedures
(`composition=`):

- "memagent" (the default; MemAgent's `taskutils/memory_data/different_docs_eval.py`): the pool
  is the sorted set of "title\\ntext" documents of the whole file (deduplicated by full text); a
  question's own paragraphs, in file order, come first, then `random.sample` of the pool minus
  them; then ONE fixed permutation, `random.Random(4).shuffle`, is applied at a given N to every
  question, so every question's own paragraphs sit at the same depths (at N=200: 3, 4, 8, 40, 44,
  48, 54, 76, 88, 95%). MemAgent draws the samples from Python's global `random` (seed 42) inside a
  process pool, so which distractors a question got depends on worker scheduling and cannot be
  recomputed from its code; memgym draws them the same way (the same population, `random.sample`)
  from a `random.Random` seeded by (seed, task), see `memagent_draw_seed`. Depths and, at
  N = pool size, the whole context are exactly MemAgent's.
- "per_task_shuffle" (memgym's earlier default): the pool is deduplicated by title; the gold
  paragraphs are always kept, the own distractors next (dropped at random when N < 10), random
  pool paragraphs after, and the documents are shuffled per (seed, task), so gold depth is
  uniform over tasks.

Memory stays bounded at any length: the pool is stored once, a Task's context is a
`DocumentContext` holding only an int32 array of pool indices (100 KB for 25,600 documents,
about 3.5M tokens) and rendering piece i on access, and Tasks are composed on access by
`ComposedTasks`, so nothing long is ever materialised.

`hotpotqa_tasks` (what `gym.make("MemAgent-HotpotQA-v0")` calls) also reads MemAgent's published,
pre-composed files; see `read_memagent`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, overload

import numpy as np

from memgym.data.hotpotqa import (
    BUNDLED_HOTPOTQA,
    HotpotQARecord,
    iter_rows,
    load_hotpotqa,
    parse_hotpotqa_row,
)
from memgym.data.task import PIECE_SEPARATOR, Document, LazyTasks, Task, render_document
from memgym.errors import ConfigError, DataError
from memgym.tokenizers import TokenCounter, load_token_counter

__all__ = [
    "COMPOSITIONS",
    "ComposedTasks",
    "DocumentContext",
    "QuestionPlan",
    "compose_ruler_hqa",
    "hotpotqa_pool",
    "hotpotqa_tasks",
    "memagent_documents",
    "memagent_draw_seed",
    "memagent_ruler_file",
    "memagent_ruler_task",
    "read_memagent",
    "split_documents",
]

logger = logging.getLogger(__name__)

COMPOSITIONS: tuple[str, ...] = ("memagent", "per_task_shuffle")
"""How `ComposedTasks` places documents; see the module docstring."""

MEMAGENT_PERMUTATION_SEED = 4
"""MemAgent's `random.Random(4).shuffle`, applied to every question's document list."""


def check_composition(composition: Any) -> str:
    """Return `composition` if it names a procedure in COMPOSITIONS, else raise ConfigError."""
    if composition not in COMPOSITIONS:
        raise ConfigError(f"composition={composition!r}: expected one of "
                          f"{', '.join(map(repr, COMPOSITIONS))} (\"memagent\": MemAgent's fixed "
                          "document depths; \"per_task_shuffle\": a fresh shuffle per task)")
    return composition


# -- the lazy context -----------------------------------------------------------------------------

class DocumentContext(Sequence[str]):
    """A context of documents stored as indices into a shared pool, rendered one piece at a time.

    Piece i is `render_document(i + 1, docs[order[i]])`; nothing else is stored, so a
    25,600-document context costs its 100 KB index array. Pickles with its pool.

    Args:
        docs: the shared document pool.
        order: pool indices in stream order.
    """

    __slots__ = ("docs", "order")

    def __init__(self, docs: Sequence[Document], order: Sequence[int] | np.ndarray):
        self.docs = docs
        self.order = np.asarray(order, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.order)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self.order)))]
        n = len(self.order)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"piece {i} out of range for a context of {n} documents")
        return render_document(i + 1, self.docs[self.order[i]])

    def __iter__(self) -> Iterator[str]:
        docs = self.docs
        for i, idx in enumerate(self.order.tolist(), 1):
            yield render_document(i, docs[idx])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DocumentContext):
            return NotImplemented
        return np.array_equal(self.order, other.order) and (
            self.docs is other.docs or list(self) == list(other))

    __hash__ = None  # mutable-pool container, like list

    def __repr__(self) -> str:
        return f"DocumentContext({len(self.order)} documents from a pool of {len(self.docs)})"

    def __getstate__(self):
        return self.docs, self.order

    def __setstate__(self, state):
        self.docs, self.order = state


# -- the composer ---------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)  # numpy fields: compare plans by identity
class QuestionPlan:
    """What one composed task needs: its question, its own documents and what not to draw.

    Attributes:
        question: the question text.
        answers: gold answers.
        gold: store indices of the gold documents; always included, rendered into gold_context.
        related: store indices of the question's other own documents (HotpotQA's 8 distractors,
            a SQuAD paragraph's article siblings), used before random pool documents.
        exclude: pool indices never drawn at random for this question (its own documents).
        task_type: the task's breakdown label.
        metadata: facts copied into every Task's metadata (ids, level, source).
        own: for composition="memagent": the question's own documents in source order,
            repeats kept (MemAgent's `curr_docs`; `related` is then its `more_context`);
            None means `gold` alone.
    """

    question: str
    answers: tuple[str, ...]
    gold: np.ndarray
    related: np.ndarray
    exclude: np.ndarray
    task_type: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    own: np.ndarray | None = None


def _own(plan: QuestionPlan) -> np.ndarray:
    """MemAgent's `curr_docs` of a plan: `plan.own`, or the gold documents without it."""
    return plan.gold if plan.own is None else plan.own


def memagent_draw_seed(seed: int, task_id: int) -> int:
    """The seed of the `random.Random` that draws task `task_id`'s distractors ("memagent").

    A stable hash of (seed, task_id), the same in every process and Python version, so that a
    reference implementation seeded with it draws exactly what memgym draws.
    """
    digest = hashlib.sha256(f"memgym-ruler-hqa:{int(seed)}:{int(task_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class ComposedTasks(LazyTasks):
    """Tasks composed on access: own documents plus random pool documents, placed, lazy.

    Task t is composed from `(seed, t)` alone, so it is the same on every access, in every
    process, whatever else was accessed before. Picklable (the pool, the plans and the token
    count caches travel together). `composition` chooses the procedure (module docstring):
    "memagent" puts `plan.own` (then `plan.related`) first, adds `random.sample` of the pool
    minus `plan.exclude` and applies the one permutation `random.Random(4).shuffle` of that
    length; "per_task_shuffle" keeps `plan.gold`, then `plan.related`, then random pool
    documents, and shuffles per task.

    Args:
        docs: the document store; indices `0 .. pool_size - 1` form the random-draw pool, later
            entries are questions' own documents that the pool does not hold verbatim.
        pool_size: how many leading `docs` can be drawn at random.
        plans: one QuestionPlan per task, in task order.
        num_docs: documents per context (None: no count limit).
        target_tokens: compose up to this many tokens instead (None: no token limit). With both,
            composition stops at whichever is reached first; with neither, a context is the
            question's own documents.
        seed: the composition and shuffle seed.
        counter: the TokenCounter measuring `target_tokens`.
        scorer: the scorer name every task carries (None: the env's default).
        unavailable_fix: what to tell a user whose pool is too small.
        composition: "memagent" or "per_task_shuffle" (see COMPOSITIONS).
    """

    def __init__(self, docs: Sequence[Document], pool_size: int, plans: Sequence[QuestionPlan], *,
                 num_docs: int | None = None, target_tokens: int | None = None, seed: int = 42,
                 counter: TokenCounter | None = None, scorer: str | None = None,
                 unavailable_fix: str = "pass pool= a larger list of Documents",
                 composition: str = "per_task_shuffle"):
        check_composition(composition)
        for name, value in (("num_docs", num_docs), ("target_tokens", target_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value <= 0):
                raise ConfigError(f"{name}={value!r}: expected a positive integer or None")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed={seed!r}: expected a non-negative integer")
        if not 0 <= pool_size <= len(docs):
            raise ConfigError(f"pool_size={pool_size} must lie in 0..{len(docs)} (len(docs))")
        self.docs = docs
        self.pool_size = pool_size
        self.plans = list(plans)
        self.num_docs = num_docs
        self.target_tokens = target_tokens
        self.seed = int(seed)
        self.counter = counter if counter is not None else load_token_counter(None)
        self.scorer = scorer
        self.unavailable_fix = unavailable_fix
        self.composition = composition
        self._permutations: dict[int, np.ndarray] = {}  # "memagent": N -> Random(4) permutation
        self._body_tokens = np.full(len(docs), -1, dtype=np.int32)  # filled on first use
        self._header_tokens: dict[int, int] = {}
        self._separator_tokens = self.counter.count(PIECE_SEPARATOR)
        if num_docs is not None:
            self._check_supply(num_docs)

    def _check_supply(self, num_docs: int) -> None:
        memagent = self.composition == "memagent"
        for t, plan in enumerate(self.plans):
            own = _own(plan) if memagent else plan.gold
            if num_docs < len(own):
                what = "own" if memagent else "gold"
                fix = (", or pass composition='per_task_shuffle', which keeps only the gold "
                       "ones (composition='memagent' keeps them all, as MemAgent does)"
                       ) if memagent else ""
                raise ConfigError(f"num_docs={num_docs} is fewer than the {len(own)} {what} "
                                  f"documents of task {t} ({plan.question!r:.60}); raise "
                                  f"num_docs{fix}")
            available = self._available(plan)
            if num_docs > available:
                raise DataError(
                    f"num_docs={num_docs} but the pool supplies only {available} documents for "
                    f"task {t} ({len(own) + len(plan.related)} of its own + "
                    f"{self.pool_size - len(plan.exclude)} from a pool of {self.pool_size}). "
                    f"Use num_docs <= {available}, or {self.unavailable_fix}."
                )

    def _available(self, plan: QuestionPlan) -> int:
        if self.composition == "memagent":
            if self._in_pool(plan):
                return self.pool_size  # MemAgent: N >= the pool is the whole pool
            return len(_own(plan)) + len(plan.related) + self.pool_size - len(plan.exclude)
        return len(plan.gold) + len(plan.related) + self.pool_size - len(plan.exclude)

    def _in_pool(self, plan: QuestionPlan) -> bool:
        """Whether every own document of `plan` is a pool document (MemAgent's case)."""
        own = np.concatenate([_own(plan), plan.related])
        return bool(len(own) == 0 or own.max() < self.pool_size)

    def __len__(self) -> int:
        return len(self.plans)

    def __repr__(self) -> str:
        size = (f"{self.target_tokens} tokens" if self.target_tokens is not None
                else f"{self.num_docs} documents" if self.num_docs is not None else "own documents")
        return (f"ComposedTasks({len(self.plans)} tasks, {size} each, pool of {self.pool_size}, "
                f"composition={self.composition!r}, seed={self.seed})")

    # -- composition ------------------------------------------------------------------------------
    def build(self, t: int) -> Task:
        """Compose task `t`: select and place its documents, wrap them in a DocumentContext."""
        plan = self.plans[t]
        if self.composition == "memagent":
            order, tokens = self._memagent_order(plan, t)
        else:
            order, tokens = self._per_task_order(plan, t)
        context = DocumentContext(self.docs, order)
        gold_positions = np.flatnonzero(np.isin(order, plan.gold))
        metadata = {**plan.metadata, "num_docs": len(order), "seed": self.seed,
                    "composition": self.composition}
        if self.target_tokens is not None:
            metadata.update(target_tokens=self.target_tokens, context_tokens=tokens,
                            tokenizer=self.counter.name)
        return Task(task_id=t, question=plan.question, answers=plan.answers, context=context,
                    gold_context=tuple(context[int(p)] for p in gold_positions),
                    task_type=plan.task_type, scorer=self.scorer, metadata=metadata)

    def _per_task_order(self, plan: QuestionPlan, t: int) -> tuple[np.ndarray, int | None]:
        """Gold, then own distractors, then pool documents; shuffled by (seed, t)."""
        rng = np.random.default_rng((self.seed, t))
        related = rng.permutation(plan.related)
        if self.target_tokens is None:
            order, tokens = self._select_count(plan, related, rng), None
        else:
            mask = np.ones(self.pool_size, dtype=bool)
            mask[plan.exclude] = False
            permutation = rng.permutation(self.pool_size)
            candidates = chain(related.tolist(), permutation[mask[permutation]].tolist())
            order, tokens = self._fill_tokens([int(i) for i in plan.gold], candidates, t)
        rng.shuffle(order)
        return order, tokens

    def _memagent_order(self, plan: QuestionPlan, t: int) -> tuple[np.ndarray, int | None]:
        """MemAgent's list (own, more, random.sample of the rest), then the fixed permutation."""
        rng = random.Random(memagent_draw_seed(self.seed, t))
        own, more = _own(plan).tolist(), plan.related.tolist()
        tokens = None
        if self.target_tokens is not None:
            rest = self._draw_population(plan)
            # MemAgent fixes N, not tokens: fill in its list order until the target is reached.
            chosen, tokens = self._fill_tokens(own, chain(more, rng.sample(rest, len(rest))), t)
            chosen = chosen.tolist()
        else:
            n = self.num_docs if self.num_docs is not None else len(own) + len(more)
            if n >= self.pool_size and self._in_pool(plan):
                chosen = list(range(self.pool_size))  # MemAgent's `all_docs = DOCS`, sorted
            elif n - len(own) > len(more):
                chosen = own + more + rng.sample(self._draw_population(plan),
                                                 n - len(own) - len(more))
            else:
                chosen = own + rng.sample(more, n - len(own))
        order = np.asarray(chosen, dtype=np.int32)[self._permutation(len(chosen))]
        return order, tokens

    def _draw_population(self, plan: QuestionPlan) -> list[int]:
        """Pool indices a question may draw, ascending (MemAgent's `addition_docs`)."""
        mask = np.ones(self.pool_size, dtype=bool)
        mask[plan.exclude] = False
        return np.flatnonzero(mask).tolist()

    def _permutation(self, n: int) -> np.ndarray:
        """`random.Random(4).shuffle` of n items as an index array: new[p] = old[perm[p]]."""
        perm = self._permutations.get(n)
        if perm is None:
            shuffled = list(range(n))
            random.Random(MEMAGENT_PERMUTATION_SEED).shuffle(shuffled)
            perm = np.asarray(shuffled, dtype=np.int64)
            if len(self._permutations) >= 8:  # target_tokens gives a few lengths; keep it small
                self._permutations.pop(next(iter(self._permutations)))
            self._permutations[n] = perm
        return perm

    def _select_count(self, plan: QuestionPlan, related: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
        n = self.num_docs if self.num_docs is not None else len(plan.gold) + len(related)
        own = related[: max(0, n - len(plan.gold))]
        k = n - len(plan.gold) - len(own)
        drawn = np.empty(0, dtype=np.int64)
        if k > 0:
            # Draw enough that k survive removing this question's own titles.
            drawn = rng.choice(self.pool_size, size=min(self.pool_size, k + len(plan.exclude)),
                               replace=False)
            drawn = drawn[~np.isin(drawn, plan.exclude)][:k]
        return np.concatenate([plan.gold, own, drawn]).astype(np.int32)

    def _fill_tokens(self, chosen: list[int], candidates: Iterable[int],
                     t: int) -> tuple[np.ndarray, int]:
        """`chosen`, then `candidates` in order while the context stays within target_tokens."""
        # Rendered pieces are "Document i:\n" + "title\ntext", joined by PIECE_SEPARATOR, and
        # headers 1..n appear once each whatever the placement, so the total is known before it.
        chosen = list(chosen)
        total = sum(self._cost(j + 1, idx) for j, idx in enumerate(chosen))
        if total > self.target_tokens:
            kept = ("own documents (composition='memagent' keeps them all; "
                    "composition='per_task_shuffle' keeps only the gold ones)"
                    if self.composition == "memagent" else "gold documents")
            raise ConfigError(
                f"target_tokens={self.target_tokens} is below the {total} tokens of task {t}'s "
                f"{len(chosen)} {kept} ({self.counter.name} tokenizer); raise target_tokens")
        cap = self.num_docs if self.num_docs is not None else float("inf")
        for idx in candidates:
            if len(chosen) >= cap:
                break
            cost = self._cost(len(chosen) + 1, idx)
            if total + cost > self.target_tokens:
                break
            chosen.append(idx)
            total += cost
        else:
            if total < self.target_tokens:
                raise DataError(
                    f"target_tokens={self.target_tokens} is out of reach for task {t}: all "
                    f"{len(chosen)} available documents give {total} tokens "
                    f"({self.counter.name} tokenizer). Lower target_tokens, or "
                    f"{self.unavailable_fix}."
                )
        return np.asarray(chosen, dtype=np.int32), total

    def _cost(self, position: int, idx: int) -> int:
        """Tokens that document `idx` adds as piece number `position` (1-based)."""
        body = self._body_tokens[idx]
        if body < 0:
            doc = self.docs[idx]
            body = self._body_tokens[idx] = self.counter.count(f"{doc.title}\n{doc.text}")
        header = self._header_tokens.get(position)
        if header is None:
            header = self._header_tokens[position] = self.counter.count(
                f"Document {position}:\n")
        return int(body) + header + (self._separator_tokens if position > 1 else 0)


# -- RULER-HQA from HotpotQA records --------------------------------------------------------------

def _body(doc: Document) -> str:
    """A document as MemAgent keys it: "title\ntext"."""
    return f"{doc.title}\n{doc.text}"


def hotpotqa_pool(records: Iterable[HotpotQARecord]) -> list[Document]:
    """Every paragraph of `records`, deduplicated by title (first one wins), in file order."""
    pool: dict[str, Document] = {}
    for record in records:
        for doc in record.paragraphs:
            pool.setdefault(doc.title, doc)
    return list(pool.values())


def compose_ruler_hqa(records: Sequence[HotpotQARecord | Mapping[str, Any]], *,
                      num_docs: int | None = None, target_tokens: int | None = None,
                      seed: int = 42, pool: Sequence[Document] | None = None,
                      tokenizer: Any = None, source: str = "HotpotQA",
                      composition: str = "memagent") -> ComposedTasks:
    """RULER-HQA tasks: each question's own paragraphs plus random pool paragraphs, placed.

    Args:
        records: HotpotQA records (or raw rows in either HotpotQA schema).
        num_docs: documents per context (MemAgent: 50 ... 25,600). "memagent" needs at least a
            question's own 10; "per_task_shuffle" keeps the gold paragraphs of a smaller N and
            drops own distractors at random.
        target_tokens: compose to at most this many tokens instead (stops before the first
            document that would cross it, so a context falls short by less than one document).
        seed: the seed of the random draws (and of "per_task_shuffle"'s shuffle); task t
            depends only on (seed, t).
        pool: the documents random distractors are drawn from (default: every paragraph of
            `records`). "memagent" deduplicates it by "title\ntext" and sorts it, as MemAgent's
            document index is; "per_task_shuffle" deduplicates it by title. A question's own
            documents are never drawn.
        tokenizer: what measures `target_tokens` (see `load_token_counter`).
        source: a description stored in every task's metadata.
        composition: "memagent" (MemAgent's fixed depths) or "per_task_shuffle"; see the
            module docstring.

    Returns:
        A lazy `Sequence[Task]`; task_type is bridge/comparison, gold_context the rendered
        supporting-fact paragraphs, metadata holds source, hotpotqa_id, level, num_docs, seed,
        composition.

    Raises:
        ConfigError: an unknown composition, or num_docs below what it must keep.
        DataError: `num_docs` exceeds what the pool can supply (says how many are available).
    """
    check_composition(composition)
    records = [r if isinstance(r, HotpotQARecord) else parse_hotpotqa_row(r, f"records[{i}]")
               for i, r in enumerate(records)]
    if not records:
        raise DataError("compose_ruler_hqa: no records given")
    if composition == "memagent":
        pool_docs = memagent_documents(records) if pool is None else _sorted_by_body(pool)
        docs, plans = _memagent_plans(records, pool_docs, source)
    else:
        pool_docs = hotpotqa_pool(records) if pool is None else _dedupe_by_title(pool)
        docs, plans = _per_task_plans(records, pool_docs, source)
    return ComposedTasks(
        docs, len(pool_docs), plans, num_docs=num_docs, target_tokens=target_tokens, seed=seed,
        counter=load_token_counter(tokenizer), composition=composition,
        unavailable_fix=("use a bigger HotpotQA file (the dev set has 7,405 questions), or pass "
                         "pool= a larger list of Documents"),
    )


def _memagent_plans(records: Sequence[HotpotQARecord], pool_docs: Sequence[Document],
                    source: str) -> tuple[list[Document], list[QuestionPlan]]:
    """Plans keyed by full text: own = every paragraph in file order (MemAgent's curr_docs)."""
    docs = list(pool_docs)
    index = {_body(doc): i for i, doc in enumerate(pool_docs)}  # own docs outside the pool too
    no_related = np.empty(0, np.int32)
    plans = []
    for record in records:
        own = []
        for doc in record.paragraphs:
            idx = index.get(_body(doc))
            if idx is None:
                idx = index[_body(doc)] = len(docs)
                docs.append(doc)
            own.append(idx)
        gold_titles = set(record.supporting_titles)
        plans.append(QuestionPlan(
            question=record.question, answers=(record.answer,),
            gold=np.array(sorted({i for doc, i in zip(record.paragraphs, own)
                                  if doc.title in gold_titles}), np.int32),
            related=no_related,
            exclude=np.array(sorted({i for i in own if i < len(pool_docs)}), np.int32),
            own=np.array(own, np.int32), task_type=record.type,
            metadata={"source": source, "hotpotqa_id": record.id, "level": record.level},
        ))
    return docs, plans


def _per_task_plans(records: Sequence[HotpotQARecord], pool_docs: Sequence[Document],
                    source: str) -> tuple[list[Document], list[QuestionPlan]]:
    """Plans keyed by title: gold = supporting paragraphs, related = the other own ones."""
    docs = list(pool_docs)
    pool_index = {doc.title: i for i, doc in enumerate(pool_docs)}
    extra_index: dict[Document, int] = {}  # own paragraphs whose text differs from the pool's
    plans = []
    for record in records:
        own: dict[str, int] = {}
        for doc in record.paragraphs:
            if doc.title in own:
                continue
            idx = pool_index.get(doc.title)
            if idx is None or docs[idx] != doc:
                idx = extra_index.get(doc)
                if idx is None:
                    idx = extra_index[doc] = len(docs)
                    docs.append(doc)
            own[doc.title] = idx
        gold_titles = set(record.supporting_titles)
        plans.append(QuestionPlan(
            question=record.question, answers=(record.answer,),
            gold=np.array([i for title, i in own.items() if title in gold_titles], np.int32),
            related=np.array([i for title, i in own.items() if title not in gold_titles],
                             np.int32),
            exclude=np.array(sorted({pool_index[t] for t in own if t in pool_index}), np.int32),
            task_type=record.type,
            metadata={"source": source, "hotpotqa_id": record.id, "level": record.level},
        ))
    return docs, plans


def _checked_documents(pool: Iterable[Any]) -> Iterator[Document]:
    for i, doc in enumerate(pool):
        if not isinstance(doc, Document):
            raise ConfigError(f"pool[{i}] is a {type(doc).__name__}; pool= takes "
                              "memgym.data.task.Document objects")
        yield doc


def _dedupe_by_title(pool: Iterable[Document]) -> list[Document]:
    unique: dict[str, Document] = {}
    for doc in _checked_documents(pool):
        unique.setdefault(doc.title, doc)
    return list(unique.values())


def _sorted_by_body(pool: Iterable[Document]) -> list[Document]:
    """`sorted(set("title\ntext"))` as Documents: MemAgent's document index over `pool`."""
    unique: dict[str, Document] = {}
    for doc in _checked_documents(pool):
        unique.setdefault(_body(doc), doc)
    return [unique[body] for body in sorted(unique)]


# -- MemAgent's published files -------------------------------------------------------------------

def split_documents(context: str) -> list[Document] | None:
    """Split a MemAgent context string at its "Document i:" boundaries into Documents.

    MemAgent joins `"Document {i}:\\n{title}\\n{text}"` pieces with "\\n\\n"; the split is
    sequential (1, 2, 3, ...), so text that merely mentions "Document 7:" is never cut.
    Returns None when the string does not have that form, so that re-rendering every Document
    reproduces the input exactly.
    """
    head = "Document 1:\n"
    if not context.startswith(head):
        return None
    docs, start, i = [], len(head), 2
    while True:
        marker = f"{PIECE_SEPARATOR}Document {i}:\n"
        end = context.find(marker, start)
        body = context[start:] if end < 0 else context[start:end]
        title, newline, text = body.partition("\n")
        if not newline:
            return None  # a piece without a title line would not re-render identically
        docs.append(Document(title, text))
        if end < 0:
            return docs
        start, i = end + len(marker), i + 1


def memagent_documents(records: Iterable[HotpotQARecord]) -> list[Document]:
    """MemAgent's HotpotQA document index: the sorted set of "title\\ntext" over all paragraphs.

    The >1M-token eval files (`eval_12800.json` ... `eval_66635.json`) store contexts as
    indices into this list, built from the whole HotpotQA dev file
    (`read_hotpotqa` in MemAgent's `taskutils/memory_data/processing.py`).
    """
    return _sorted_by_body(doc for record in records for doc in record.paragraphs)


_RULER_FILE = re.compile(r"eval_(?P<task>[a-z_]+?\d?)_(?P<length>\d+)\.jsonl?$")
"""MemAgent's OOD RULER file names: eval_{task}_{max_seq_length}.json."""


def memagent_ruler_task(path: Any) -> str | None:
    """The RULER task named by a MemAgent OOD file (eval_niah_single_1_8192.json: niah_single_1)."""
    match = _RULER_FILE.search(Path(str(path)).name)
    return match["task"] if match else None


def _memagent_kind(row: Any) -> str | None:
    """"eval" (eval_{N}.json), "train" (training parquet), "ruler" (eval_{task}_{len}.json)."""
    if isinstance(row, Mapping) and "context" in row:
        if "input" in row and "answers" in row:
            return "eval"
        if "prompt" in row and "reward_model" in row:
            return "train"
        if "input" in row and "outputs" in row:
            return "ruler"
    return None


def _answers(value: Any, where: str, field_name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, Sequence) or not value
            or not all(isinstance(a, str) for a in value)):
        raise DataError(f"{where}: field {field_name!r} must be a non-empty list of strings, got "
                        f"{value!r:.80}")
    return tuple(value)


def _question(row: Mapping[str, Any], kind: str, where: str) -> str:
    if kind in ("eval", "ruler"):
        question = row.get("input")
        name = "input"
    else:
        extra = row.get("extra_info") or {}
        question = extra.get("question") if isinstance(extra, Mapping) else None
        name = "extra_info.question"
        if question is None:  # fall back to the last user message of the chat prompt
            prompt, name = row.get("prompt"), "prompt"
            if isinstance(prompt, Sequence) and prompt and isinstance(prompt[-1], Mapping):
                question = prompt[-1].get("content")
    if not isinstance(question, str) or not question:
        raise DataError(f"{where}: field {name!r} must hold the question as a non-empty string")
    return question


def _gold_answers(row: Mapping[str, Any], kind: str, where: str) -> tuple[str, ...]:
    """The gold answers: `answers` (eval), `outputs` (RULER), `reward_model.ground_truth`."""
    if kind == "eval":
        return _answers(row["answers"], where, "answers")
    if kind == "ruler":
        return _answers(row["outputs"], where, "outputs")
    reward = row["reward_model"]
    if not isinstance(reward, Mapping) or "ground_truth" not in reward:
        raise DataError(f"{where}: field 'reward_model.ground_truth' is missing")
    return _answers(reward["ground_truth"], where, "reward_model.ground_truth")


def _hotpotqa_index(row: Mapping[str, Any], kind: str) -> Any:
    """The row's question position in the HotpotQA file it was built from (None: none)."""
    if kind == "train":
        extra = row.get("extra_info")
        return extra.get("index") if isinstance(extra, Mapping) else None
    return row.get("index") if kind == "eval" else None  # RULER rows: a sample number


def _matching_record(index: Any, question: str, docs_records: Sequence[HotpotQARecord],
                     where: str) -> HotpotQARecord:
    """docs_records[index], checked to ask the row's question."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(docs_records):
        raise DataError(f"{where}: field 'index'={index!r} is not a question position "
                        f"in the {len(docs_records)}-question docs file")
    record = docs_records[index]
    if record.question.strip() != question.strip():
        raise DataError(
            f"{where}: 'index'={index} points at HotpotQA question {record.question!r:.80} but "
            f"the row asks {question!r:.80}; docs_path is not the HotpotQA file this MemAgent "
            "file was built from (eval files: the dev set, hotpot_dev_distractor_v1.json)")
    return record


class _DocStore:
    """Documents parsed out of context strings, interned so repeated paragraphs share memory.

    Also holds the index-form document list (`memagent_documents` of the docs file), built on
    first need.
    """

    def __init__(self, docs_records: Sequence[HotpotQARecord] | None):
        self.docs: list[Document] = []
        self._index: dict[Document, int] = {}
        self._docs_records = docs_records
        self._index_docs: list[Document] | None = None

    def add(self, doc: Document) -> int:
        idx = self._index.get(doc)
        if idx is None:
            idx = self._index[doc] = len(self.docs)
            self.docs.append(doc)
        return idx

    def pieces(self, context: Any, where: str, kind: str, task: str | None) -> Sequence[str]:
        """A row's context as stream pieces: Documents when it has that form, else blocks."""
        if isinstance(context, str):
            parsed = split_documents(context)
            if parsed is None:  # not "Document i:\ntitle\ntext" form: its blank-line blocks
                return tuple(context.split(PIECE_SEPARATOR))
            return DocumentContext(self.docs, [self.add(doc) for doc in parsed])
        if isinstance(context, Sequence) and all(
                isinstance(i, int) and not isinstance(i, bool) for i in context):
            return self._indexed(context, where, kind, task)
        raise DataError(f"{where}: field 'context' must be a string or a list of document "
                        f"indices, got {type(context).__name__}")

    def _indexed(self, context: Sequence[int], where: str, kind: str,
                 task: str | None) -> DocumentContext:
        if kind == "ruler" and task != "qa_2":
            raise DataError(
                f"{where}: field 'context' holds document indices; for a RULER file other than "
                f"qa_2 (this one: {task or 'unnamed'}) they index a SQuAD paragraph list memgym "
                "does not rebuild. Regenerate the file below 2M tokens (string contexts)")
        if self._docs_records is None:
            raise DataError(
                f"{where}: field 'context' holds document indices (MemAgent's >1M-token "
                "eval files); pass docs_path= the HotpotQA dev file they index "
                "(hotpot_dev_distractor_v1.json) or put it beside the eval file as "
                "hotpotqa_dev.json")
        if self._index_docs is None:
            self._index_docs = memagent_documents(self._docs_records)
        order = np.asarray(context, dtype=np.int64)
        if len(order) and not (0 <= order.min() and order.max() < len(self._index_docs)):
            raise DataError(
                f"{where}: field 'context' has index {int(order.max())} but the docs file "
                f"gives {len(self._index_docs)} documents; pass the full HotpotQA dev file")
        return DocumentContext(self._index_docs, order)


def _gold_context(pieces: Sequence[str], record: HotpotQARecord) -> tuple[str, ...]:
    """The rendered pieces that are `record`'s supporting paragraphs, in stream order."""
    if not isinstance(pieces, DocumentContext):
        return ()
    titles = set(record.supporting_titles)
    gold = {_body(d) for d in record.paragraphs if d.title in titles}
    return tuple(pieces[p] for p, idx in enumerate(pieces.order.tolist())
                 if _body(pieces.docs[idx]) in gold)


def _ruler_row_fields(row: Mapping[str, Any], task: str | None) -> dict[str, Any]:
    """Task fields of a MemAgent OOD RULER row: its task, scorer and prompt metadata."""
    # MemAgent's ruler_general.py: qa splits use QA sub-EM, the others string_match_all.
    scorer = "sub_em" if task is not None and task.startswith("qa") else "string_match_all"
    metadata = {k: row[k] for k in ("answer_prefix", "length") if k in row}
    return {"task_type": task or "ruler", "scorer": scorer, "metadata": metadata}


def read_memagent(rows: Iterable[tuple[str, Any]], *, source: str, limit: int | None = None,
                  docs_records: Sequence[HotpotQARecord] | None = None,
                  ruler_task: str | None = None) -> list[Task]:
    """Tasks from MemAgent's pre-composed files, used exactly as published.

    Formats (from MemAgent's `taskutils/memory_data` and `taskutils/memory_eval`):

    - eval files `eval_{N}.json` (a JSON list; JSONL is read too): `context`, `input` (the
      question), `answers` (list), `num_docs`, `index` (the question's position in the HotpotQA
      dev file). Up to N = 6,400 `context` is the rendered string; for N >= 12,800
      (12,800 / 25,600 / 51,200 / 66,635, i.e. over 1M tokens) it is a list of indices into
      `memagent_documents(dev records)`, and MemAgent renders it at load time;
    - training parquet (`hotpotqa_train_process.parquet`): `prompt` (chat messages whose user
      content is the question), `context` (string), `reward_model.ground_truth` (answers),
      `extra_info` (`index`, `question`, `num_docs`);
    - OOD RULER files `eval_{task}_{len}.json` (`ruler_data_prepare.py`): `index` (a sample
      number), `input` (the question, MemAgent's template filled), `context` (string),
      `outputs` (the gold list), `answer_prefix`, `length` (niah, vt, fwe). Tasks are scored
      as MemAgent's `ruler_general.py` scores them: string_match_all, or sub_em for qa_1/qa_2.

    Context strings are split at their "Document i:" boundaries into Documents interned across
    rows (contexts share paragraphs), so memory holds each paragraph once plus index arrays;
    other strings stream as their blank-line blocks.

    Args:
        rows: `(where, row)` pairs, as `iter_rows` yields them.
        source: the file's description for task metadata.
        limit: read only the first `limit` rows.
        docs_records: the HotpotQA records the file was built from (the dev set for eval files):
            required for index contexts; when given, HotpotQA tasks also get task_type, level,
            the HotpotQA id and gold_context.
        ruler_task: the RULER task of an OOD RULER file (see `memagent_ruler_task`).

    Raises:
        DataError: a malformed row (naming file, line/index/row and field), an index context
            without `docs_records`, or a row whose `index` does not match `docs_records`.
    """
    store = _DocStore(docs_records)
    tasks: list[Task] = []
    for t, (where, row) in enumerate(islice(rows, limit)):
        kind = _memagent_kind(row)
        if kind is None:
            raise DataError(f"{where}: not a MemAgent row (eval rows need 'context', 'input', "
                            "'answers'; training rows 'prompt', 'context', 'reward_model'; "
                            "RULER rows 'context', 'input', 'outputs')")
        question = _question(row, kind, where)
        answers = _gold_answers(row, kind, where)
        pieces = store.pieces(row["context"], where, kind, ruler_task)
        fields: dict[str, Any] = {"task_type": "", "scorer": None, "metadata": {}}
        if kind == "ruler":
            fields = _ruler_row_fields(row, ruler_task)
        index = _hotpotqa_index(row, kind)
        if index is not None:
            fields["metadata"]["memagent_index"] = index
        gold_context: tuple[str, ...] = ()
        if docs_records is not None and index is not None:
            record = _matching_record(index, question, docs_records, where)
            gold_context = _gold_context(pieces, record)
            fields["task_type"] = record.type
            fields["metadata"].update(hotpotqa_id=record.id, level=record.level)
        metadata = {"source": source, "num_docs": len(pieces), **fields["metadata"]}
        tasks.append(Task(task_id=t, question=question, answers=answers, context=pieces,
                          gold_context=gold_context, task_type=fields["task_type"],
                          scorer=fields["scorer"], metadata=metadata))
    if not tasks:
        raise DataError(f"{source}: holds no rows")
    return tasks


def memagent_ruler_file(path: str | Path, task: str | None = None,
                       limit: int | None = None) -> list[Task]:
    """Tasks of MemAgent's OOD RULER file `eval_{task}_{len}.json`, as published.

    Args:
        path: the file (a JSON list, or JSONL).
        task: the RULER task the caller expects; a file whose name names another is refused.
        limit: read only the first `limit` rows.

    Raises:
        ConfigError: the file name names another RULER task than `task`.
        DataError: a row that is not a MemAgent RULER row (naming line and field).
    """
    named = memagent_ruler_task(path)
    if task is not None and named is not None and named != task:
        raise ConfigError(f"data_path={str(path)!r} holds MemAgent's {named} instances, not "
                          f"{task}; pass the eval_{task}_<length>.json file")
    rows = iter_rows(Path(path))
    first = next(rows, None)
    if first is None or _memagent_kind(first[1]) != "ruler":
        raise DataError(f"{path}: not a MemAgent RULER file (rows need 'context', 'input' and "
                        "'outputs', as ruler_data_prepare.py writes them)")
    return read_memagent(chain([first], rows), source=f"MemAgent {path}", limit=limit,
                         ruler_task=named or task)


# -- the entry point registration calls -----------------------------------------------------------

def hotpotqa_tasks(data_path: Any = None, *, split: str = "validation", num_docs: int = 50,
                   target_tokens: int | None = None, limit: int | None = None, seed: int = 42,
                   tokenizer: Any = None, pool: Sequence[Document] | None = None,
                   docs_path: Any = None, composition: str = "memagent") -> Sequence[Task]:
    """RULER-HQA tasks from any HotpotQA or MemAgent source (what MemAgent-HotpotQA-v0 plays).

    The format is detected from the first row:

    - HotpotQA, original or `datasets` schema (JSON list, JSONL, parquet, a `datasets` object or
      a hub id read with config "distractor"): composed by `compose_ruler_hqa`, the pool being
      every paragraph of the file (also with `limit`), placed by `composition`;
    - MemAgent eval files `eval_{N}.json`, training parquet and OOD RULER files
      `eval_{task}_{len}.json` (gold under `outputs`): used exactly as published
      (`read_memagent`); num_docs and seed then do not apply, the file fixes both.

    Args:
        data_path: a path, hub id or `datasets` object; None uses the bundled 20-question sample.
        split: the split of a hub id or saved DatasetDict.
        num_docs: documents per composed context (MemAgent: 50 ... 25,600).
        target_tokens: compose to this many tokens instead of num_docs (not for MemAgent files).
        limit: only the first `limit` questions become tasks.
        seed: composition and shuffle seed.
        tokenizer: what counts tokens for target_tokens (see `load_token_counter`).
        pool: distractor Documents to draw from instead of the file's own paragraphs.
        docs_path: the HotpotQA file a MemAgent file was built from (its dev set for eval files;
            default: `hotpotqa_dev.json` beside the MemAgent file, if present). Required for
            index contexts; otherwise it adds task types, levels and gold_context.
        composition: "memagent" (MemAgent's procedure: the same document depths for every
            question at a given num_docs) or "per_task_shuffle" (a fresh shuffle per task);
            see the module docstring.
    """
    check_composition(composition)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ConfigError(f"limit={limit!r}: expected a positive integer or None")
    counter = load_token_counter(tokenizer)
    source = BUNDLED_HOTPOTQA if data_path is None else data_path
    label = "HotpotQA (bundled sample)" if data_path is None else str(data_path)
    rows = iter_rows(source, split=split, hub_config="distractor")
    first = next(rows, None)
    if first is None:
        raise DataError(f"{label}: holds no rows")
    rows = chain([first], rows)

    kind = _memagent_kind(first[1])
    if kind is not None:
        ruler_task = memagent_ruler_task(data_path) if isinstance(data_path, (str, Path)) else None
        if target_tokens is not None:
            raise ConfigError(f"target_tokens={target_tokens}: {label} is a pre-composed MemAgent "
                              "file; compose from a HotpotQA file to set the length yourself")
        if docs_path is None and isinstance(data_path, (str, Path)) and (
                kind != "ruler" or ruler_task == "qa_2"):
            sibling = Path(data_path).expanduser().parent / "hotpotqa_dev.json"
            docs_path = sibling if sibling.is_file() else None
        docs_records = None if docs_path is None else load_hotpotqa(docs_path, split=split)
        logger.info("%s is a pre-composed MemAgent file: its own document count and order are "
                    "used (num_docs and seed do not apply); docs file: %s", label, docs_path)
        return read_memagent(rows, source=f"MemAgent {label}", limit=limit,
                             docs_records=docs_records, ruler_task=ruler_task)

    records = [parse_hotpotqa_row(row, where) for where, row in rows]
    if pool is None:  # the whole file's paragraphs, also with `limit`
        pool = memagent_documents(records) if composition == "memagent" else hotpotqa_pool(records)
    return compose_ruler_hqa(records[:limit], num_docs=None if target_tokens else num_docs,
                             target_tokens=target_tokens, seed=seed, pool=pool,
                             tokenizer=counter, source=label, composition=composition)
