"""Memory-R1 (Yan et al., 2025) as an agent of the dialogue memory envs (protocol memory_r1).

Three LLM components, each its own backend, model, sampling and trainable flag:

  - extractor (component "extractor"): at each write step (one turn), mem0-style fact
    extraction, `{"facts": [...]}` (memgym.agents.dialogue_prompts.FACT_EXTRACTION);
  - manager (component "manager", trainable: Memory-R1's stage-1 policy): the memories the env
    retrieved for the turn (its `memory_entries`, as a JSON list of {"id", "text"}) and the new
    facts -> one operation
    per fact in Memory-R1/mem0 JSON. Its completion is the action, as written: the env parses,
    validates and applies it, so the trained tokens are exactly what the bank received. A turn
    without facts skips the manager and stores nothing (`{"memory": []}`), as mem0 does;
  - answerer (component "answerer", trainable: stage 2): the memories the env retrieved for the
    question (Memory-R1: 60, 30 per speaker, `DialogueMemoryEnv(per_speaker_k=30)`), grouped
    per speaker with their timestamps; it first writes the memories it selected ("memory
    distillation"), then `**Answer:**` and a few words. Only the text after the marker is the
    action (`extract_answer`), so only the answer is scored.

Departures from the paper, and why:
  - Memory-R1 retrieves the related memories for the manager with its own embedding search; here
    the env's `write_top_k` (10) retrieved for the turn are the related entries (the env owns the
    bank and its retriever: BM25 or dense by the env's `retrieval`).
  - Facts that fail to parse give no facts (mem0's behaviour); `fact_fallback="turn"` stores the
    turn itself as the one fact instead (for tiny models that cannot write JSON).
  - The prompts: the manager's and the answer agent's are the paper's appendix C (Figures 9-11,
    read in its full v5 text); the extraction prompt is mem0's (the paper shows none); the
    departures are listed in memgym.agents.dialogue_prompts.
  - Training (train/memory_r1_stage{1,2}.yaml, which quote the paper's appendix D): the paper
    trains the manager on per-turn tuples over a GPT-4o-mini-built "temporal memory bank"
    (appendix B.2) on 3B-14B backbones with VERL (batch 128, lengths 4096/2048); memgym rolls
    out whole conversations with the policy building the bank, on CPU-sized models and lengths.
    The reward is the paper's (EM of the frozen answer agent; EM for the answer agent).
  - The paper's LLM judge (Figure 12) is mem0's ACCURACY_PROMPT lightly edited, with no judge
    model named; memgym's judge (memgym.eval.judge) pins mem0's prompt word for word.
The mem0-style baseline (memgym.agents.dialogue_baselines.make_mem0_style) is this pipeline with
mem0's update prompt, mem0's plain answer step and nothing trainable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from memgym.agents.base import EpisodeContext
from memgym.agents.calls import LLMComponent
from memgym.errors import ConfigError
from memgym.memory.view import format_memories, observed_memories

__all__ = [
    "ANSWER_FORMATS",
    "EMPTY_WRITE",
    "FACT_FALLBACKS",
    "LLMComponent",
    "MemoryR1Agent",
    "dialogue_lines",
    "extract_answer",
    "parse_facts",
    "require_memory_r1",
]

EMPTY_WRITE = json.dumps({"memory": []})
"""The write action that stores nothing (the env scores it op_validity 1)."""
ANSWER_FORMATS = ("memory_r1", "plain")
"""memory_r1: the answer follows `**Answer:**` after the selected memories; plain: the whole
completion's first line is the answer (mem0's answer step)."""
FACT_FALLBACKS = ("none", "turn")

_DIALOGUE_LINE = re.compile(r"^\[[^\]\n]+\] ")
_ANSWER_MARK = re.compile(r"\*\*\s*answer\s*:?\s*\*\*\s*:?|\banswer\s*:", re.IGNORECASE)
_LIST_MARK = re.compile(r"^(?:[-*\u2022]\s+|\d{1,2}[.)]\s+)")  # "- x", "1. x": small models list
_STRONG_MARK = re.compile(r"\*\*\s*answer\s*:?\s*\*\*\s*:?", re.IGNORECASE)


def dialogue_lines(dialogue: str) -> str:
    """A write step's `dialogue` field without its "Session n (date)" header and dia_ids."""
    lines = dialogue.splitlines()
    if lines and lines[0].startswith("Session "):
        lines = lines[1:]
    return "\n".join(_DIALOGUE_LINE.sub("", line, count=1) for line in lines).strip()


def _json_values(text: str) -> list[Any]:
    """Every JSON object or list that starts at a `{` or `[` of `text` (outermost first)."""
    decoder, values, end = json.JSONDecoder(), [], 0
    for match in re.finditer(r"[\[{]", text):
        if match.start() < end:
            continue
        try:
            value, stop = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        values.append(value)
        end = stop
    return values


