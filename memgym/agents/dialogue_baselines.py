"""Baselines of the dialogue memory envs: mem0-style, RAG over raw turns, full context, oracle.

  - mem0-style (`make_mem0_style`): Memory-R1's pipeline with mem0's prompts and nothing
    trained: extraction (mem0's FACT_RETRIEVAL_PROMPT, adapted), mem0's update step (the whole
    memory returned, unchanged entries as NONE) and mem0's plain answer step.
  - RAG over raw turns (`RagTurnsAgent`): each turn ADDed verbatim ("Speaker: text"), no LLM at
    write steps; at a question the env retrieves with its own retriever (`retrieval="bm25"` or
    `"dense"`, its top_k / per_speaker_k) and one answer call reads what it shows.
  - Full context (`DialogueFullContextAgent`): stores nothing in the bank, keeps the
    conversation so far in its episode scratch and answers from all of it, middle-truncated to
    the model's window (`memgym.agents.retrieval.truncate_middle`). When it cuts, the prompt says
    so in a first line (`TRUNCATION_NOTE`) and `ctx.scratch["truncations"]` counts the cuts.
  - Oracle (`DialogueOracleAgent`): privileged. It declares `needs_task = True`, so the episode
    runner hands it the Conversation (`ctx.task`); from it, and only at a question, it reads the
    question's evidence turns (`DialogueQuestion.evidence`, LoCoMo's annotated dia_ids; the
    turns of `evidence_sessions` when a dataset names sessions only, as LongMemEval) and answers
    from them in one call. It stores nothing. An upper bound of the reader model given perfect
    memory; it tests neither the bank nor retrieval (agents/bank_oracle.yaml does).
Full context and the oracle play either protocol (turn or session stream); their write action
is `{"memory": []}`, which the RMM protocol, having no empty action, counts as one
MALFORMED/refused operation per session (op_validity 0; the answers are unaffected).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from memgym.agents.base import EpisodeContext
from memgym.agents.memory_r1 import (
    EMPTY_WRITE,
    LLMComponent,
    MemoryR1Agent,
    dialogue_lines,
    extract_answer,
    require_memory_r1,
)
from memgym.agents.retrieval import truncate_middle
from memgym.data.dialogue import Conversation, DialogueQuestion, render_turn_text
from memgym.errors import DataError
from memgym.memory.view import format_memories, observed_memories
from memgym.tokenizers import TokenCounter

__all__ = [
    "TRUNCATION_NOTE",
    "DialogueFullContextAgent",
    "DialogueOracleAgent",
    "RagTurnsAgent",
    "make_mem0_style",
]

TRUNCATION_NOTE = ("[The conversation is longer than the model's window: its middle was cut, "
                   "{kept} of {total} tokens are shown.]\n")
"""The first line of a full-context prompt whose conversation was cut."""


def make_mem0_style(extractor: LLMComponent, manager: LLMComponent, answerer: LLMComponent, *,
                    fact_fallback: str = "none", name: str = "mem0_style") -> MemoryR1Agent:
    """The mem0-style extract-then-update agent: Memory-R1's pipeline, mem0's plain answer."""
    return MemoryR1Agent(extractor, manager, answerer, answer_format="plain",
                         fact_fallback=fact_fallback, name=name)


class RagTurnsAgent:
    """ADD every turn verbatim; answer from the turns the env retrieves for the question.

    Args:
        answerer: the answer call (slots memories, question); component "answerer".
        max_entry_chars: a turn longer than this is cut to it (the env refuses longer memory
            texts; its default max_entry_chars is 2048).
        name: the agent's name.
    """

    def __init__(self, answerer: LLMComponent, *, max_entry_chars: int = 2048,
                 name: str = "rag_turns"):
        self.answerer = answerer
        self.max_entry_chars = max_entry_chars
        self.name = name

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """ADD the turn (write step) or answer from the retrieved turns."""
        if observation["phase"] == "write":
            require_memory_r1(observation, self.name)
            text = dialogue_lines(observation["dialogue"])[:self.max_entry_chars]
            ops = [{"id": None, "text": text, "event": "ADD"}] if text else []
            return json.dumps({"memory": ops}, ensure_ascii=False)
        completion = await self.answerer(
            ctx, memories=format_memories(observed_memories(observation, self.name), "memory_r1"),
            question=observation["question"])
        return extract_answer(completion.text, "plain")


class DialogueFullContextAgent:
    """Answer from the whole conversation so far, middle-truncated to the model's window.

    Args:
        answerer: the answer call (slots context, question); component "answerer".
        counter: counts tokens for truncation (ideally the model's tokenizer).
        max_context_tokens: the most tokens the rendered prompt may hold.
        name: the agent's name.
    """

    def __init__(self, answerer: LLMComponent, *, counter: TokenCounter,
                 max_context_tokens: int, name: str = "dialogue_full_context"):
        self.answerer = answerer
        self.counter = counter
        self.max_context_tokens = max_context_tokens
        self.name = name

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Keep the turn(s) (write step: store nothing) or answer from everything kept."""
        if observation["phase"] == "write":
            units: list[str] = ctx.scratch.setdefault("dialogue", [])
            lines = observation["dialogue"].splitlines()
            header = lines[0] if lines and lines[0].startswith("Session ") else ""
            if header and ctx.scratch.get("session_header") != header:
                ctx.scratch["session_header"] = header
                units.append(header)
            units.append(dialogue_lines(observation["dialogue"]))
            return EMPTY_WRITE
        context = "\n".join(ctx.scratch.get("dialogue", ()))
        question = observation["question"]
        return await answer_from_context(self.answerer, ctx, context, question, self.counter,
                                         self.max_context_tokens)


async def answer_from_context(answerer: LLMComponent, ctx: EpisodeContext, context: str,
                              question: str, counter: TokenCounter,
                              max_context_tokens: int) -> str:
    """One answer call over `context`, its middle cut to fit (the prompt says so when cut)."""
    note = TRUNCATION_NOTE.format(kept=10 ** 9, total=10 ** 9)
    overhead = counter.count(answerer.template.render(context=note, question=question))
    budget = max_context_tokens - overhead
    cut, truncated = truncate_middle(context, budget, counter)
    if truncated:
        ctx.scratch["truncations"] = ctx.scratch.get("truncations", 0) + 1
        cut = TRUNCATION_NOTE.format(kept=max(budget, 0), total=counter.count(context)) + cut
    completion = await answerer(ctx, context=cut, question=question)
    return extract_answer(completion.text, "plain")


class DialogueOracleAgent:
    """Answers from the question's evidence turns, read from the task (privileged; see above).

    Args:
        answerer: the answer call (slots context, question); component "answerer".
        counter, max_context_tokens: as for the full-context agent (evidence is short).
        name: the agent's name.
    """

    needs_task = True

    def __init__(self, answerer: LLMComponent, *, counter: TokenCounter,
                 max_context_tokens: int, name: str = "dialogue_oracle"):
        self.answerer = answerer
        self.counter = counter
        self.max_context_tokens = max_context_tokens
        self.name = name

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Store nothing (write step) or answer from the evidence turns."""
        task = ctx.task
        if not isinstance(task, Conversation):
            raise DataError("dialogue_oracle needs ctx.task to be the episode's Conversation; "
                            "run it with memgym's episode runner on a dialogue env")
        if observation["phase"] == "write":
            return EMPTY_WRITE
        question = _find_question(task, observation["question"])
        return await answer_from_context(self.answerer, ctx, evidence_context(task, question),
                                         question.question, self.counter,
                                         self.max_context_tokens)


def _find_question(task: Conversation, text: str) -> DialogueQuestion:
    for q in task.questions:
        if q.question == text:
            return q
    raise DataError(f"dialogue_oracle: the question {text[:80]!r} is not one of "
                    f"{task.conversation_id}'s questions")


def evidence_context(task: Conversation, question: DialogueQuestion) -> str:
    """The question's evidence turns in conversation order, under their session's date line.

    The turns named in `question.evidence`; when none is named, every turn of its
    `evidence_sessions`; "(no evidence turns)" when the question has neither (an abstention).
    """
    wanted = set(question.evidence)
    sessions = set(question.evidence_sessions)
    lines, header = [], None
    for session in task.sessions:
        for turn in session.turns:
            use = turn.dia_id in wanted if wanted else (
                session.session_id in sessions or f"session_{session.index}" in sessions)
            if not use:
                continue
            if header != session.index:
                header = session.index
                lines.append(f"Session {session.index} ({session.date_time})")
            lines.append(render_turn_text(turn, with_speaker=True))
    return "\n".join(lines) if lines else "(no evidence turns)"
