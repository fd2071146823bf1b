"""LoCoMo (Maharana et al. 2024): ten long two-speaker conversations with question answering.

The release (`locomo10.json`, CC BY-NC 4.0: load it from a path, never bundle it) is a JSON list
of samples: `sample_id`, `conversation` (`speaker_a`, `speaker_b`, `session_<n>` lists of turns
`{speaker, dia_id, text[, img_url, blip_caption, query]}`, `session_<n>_date_time`), `qa`
(`question`, `answer` or `adversarial_answer`, `evidence` dia_ids, `category` 1..5), plus
summaries that this loader does not use.

What the loader does with the release's quirks:

- A `session_<n>_date_time` without a `session_<n>` list (conv-26 lists 35 dates for 19
  sessions) is skipped, and so is a session whose list is empty.
- Answers that are ints (years) are stringified.
- Category 5 (adversarial) questions are left out unless `include_adversarial=True`; they carry
  `adversarial_answer`, and their gold answer is LoCoMo's "Not mentioned in the conversation"
  (`abstention=True`), unless the release gives an `answer` too (two questions do: "No").
- **Evidence rule.** Each evidence string is split on ";", "," and whitespace ("D8:6; D9:17",
  "D9:1 D4:4 D4:6"); each piece is read as `D<session>:<turn>` tolerating a colon after "D"
  and leading zeros ("D:11:26" -> "D11:26", "D30:05" -> "D30:5"). A piece that then names a
  turn of the conversation is kept; one that does not ("D", or "D10:19" when session 10 has
  fewer turns) is dropped and counted as *unresolved*; a malformed string that yields at least
  one kept turn counts as *repaired*. The counts are in each conversation's metadata
  (`evidence_repaired`, `evidence_unresolved`), and each question keeps `raw_evidence` and
  `unresolved_evidence` in its metadata. On the release, 9 evidence strings are malformed: 6
  are repaired and 3 pieces are unresolved (tests/data/test_locomo.py checks these numbers).
- `answer_after` is the kept evidence turn that comes last in stream order (None when no
  evidence resolves: 4 questions have none at all).

Memory-R1's split (by conversation, categories 1-4): train = conv-26 (152 questions),
validation = conv-30 (81), test = the other eight (1,307).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from memgym.data.dialogue import (
    LOCOMO_CATEGORIES,
    Conversation,
    DialogueQuestion,
    DialogueSession,
    DialogueTurn,
)
from memgym.errors import DataError, unknown_name

__all__ = ["load_locomo", "parse_locomo_sample", "resolve_evidence", "LOCOMO_SPLITS",
           "LOCOMO_ABSTAIN_ANSWER"]

LOCOMO_SPLITS: dict[str, tuple[str, ...] | None] = {
    "train": ("conv-26",), "validation": ("conv-30",), "test": None}
"""Memory-R1's split by sample_id; "test" (None) is every conversation not in the other two."""

LOCOMO_ABSTAIN_ANSWER = "Not mentioned in the conversation"
"""LoCoMo's gold answer for adversarial (category 5) questions, as its evaluation scores them."""

_SESSION_KEY = re.compile(r"session_(\d+)")
_EVIDENCE_PIECE = re.compile(r"D:?0*(\d+):0*(\d+)")
_MAX_SESSION_DIGITS = 9
_TURN_FIELDS = ("speaker", "dia_id", "text")
_TURN_METADATA = ("img_url", "blip_caption", "query", "re-download")


def load_locomo(path: str | Path, split: str | None = None,
                include_adversarial: bool = False) -> list[Conversation]:
    """Load LoCoMo conversations with their questions from the release's JSON file.

    Args:
        path: the release file (`locomo10.json`) or a file in its schema.
        split: None for every conversation, or Memory-R1's "train" (conv-26), "validation"
            (conv-30) or "test" (the others).
        include_adversarial: keep category 5 questions (left out by default, as in Memory-R1).

    Raises:
        DataError: the file is missing or not JSON, or a sample, session, turn or question is
            malformed (the message names the file, sample, session and turn at fault).
        UnknownNameError: `split` is not one of LOCOMO_SPLITS.
    """
    if split is not None and split not in LOCOMO_SPLITS:
        raise unknown_name("LoCoMo split", str(split), LOCOMO_SPLITS)
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"LoCoMo file {str(path)!r} does not exist; get locomo10.json with "
                        "`memgym data get locomo` (into memgym's data cache, where the envs "
                        "and the locomo board look by default) or pass its path")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise DataError(f"{file}: the top level must be a JSON list of samples, got "
                        f"{type(data).__name__}")
    conversations = [parse_locomo_sample(sample, where=f"{file} sample {i}",
                                         include_adversarial=include_adversarial,
                                         source=str(file))
                     for i, sample in enumerate(data)]
    ids = [c.conversation_id for c in conversations]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{file}: sample_id {dup!r} appears twice; sample ids must be unique")
    if split is None:
        return conversations
    named = LOCOMO_SPLITS[split]
    held_out = {sid for members in LOCOMO_SPLITS.values() if members for sid in members}
    chosen = [c for c in conversations
              if (c.conversation_id in named if named else c.conversation_id not in held_out)]
    return [dataclasses.replace(c, metadata={**c.metadata, "split": split}) for c in chosen]


