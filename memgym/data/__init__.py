"""Task sources: HotpotQA / RULER-HQA, SQuAD, RULER synthetic tasks, and a synthetic memory task.

Every source yields `Task`s (a question, gold answers and a context streamed in pieces); large
sources are lazy sequences that build each task on access.
"""

from memgym.data.task import PIECE_SEPARATOR, Document, LazyTasks, Task, render_document

__all__ = ["PIECE_SEPARATOR", "Document", "LazyTasks", "Task", "render_document"]