def parse_facts(text: str) -> list[str] | None:
    """The facts of an extractor completion: `{"facts": [...]}` (or a bare list of strings).

    Code fences and prose around the JSON are tolerated; items may be strings or objects with a
    "text" or "fact" field. Returns None when no such JSON is found (a malformed completion),
    [] for an explicit empty list.
    """
    for value in _json_values(text):
        items = value.get("facts") if isinstance(value, dict) else value
        if not isinstance(items, list):
            continue
        facts = []
        for item in items:
            if isinstance(item, dict):
                item = item.get("text", item.get("fact"))
            if (isinstance(item, (str, int, float)) and not isinstance(item, bool)
                    and str(item).strip()):
                facts.append(str(item).strip())
        return facts
    return None


def extract_answer(text: str, answer_format: str = "memory_r1") -> str:
    """The answer part of an answerer completion.

    memory_r1: the text after the last `**Answer:**` (also `**Answer**:`, any case; else the
    last `Answer:`), up to the end of its line; without a marker, the last non-empty line.
    plain: after a leading `Answer:` if there is one, the first non-empty line. A leading list
    mark ("- ", "1. "), surrounding `**`, quotes and spaces are stripped.
    """
    if answer_format == "memory_r1":
        marks = list(_STRONG_MARK.finditer(text)) or list(_ANSWER_MARK.finditer(text))
        if marks:
            rest = text[marks[-1].end():]
            lines = [ln.strip() for ln in rest.splitlines() if ln.strip()]
        else:
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()][-1:]
    else:
        marks = list(_ANSWER_MARK.finditer(text))
        rest = text[marks[0].end():] if marks and not text[:marks[0].start()].strip() else text
        lines = [ln.strip() for ln in rest.splitlines() if ln.strip()]
    answer = _LIST_MARK.sub("", lines[0]) if lines else ""
    return answer.strip().strip("*").strip().strip("\"'").strip()


def require_memory_r1(observation: Mapping[str, str], agent: str) -> None:
    """A ConfigError unless a write step asks for Memory-R1 JSON (protocol memory_r1)."""
    if observation.get("action_format") != "memory_r1":
        raise ConfigError(f"{agent} writes Memory-R1 JSON at each turn; this env asks for "
                          f"{observation.get('action_format')!r}: make the env with "
                          "protocol='memory_r1' (e.g. MemoryR1-LoCoMo-v0, MemoryBank-Synthetic-v0)")


class MemoryR1Agent:
    """Extract facts, manage the bank with one operation per fact, answer with distillation.

    Args:
        extractor, manager, answerer: the three components (see the module docstring).
        answer_format: "memory_r1" (`**Answer:**` after the selected memories) or "plain".
        fact_fallback: "none" (unparseable facts: store nothing, as mem0) or "turn" (store the
            turn itself as the one fact).
        name: the agent's name in results.
    """

    def __init__(self, extractor: LLMComponent, manager: LLMComponent, answerer: LLMComponent,
                 *, answer_format: str = "memory_r1", fact_fallback: str = "none",
                 name: str = "memory_r1"):
        if answer_format not in ANSWER_FORMATS:
            raise ConfigError(f"answer_format={answer_format!r}; choose one of {ANSWER_FORMATS}")
        if fact_fallback not in FACT_FALLBACKS:
            raise ConfigError(f"fact_fallback={fact_fallback!r}; choose one of {FACT_FALLBACKS}")
        self.extractor = extractor
        self.manager = manager
        self.answerer = answerer
        self.answer_format = answer_format
        self.fact_fallback = fact_fallback
        self.name = name

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """The manager's operations (write step) or the extracted answer (answer step)."""
        if observation["phase"] == "write":
            require_memory_r1(observation, self.name)
            return await self._write(observation, ctx)
        completion = await self.answerer(
            ctx, memories=format_memories(observed_memories(observation, self.name), "memory_r1"),
            question=observation["question"])
        return extract_answer(completion.text, self.answer_format)

    async def _write(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        turn = dialogue_lines(observation["dialogue"])
        extracted = await self.extractor(ctx, date=observation.get("date", ""), dialogue=turn)
        facts = parse_facts(extracted.text)
        if facts is None and self.fact_fallback == "turn" and turn:
            facts = [turn]
        if not facts:
            return EMPTY_WRITE
        related = format_memories(observed_memories(observation, self.name), "memory_r1_manager")
        managed = await self.manager(ctx, memories=related,
                                     facts=json.dumps(facts, ensure_ascii=False))
        return managed.text if managed.text.strip() else EMPTY_WRITE