def parse_locomo_sample(sample: Any, *, where: str = "sample", include_adversarial: bool = False,
                        source: str = "") -> Conversation:
    """Build one Conversation from a LoCoMo sample (a dict in the release's schema).

    `where` prefixes error messages (the loader passes "<file> sample <i>").
    """
    if not isinstance(sample, Mapping):
        raise DataError(f"{where}: must be an object with 'sample_id', 'conversation' and 'qa', "
                        f"got {type(sample).__name__}")
    sample_id = sample.get("sample_id")
    if not isinstance(sample_id, str) or not sample_id:
        raise DataError(f"{where}: field 'sample_id' must be a non-empty string, got "
                        f"{sample_id!r:.60}")
    where = f"{where} (sample_id {sample_id!r})"
    conversation = sample.get("conversation")
    if not isinstance(conversation, Mapping):
        raise DataError(f"{where}: field 'conversation' must be an object of speakers and "
                        "sessions")
    speakers = tuple(_speaker(conversation, key, where) for key in ("speaker_a", "speaker_b"))
    sessions = _sessions(conversation, speakers, where)
    if not sessions:
        raise DataError(f"{where}: 'conversation' has no non-empty session_<n> list")
    order = {t.dia_id: i for i, t in enumerate(t for s in sessions for t in s.turns)}
    session_of = {t.dia_id: s.session_id for s in sessions for t in s.turns}
    qa = sample.get("qa", [])
    if not isinstance(qa, list):
        raise DataError(f"{where}: field 'qa' must be a list of questions")
    questions: list[DialogueQuestion] = []
    repaired = unresolved = 0
    for i, item in enumerate(qa):
        question, fixed, missing = _question(item, i, sample_id, order, session_of,
                                             f"{where} qa {i}")
        repaired += fixed
        unresolved += missing
        if question.metadata["category_number"] != 5 or include_adversarial:
            questions.append(question)
    metadata = {"dataset": "locomo", "sample_id": sample_id, "evidence_repaired": repaired,
                "evidence_unresolved": unresolved}
    return Conversation(sample_id, speakers, sessions, tuple(questions), source, metadata)


def resolve_evidence(raw: Sequence[Any], known: Collection[str]) -> tuple[
        tuple[str, ...], int, tuple[str, ...]]:
    """Apply the module's evidence rule to one question's evidence list.

    Args:
        raw: the release's `evidence` list (strings, possibly malformed).
        known: the conversation's dia_ids.

    Returns:
        (the kept dia_ids in first-seen order without repeats, how many malformed strings
        yielded at least one kept dia_id (*repaired*), the pieces dropped because no turn of
        the conversation matches them (*unresolved*)).
    """
    kept: dict[str, None] = {}
    repaired = 0
    dropped: list[str] = []
    for entry in raw:
        text = str(entry)
        if text in known:
            kept.setdefault(text, None)
            continue
        found = False
        for piece in re.split(r"[;,\s]+", text.strip()):
            if not piece:
                continue
            match = _EVIDENCE_PIECE.fullmatch(piece)
            fixed = f"D{int(match[1])}:{int(match[2])}" if match else piece
            if fixed in known:
                kept.setdefault(fixed, None)
                found = True
            else:
                dropped.append(piece)
        repaired += found
    return tuple(kept), repaired, tuple(dropped)


# -- pieces ---------------------------------------------------------------------------------------

def _speaker(conversation: Mapping[str, Any], key: str, where: str) -> str:
    name = conversation.get(key)
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{where}: conversation field {key!r} must be the speaker's name, got "
                        f"{name!r:.60}")
    return name


def _sessions(conversation: Mapping[str, Any], speakers: tuple[str, ...],
              where: str) -> tuple[DialogueSession, ...]:
    numbers = sorted(_session_number(m[1], where) for key in conversation
                     if (m := _SESSION_KEY.fullmatch(key)))
    sessions: list[DialogueSession] = []
    seen: set[str] = set()
    for n in numbers:
        turns_raw = conversation[f"session_{n}"]
        at = f"{where} session {n}"
        if not isinstance(turns_raw, list):
            raise DataError(f"{at}: 'session_{n}' must be a list of turns, got "
                            f"{type(turns_raw).__name__}")
        if not turns_raw:
            continue
        date_time = conversation.get(f"session_{n}_date_time")
        if not isinstance(date_time, str) or not date_time.strip():
            raise DataError(f"{at}: 'session_{n}_date_time' must be the session's date-time "
                            f"string (e.g. '1:56 pm on 8 May, 2023'), got {date_time!r:.60}")
        turns = tuple(_turn(raw, n, j, speakers, seen, at) for j, raw in enumerate(turns_raw))
        sessions.append(DialogueSession(n, date_time, turns, session_id=f"session_{n}"))
    return tuple(sessions)


