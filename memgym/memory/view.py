"""Memories as data: the entries an observation shows, and one formatter for every prompt style.

The dialogue env puts the memories it shows into its observation as structured entries
(`observation["memory_entries"]`, a tuple of `ShownMemory` dicts: id, text, speaker, session,
created_at, updated_at, before), and agents read those, never the rendered text. Prompts are
made from the entries by `format_memories(entries, style)`, whose styles are the layouts the
papers print:

| style               | layout (one entry)                                         | used by |
|---------------------|------------------------------------------------------------|---------|
| `memgym`            | `[3] (Ana; session 2; 8 May, 2023; updated 9 May, 2023) text` (+ `    (before: old)`) | the env's `memories` text field |
| `memory_r1`         | `Memories for user Ana:` then `- 9 May, 2023: text`        | Memory-R1's answer agent (v5 Figure 11), mem0's ANSWER_PROMPT |
| `memory_r1_manager` | `[{"id": "3", "text": "text"}, ...]`                       | Memory-R1's memory manager (mem0's update prompt) |
| `rmm_update`        | `[0] text` (0-based positions)                             | RMM's Add()/Merge(index, ...) decision |
| `rmm_answer`        | `[0] (Ana; session 2; 8 May, 2023) text`                   | RMM's answer with [i, j] citations |
| `id_text`           | `[3] text`                                                 | the tiny Memory-R1 quickstart's manager |

A memory text is data: whatever it holds (newlines, a forged `[77] (Mallory; ...)` line), it
cannot change the ids, speakers, dates or number of entries an agent reads from the entries,
and every style writes a text (and speaker, date) on one line, with its line breaks turned into
spaces, so a prompt shows exactly one entry per memory too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

from memgym.errors import ConfigError, unknown_name
from memgym.memory.bank import MemoryEntry

__all__ = ["MEMORY_STYLES", "SHOWN_FIELDS", "ShownMemory", "format_memories", "observed_memories",
           "shown_memories"]


class ShownMemory(TypedDict):
    """One memory as an observation shows it (all text; "" where the bank has nothing)."""

    id: str
    """The bank id to name in operations and citations."""
    text: str
    """What is remembered (cut to the env's `max_entry_chars`)."""
    speaker: str
    """Whose memory it is ("" for none: entries of a whole session)."""
    session: str
    """The 1-based session it was written in, as digits ("" for none)."""
    created_at: str
    """When it was added (the session's date-time as the source writes it)."""
    updated_at: str
    """When an UPDATE or MERGE last changed it (= created_at until then)."""
    before: str
    """Its text before the last change ("" if it never changed)."""


SHOWN_FIELDS = tuple(ShownMemory.__annotations__)
"""The keys of a ShownMemory, in order."""

_SHORT = 256  # speakers, sessions and dates are cut there (the env's short-field bound)


def _cut(text: str | None, limit: int | None) -> str:
    text = "" if text is None else str(text)
    return text if limit is None else text[:limit]


def shown_memories(entries: Sequence[MemoryEntry], max_entry_chars: int | None = None
                   ) -> tuple[ShownMemory, ...]:
    """Bank entries as observation data, texts (current and previous) cut to `max_entry_chars`."""
    return tuple(ShownMemory(
        id=_cut(e.id, _SHORT), text=_cut(e.text, max_entry_chars),
        speaker=_cut(e.speaker, _SHORT), session="" if e.session is None else str(e.session),
        created_at=_cut(e.created_at, _SHORT), updated_at=_cut(e.updated_at, _SHORT),
        before=_cut(e.history[-1] if e.history else "", max_entry_chars)) for e in entries)


def observed_memories(observation: Mapping[str, Any], agent: str = "the agent"
                      ) -> tuple[ShownMemory, ...]:
    """The memories an observation shows, as data (its `memory_entries`).

    Raises:
        ConfigError: the observation has no `memory_entries` (not a dialogue env's; `agent`
            names who needed them).
    """
    entries = observation.get("memory_entries")
    if entries is None:
        raise ConfigError(f"{agent} reads the memories as data (observation['memory_entries'], "
                          "a tuple of memgym.memory.ShownMemory); this observation has none: "
                          "play it on a dialogue env (DialogueMemoryEnv) or pass "
                          "memory_entries=shown_memories(entries)")
    return tuple(entries)


def _line(text: str) -> str:
    """`text` on one line: every line break (\\n, \\r, \\u2028, ...) becomes a space."""
    return " ".join(text.splitlines()) if text else ""


def _facts(m: Mapping[str, str]) -> str:
    """"Ana; session 2; 8 May, 2023; updated 9 May, 2023": who, which session, when."""
    facts = [_line(m["speaker"]) or "-"]
    if m["session"]:
        facts.append(f"session {_line(m['session'])}")
    if m["created_at"]:
        facts.append(_line(m["created_at"]))
    if m["updated_at"] and m["updated_at"] != m["created_at"]:
        facts.append(f"updated {_line(m['updated_at'])}")
    return "; ".join(facts)


def _memgym(memories: Sequence[Mapping[str, str]], numbered: bool) -> str:
    if not memories:
        return "(no memories)"
    lines = []
    for position, m in enumerate(memories):
        prefix = f"#{position} " if numbered else ""
        lines.append(f"{prefix}[{_line(m['id'])}] ({_facts(m)}) {_line(m['text'])}")
        if m["before"]:  # what an UPDATE/MERGE replaced: "where did Ana live before ..."
            lines.append(f"    (before: {_line(m['before'])})")
    return "\n".join(lines)


def _memory_r1(memories: Sequence[Mapping[str, str]], numbered: bool) -> str:
    groups: dict[str, list[Mapping[str, str]]] = {}
    for m in memories:
        groups.setdefault(_line(m["speaker"]), []).append(m)
    if not groups:
        return "Memories: (none)"
    order = [s for s in groups if s] + ([""] if "" in groups else [])
    blocks = []
    for speaker in order:
        lines = []
        for m in groups[speaker]:
            when = _line(m["updated_at"] or m["created_at"])
            lines.append(f"- {when}: {_line(m['text'])}" if when else f"- {_line(m['text'])}")
        title = f"Memories for user {speaker}:" if speaker else "Memories without a speaker:"
        blocks.append(title + "\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def _manager(memories: Sequence[Mapping[str, str]], numbered: bool) -> str:
    # JSON escapes line breaks itself: one string per memory whatever it holds
    return json.dumps([{"id": m["id"], "text": m["text"]} for m in memories], ensure_ascii=False)


def _rmm_update(memories: Sequence[Mapping[str, str]], numbered: bool) -> str:
    return "\n".join(f"[{i}] {_line(m['text'])}" for i, m in enumerate(memories)) \
        or "(no memories)"


def _rmm_answer(memories: Sequence[Mapping[str, str]], numbered: bool) -> str:
    return "\n".join(f"[{i}] ({_facts(m)}) {_line(m['text'])}"
                     for i, m in enumerate(memories)) or "(no memories)"


def _id_text(memories: Sequence[Mapping[str, str]], numbered: bool) -> str:
    return "\n".join(f"[{_line(m['id'])}] {_line(m['text'])}" for m in memories) or "(none)"


MEMORY_STYLES: dict[str, Callable[[Sequence[Mapping[str, str]], bool], str]] = {
    "memgym": _memgym,
    "memory_r1": _memory_r1,
    "memory_r1_manager": _manager,
    "rmm_update": _rmm_update,
    "rmm_answer": _rmm_answer,
    "id_text": _id_text,
}
"""The prompt layouts `format_memories` writes, by name (see the module docstring)."""


def format_memories(memories: Sequence[Mapping[str, Any]], style: str = "memgym", *,
                    numbered: bool = False) -> str:
    """The shown memories as a prompt block in a protocol's style.

    Args:
        memories: `ShownMemory` entries (an observation's `memory_entries`), in the order to show.
        style: one of MEMORY_STYLES (see the module docstring for each layout).
        numbered: `memgym` style only: start each line with its 0-based position, `#0 [3] ...`
            (RMM's write steps, whose `Merge(index, ...)` names that position).

    Raises:
        UnknownNameError: an unknown style (the message names the nearest one).
    """
    if style not in MEMORY_STYLES:
        raise unknown_name("memory style", str(style), MEMORY_STYLES)
    return MEMORY_STYLES[style](list(memories), numbered)
