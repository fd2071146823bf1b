"""Dialogue tasks: multi-session conversations with questions about them (LoCoMo, LongMemEval,
MemoryAgentBench, the synthetic multi-session task).

A `Conversation` is one dialogue task: sessions of turns in time order, and the questions asked
after it. Each question names the turn of its last evidence (`answer_after`), so a write step can
be paired with the questions whose answer it affects (Memory-R1's manager reward).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DialogueTurn", "DialogueSession", "DialogueQuestion", "Conversation",
           "LOCOMO_CATEGORIES", "IMAGE_CAPTION_FORMAT", "render_turn_text"]

LOCOMO_CATEGORIES: dict[int, str] = {1: "multi-hop", 2: "temporal", 3: "open-domain",
                                     4: "single-hop", 5: "adversarial"}
"""LoCoMo's category numbers as the release uses them (5 is usually excluded)."""

IMAGE_CAPTION_FORMAT = "[shares an image: {caption}]"
"""How `render_turn_text` writes a shared image: LoCoMo's turns keep the image's BLIP caption in
metadata, and Memory-R1/mem0 feed it to the model as a line of text after the utterance."""


@dataclass(frozen=True)
class DialogueTurn:
    """One utterance.

    Attributes:
        dia_id: the turn's id in its source (LoCoMo's "D1:3"; "s<session>:<turn>" elsewhere).
        speaker: who says it (a name, or "user"/"assistant" in LongMemEval).
        text: what is said; a shared image's caption is kept in metadata, not folded in here.
        session: 1-based index of the session the turn belongs to.
        metadata: source fields that travel with the turn (image caption, has_answer, ...).
    """

    dia_id: str
    speaker: str
    text: str
    session: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DialogueSession:
    """A session: consecutive turns held on one date.

    Attributes:
        index: 1-based position in the conversation.
        date_time: the session's date-time as the source writes it ("1:56 pm on 8 May, 2023").
        turns: the turns in order.
        session_id: the source's id for the session (LongMemEval's haystack session id), or "".
    """

    index: int
    date_time: str
    turns: tuple[DialogueTurn, ...]
    session_id: str = ""


@dataclass(frozen=True)
class DialogueQuestion:
    """A question asked after (part of) the conversation, with its gold answers.

    Attributes:
        question_id: unique within its source ("conv-26:q12", LongMemEval's question_id).
        question: the question text.
        answers: gold answers (scorers take the best match).
        category: the breakdown label: LoCoMo's category name (see LOCOMO_CATEGORIES),
            LongMemEval's question_type, a MemoryAgentBench competency, a synthetic kind.
        evidence: dia_ids of the turns that hold the answer (may be empty).
        evidence_sessions: session ids that hold the answer (LongMemEval's answer_session_ids).
        answer_after: dia_id of the last evidence turn: once the stream has passed it, the
            question is answerable; None when the evidence is unknown.
        question_date: when the question is asked (LongMemEval), or "".
        abstention: the right answer is that the conversation does not say (LongMemEval's
            `_abs` ids, synthetic unanswerable questions).
        adversarial_answer: LoCoMo category 5's distractor answer, or None.
        metadata: anything else the source gives (category number, synthetic fact keys, ...).
    """

    question_id: str
    question: str
    answers: tuple[str, ...]
    category: str = ""
    evidence: tuple[str, ...] = ()
    evidence_sessions: tuple[str, ...] = ()
    answer_after: str | None = None
    question_date: str = ""
    abstention: bool = False
    adversarial_answer: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Conversation:
    """One dialogue task: a conversation and the questions asked about it.

    Attributes:
        conversation_id: the source's id ("conv-26", a LongMemEval question_id).
        speakers: the speakers in order of first appearance.
        sessions: the sessions in time order.
        questions: the questions asked after the conversation.
        source: where it was loaded from (a path, a hub id, "synthetic").
        metadata: source facts that travel with predictions (dataset, split, seed, ...).
    """

    conversation_id: str
    speakers: tuple[str, ...]
    sessions: tuple[DialogueSession, ...]
    questions: tuple[DialogueQuestion, ...]
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def turns(self) -> Iterator[DialogueTurn]:
        """Every turn of every session, in stream order."""
        for session in self.sessions:
            yield from session.turns

    @property
    def num_turns(self) -> int:
        """How many turns the conversation has."""
        return sum(len(s.turns) for s in self.sessions)


def render_turn_text(turn: DialogueTurn, *, with_speaker: bool = False,
                     caption_format: str = IMAGE_CAPTION_FORMAT) -> str:
    """The text a model should see for `turn`: its utterance, then a shared image's caption.

    Args:
        turn: the turn; a caption is read from `turn.metadata["blip_caption"]` (LoCoMo).
        with_speaker: prefix "<speaker>: ".
        caption_format: how the caption is written; "{caption}" is replaced by it.

    Example: "Look at this!\n[shares an image: a photo of a dog on a beach]".
    """
    text = f"{turn.speaker}: {turn.text}" if with_speaker else turn.text
    caption = turn.metadata.get("blip_caption")
    if isinstance(caption, str) and caption.strip():
        text = f"{text}\n{caption_format.replace('{caption}', caption.strip())}"
    return text
