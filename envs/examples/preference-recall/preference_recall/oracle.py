"""An LLM-free oracle policy for `PreferenceRecall-v0`, run by memgym's scripted_policy agent.

    memgym eval --env preference_recall:PreferenceRecall-v0 \\
        --agent agents/scripted_oracle.yaml --episodes 8 --out runs/pref-oracle

It keeps only the asked category's latest value stated by the user (friends' tastes and other
categories are skipped), so it must score accuracy 1: a check that every task is solvable from
the stream and that the scoring is right.
"""

from __future__ import annotations

import re

_CATEGORY = re.compile(r"current favourite (\w+)\?")


def _category(question: str) -> str:
    match = _CATEGORY.search(question)
    return match.group(1) if match else ""


def _statements(category: str) -> re.Pattern[str]:
    category = re.escape(category)
    return re.compile(rf"User: (?:I really like (.+?) as my favourite {category}\."
                      rf"|Actually, I now prefer (.+?) for {category}\.)")


def _read(memory: str, category: str) -> tuple[str, str]:
    """(the latest value, the unfinished last line) held in an oracle memory."""
    value, partial = "", ""
    for line in memory.split("\n"):
        if line.startswith(f"{category}: "):
            value = line[len(category) + 2:]
        elif line.startswith("partial: "):
            partial = line[len("partial: "):]
    return value, partial


def _scan(text: str, category: str, value: str) -> str:
    for match in _statements(category).finditer(text):
        value = match.group(1) or match.group(2)
    return value


def oracle_memory(question: str, memory: str, chunk: str) -> str:
    """The new memory: "<category>: <latest value>" and a "partial: <text>" line.

    The env cuts chunks at a token count, so a chat line can end one chunk and finish in the
    next: the last line of each chunk is carried over as "partial: ..." and read with the next.
    """
    category = _category(question)
    value, partial = _read(memory, category)
    text = partial + chunk
    done, _, tail = text.rpartition("\n\n")
    value = _scan(done, category, value)
    lines = [f"{category}: {value}"] if value else []
    if tail.strip():
        lines.append("partial: " + tail)  # a chat line holds no newline
    return "\n".join(lines)


def oracle_answer(question: str, memory: str) -> str:
    """The latest value (the agent puts it in \\boxed{} with box_answer: true)."""
    category = _category(question)
    value, partial = _read(memory, category)
    return _scan(partial, category, value)
