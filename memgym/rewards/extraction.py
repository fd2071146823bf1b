"""Answer extraction: the text a scorer grades, read out of a completion per answer format.

Each format has one extractor, and the env and the agents use the same one, so what a prompt asks
for is exactly what is read back. The boxed and "answer is" extractors are MemAgent's evaluation
parsers (taskutils/memory_eval/utils/__init__.py, applied as ruler_hqa.py applies them):

  - `"boxed"`: `extract_boxed_answer` (MemAgent's `recurrent-boxed` and `boxed` clients): the last
    `\\boxed ` (space form, up to the next `$`) when the text has one, else the last `\\boxed{...}`
    with balanced braces; an unclosed last box gives None (no fallback to an earlier box). Where
    MemAgent finds an `\\fbox{...}` or `\\boxedX...` its assertion aborts the whole evaluation;
    here it is None (no answer).
  - `"answer_is"`: `extract_answer` (MemAgent's released `recurrent` client, the one its
    RL-MemoryAgent numbers come from): every `*` removed; None unless the text contains the
    lowercase phrase "the answer is" (case-sensitive, as in MemAgent: "The answer is X" alone
    gives None, "Therefore, the answer is X" gives "X"); else the text after its last occurrence,
    stripped, DeepSeek's `<｜Assistant｜>` and `<｜end▁of▁sentence｜>` removed, then periods
    stripped from both ends.
  - `"plain"`: the whole text, stripped (memgym's, for RULER-style answers).

`extract_answer` first does what MemAgent's pipeline does before the parser: the response is
stripped, reasoning up to the last `</think>` is dropped (`extract_solution`), and when nothing
follows it the whole response is parsed instead.
"""

from __future__ import annotations

from collections.abc import Callable

from memgym.errors import ConfigError

__all__ = [
    "ANSWER_FORMATS",
    "EXTRACTORS",
    "check_answer_format",
    "extract_answer",
    "extract_answer_is",
    "extract_boxed",
    "extract_plain",
    "last_boxed_only_string",
]

ANSWER_FORMATS: dict[str, str] = {
    "boxed": "Put the final answer in \\boxed{}.",
    "answer_is": 'Format the response as follows "Therefore, the answer is (insert answer here)".',
    "plain": "Reply with the answer only.",
}
"""The answer formats an env can expect, with a one-line instruction an agent may show its model."""

_DEEPSEEK_MARKERS = ("<｜Assistant｜>", "<｜end▁of▁sentence｜>")


def last_boxed_only_string(text: str) -> str | None:
    """The last box of `text` with its wrapper (`\\boxed{..}`, `\\boxed ..` or `\\fbox{..}`), or None.

    MemAgent's `last_boxed_only_string` (identical in its eval utils and its training reward):
    the space form wins whenever the text holds `\\boxed ` anywhere; otherwise the last
    `\\boxed` (or, with none, the last `\\fbox`) up to its balanced closing brace.
    """
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[start:j + 1]
    return None


def remove_boxed(boxed: str) -> str | None:
    """The content of a `last_boxed_only_string` result; None where MemAgent's asserts fail."""
    if "\\boxed " in boxed:
        return boxed[len("\\boxed "):] if boxed.startswith("\\boxed ") else None
    if boxed.startswith("\\boxed{") and boxed.endswith("}"):
        return boxed[len("\\boxed{"):-1]
    return None  # \fbox{...} or \boxedX...: MemAgent raises here


def extract_boxed(text: str) -> str | None:
    """The content of the last box (MemAgent's `extract_boxed_answer`), or None (see module doc)."""
    boxed = last_boxed_only_string(text)
    return None if boxed is None else remove_boxed(boxed)


def extract_answer_is(text: str) -> str | None:
    """The text after the last "the answer is" (MemAgent's `extract_answer`), or None."""
    text = text.replace("*", "")
    phrase = "the answer is"
    if phrase not in text:
        return None
    answer = text.rsplit(phrase, 1)[-1].strip()
    for marker in _DEEPSEEK_MARKERS:
        answer = answer.replace(marker, "")
    return answer.strip().strip(".").strip()


def extract_plain(text: str) -> str | None:
    """The whole text, stripped; None when nothing is left."""
    return text.strip() or None


EXTRACTORS: dict[str, Callable[[str], str | None]] = {
    "boxed": extract_boxed, "answer_is": extract_answer_is, "plain": extract_plain,
}
"""The extractor of each answer format."""


def check_answer_format(answer_format: str, key: str = "answer_format") -> str:
    """Return `answer_format` if it is known; else a ConfigError naming `key` and the choices."""
    if answer_format not in EXTRACTORS:
        raise ConfigError(f"{key}={answer_format!r}; choose one of {', '.join(EXTRACTORS)}")
    return answer_format


def _after_reasoning(response: str) -> str:
    # MemAgent's extract_solution (FORCE_THINK unset): the text after the last </think>.
    return response.split("</think>")[-1].strip() if "</think>" in response else response


def extract_answer(text: str, answer_format: str) -> str | None:
    """The answer of completion `text` in `answer_format`, as MemAgent's eval reads it, or None.

    An empty string is possible (`\\boxed{}`, "the answer is."); scorers treat it as no answer.
    """
    response = text.strip()
    body = _after_reasoning(response)
    return EXTRACTORS[check_answer_format(answer_format)](body if body else response)
