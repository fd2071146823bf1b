"""Task sources: HotpotQA / RULER-HQA, SQuAD, RULER synthetic tasks, a synthetic memory task, and
dialogue tasks (`Conversation`s).

Every source yields `Task`s (a question, gold answers and a context streamed in pieces); large
sources are lazy sequences that build each task on access.
"""

from memgym.data.dialogue import (
    IMAGE_CAPTION_FORMAT,
    LOCOMO_CATEGORIES,
    Conversation,
    DialogueQuestion,
    DialogueSession,
    DialogueTurn,
    render_turn_text,
)
from memgym.data.locomo import LOCOMO_SPLITS, load_locomo
from memgym.data.longmemeval import load_longmemeval
from memgym.data.memoryagentbench import load_memoryagentbench
from memgym.data.synthetic_dialogue import generate_dialogues
from memgym.data.task import PIECE_SEPARATOR, Document, LazyTasks, Task, render_document

__all__ = [
    "IMAGE_CAPTION_FORMAT", "LOCOMO_CATEGORIES", "LOCOMO_SPLITS", "PIECE_SEPARATOR",
    "Conversation", "DialogueQuestion", "DialogueSession", "DialogueTurn", "Document",
    "LazyTasks", "Task", "generate_dialogues", "load_locomo", "load_longmemeval",
    "load_memoryagentbench", "render_document", "render_turn_text",
]
