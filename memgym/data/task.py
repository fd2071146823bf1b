"""The Task: one question (with gold answers) over a context streamed in pieces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Task", "Document", "render_document", "PIECE_SEPARATOR"]

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
