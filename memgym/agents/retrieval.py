"""Text components of the context baselines: passage splitting and middle truncation.

`split_passages` and `truncate_middle` live in `memgym.data.text` (task sources chunk with
them too); `Retriever` and `BM25Retriever` live in `memgym.memory.retrieval` (retrieval is part
of the memory substrate). They are re-exported here so existing imports keep working.
"""

from __future__ import annotations

from memgym.data.text import split_passages, truncate_middle
from memgym.memory.retrieval import BM25Retriever, Retriever

__all__ = ["BM25Retriever", "Retriever", "split_passages", "truncate_middle"]
