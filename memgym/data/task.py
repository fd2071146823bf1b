"""The Task: one question (with gold answers) over a context streamed in pieces."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

__all__ = ["Task", "Document", "LazyTasks", "render_document", "PIECE_SEPARATOR"]

PIECE_SEPARATOR = "\n\n"
"""Context pieces are joined with this separator when streamed into chunks."""


@dataclass(frozen=True)
class Document:
    """A titled paragraph (a HotpotQA/Wikipedia paragraph, a SQuAD context)."""

    title: str
    text: str


def render_document(index: int, doc: Document) -> str:
    """MemAgent's rendering: `Document {index}:\\n{title}\\n{text}` with a 1-based index."""
    return f"Document {index}:\n{doc.title}\n{doc.text}"


@dataclass(frozen=True)
class Task:
    """One memory task: a question, its gold answers and the context to stream.

    Attributes:
        task_id: position of the task in its source (file order).
        question: the question, shown to the agent up front.
        answers: gold answers; scorers take the best match over them.
        context: rendered text pieces in stream order, joined by PIECE_SEPARATOR; may be a lazy
            sequence (a 25,600-document RULER-HQA context renders each piece on access).
        gold_context: the pieces an oracle needs (gold paragraphs, needles), in stream order.
        task_type: a label used for breakdowns (HotpotQA bridge/comparison, a RULER task name).
        scorer: the scorer name this task family is graded with by default (None: the env's).
        metadata: source, num_docs, target length and other facts that travel with predictions.
    """

    task_id: int
    question: str
    answers: tuple[str, ...]
    context: Sequence[str]
    gold_context: tuple[str, ...] = ()
    task_type: str = ""
    scorer: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class LazyTasks(Sequence[Task]):
    """A task source that builds task i on access: subclasses define `__len__` and `build(i)`.

    Indexing follows `Sequence`: negative indices count from the end, slices give lists, anything
    else is a TypeError and out-of-range an IndexError.
    """

    def build(self, index: int) -> Task:
        """Build task `index` (0 <= index < len(self)); deterministic."""
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> Task: ...

    @overload
    def __getitem__(self, index: slice) -> list[Task]: ...

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, slice):
            return [self.build(i) for i in range(*index.indices(n))]
        if isinstance(index, bool):
            raise TypeError("task index must be an int, got bool")
        i = operator.index(index)  # TypeError for anything that is not an integer
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"task index {index} out of range for {n} tasks")
        return self.build(i)
