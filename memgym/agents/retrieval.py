"""Text components of the context baselines: passage splitting, middle truncation, BM25 ranking."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from memgym.tokenizers import TokenCounter

__all__ = ["BM25Retriever", "Retriever", "split_passages", "truncate_middle"]


def split_passages(text: str, passage_tokens: int, counter: TokenCounter) -> list[str]:
    """Cut `text` into consecutive passages of at most `passage_tokens` tokens (lossless)."""
    passages: list[str] = []
    while text:
        head, rest = counter.split(text, max(passage_tokens, 1))
        if not head or not head.strip():  # no tokens left: the remainder joins the last passage
            if passages:
                passages[-1] += text
            elif text.strip():
                passages.append(text)
            break
        passages.append(head)
        text = rest
    return passages


def truncate_middle(text: str, max_tokens: int, counter: TokenCounter) -> tuple[str, bool]:
    """Keep the first and last `max_tokens / 2` tokens of `text`, dropping the middle.

    The usual long-context baseline truncation (LongBench, MemAgent's direct-generation runs):
    the start and the end of a context are where instructions and the most recent facts sit.

    Returns:
        (text, whether it was truncated). Tokens are counted by `counter`; re-tokenising the
        joined halves may differ from `max_tokens` by a token at the joint.
    """
    total = counter.count(text)
    if total <= max_tokens:
        return text, False
    if max_tokens <= 0:
        return "", True
    keep_head = max_tokens // 2
    head, _ = counter.split(text, keep_head)
    _, tail = counter.split(text, total - (max_tokens - keep_head))
    return head + tail, True


@runtime_checkable
class Retriever(Protocol):
    """Ranks passages for a query."""

    def rank(self, query: str, passages: Sequence[str], k: int) -> list[int]:
        """Indices of the `k` best passages for `query`, best first."""
        ...


@dataclass(frozen=True)
class BM25Retriever:
    """BM25 ranking with the `bm25s` library, over the passages given at query time.

    The index is built per call: an episode's passages are known only at answer time and are
    indexed once. Ties (e.g. passages sharing no term with the query) keep stream order, so the
    ranking is deterministic.

    Args:
        k1, b: BM25 parameters (bm25s/Lucene defaults).
        method: the bm25s scoring variant ("lucene", "robertson", "atire", "bm25l", "bm25+").
        stopwords: the stopword list name given to `bm25s.tokenize` ("en") or None.
    """

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stopwords: str | None = "en"

    def rank(self, query: str, passages: Sequence[str], k: int) -> list[int]:
        """Indices of the top-`k` passages by BM25 score, best first."""
        import bm25s

        k = min(k, len(passages))
        if k <= 0:
            return []
        corpus = bm25s.tokenize(list(passages), stopwords=self.stopwords, show_progress=False)
        terms = bm25s.tokenize(query, stopwords=self.stopwords, show_progress=False,
                               return_ids=False)[0]
        if not corpus.vocab or not terms:  # nothing to match on: keep stream order
            return list(range(k))
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # empty passages divide by zero
            retriever.index(corpus, show_progress=False)
            scores = np.nan_to_num(np.asarray(retriever.get_scores(terms), dtype=np.float64))
        order = np.argsort(-scores, kind="stable")
        return [int(i) for i in order[:k]]