def _session_number(digits: str, where: str) -> int:
    # int() of a 4,301-digit string raises a bare ValueError (Python's digit limit)
    if len(digits) > _MAX_SESSION_DIGITS:
        raise DataError(f"{where}: conversation field 'session_{digits[:12]}...' names a session "
                        f"number of {len(digits)} digits; session numbers are small integers "
                        "(session_1, session_2, ...)")
    return int(digits)


def _turn(raw: Any, session: int, j: int, speakers: tuple[str, ...], seen: set[str],
          where: str) -> DialogueTurn:
    at = f"{where} turn {j}"
    if not isinstance(raw, Mapping):
        raise DataError(f"{at}: must be an object with 'speaker', 'dia_id' and 'text', got "
                        f"{type(raw).__name__}")
    if isinstance(raw.get("dia_id"), str):
        at = f"{at} (dia_id {raw['dia_id']!r})"
    for name in _TURN_FIELDS:
        value = raw.get(name)
        if not isinstance(value, str):
            raise DataError(f"{at}: field {name!r} must be a string, got {value!r:.60}")
    if raw["speaker"] not in speakers:
        raise DataError(f"{at}: speaker {raw['speaker']!r} is neither speaker_a nor speaker_b "
                        f"{speakers}")
    if raw["dia_id"] in seen:
        raise DataError(f"{at}: dia_id {raw['dia_id']!r} appears twice in the conversation")
    seen.add(raw["dia_id"])
    metadata = {k: raw[k] for k in _TURN_METADATA if k in raw}
    return DialogueTurn(raw["dia_id"], raw["speaker"], raw["text"], session, metadata)


def _question(item: Any, i: int, sample_id: str, order: Mapping[str, int],
              session_of: Mapping[str, str], where: str) -> tuple[DialogueQuestion, int, int]:
    if not isinstance(item, Mapping):
        raise DataError(f"{where}: must be an object with 'question', 'answer', 'evidence' and "
                        f"'category', got {type(item).__name__}")
    text = item.get("question")
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: field 'question' must be a non-empty string, got {text!r:.60}")
    number = item.get("category")
    if isinstance(number, bool) or not isinstance(number, int) or number not in LOCOMO_CATEGORIES:
        raise DataError(f"{where}: field 'category' must be one of {sorted(LOCOMO_CATEGORIES)}, "
                        f"got {number!r:.60}")
    raw_evidence = item.get("evidence", [])
    if isinstance(raw_evidence, str) or not isinstance(raw_evidence, list):
        raise DataError(f"{where}: field 'evidence' must be a list of dia_ids, got "
                        f"{raw_evidence!r:.60}")
    evidence, repaired, dropped = resolve_evidence(raw_evidence, order)
    adversarial = item.get("adversarial_answer")
    if "answer" in item and item["answer"] is not None:
        answer = _answer_text(item["answer"], where, "answer")
        abstention = False
    elif number == 5:
        answer, abstention = LOCOMO_ABSTAIN_ANSWER, True
    else:
        raise DataError(f"{where}: field 'answer' is missing (only category 5 questions may "
                        "omit it)")
    if number == 5 and adversarial is not None:
        adversarial = _answer_text(adversarial, where, "adversarial_answer")
    answer_after = max(evidence, key=order.__getitem__) if evidence else None
    question = DialogueQuestion(
        question_id=f"{sample_id}:q{i}", question=text, answers=(answer,),
        category=LOCOMO_CATEGORIES[number], evidence=evidence,
        evidence_sessions=tuple(dict.fromkeys(session_of[e] for e in evidence)),
        answer_after=answer_after, abstention=abstention,
        adversarial_answer=adversarial if number == 5 else None,
        metadata={"category_number": number, "raw_evidence": tuple(map(str, raw_evidence)),
                  "unresolved_evidence": dropped})
    return question, repaired, len(dropped)


def _answer_text(value: Any, where: str, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where}: field {name!r} must be a string or a number, got "
                        f"{value!r:.60}")
    if isinstance(value, float) and not math.isfinite(value):
        # json reads NaN/Infinity; str() would make "nan" a gold answer
        raise DataError(f"{where}: field {name!r} is {value!r}, not an answer; give the "
                        "answer as a string or a finite number")
    return str(value)
