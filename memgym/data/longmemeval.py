"""LongMemEval (Wu et al. 2025): one question per chat history, over the S, M and oracle files.

Each row of `longmemeval_s_cleaned.json`, `longmemeval_m_cleaned.json` or
`longmemeval_oracle.json` (a JSON list; JSONL and parquet in the same schema work too) is:
`question_id` (abstention questions end in `_abs`), `question_type`, `question`, `answer` (a
string, sometimes a number), `question_date`, `haystack_session_ids`, `haystack_dates` and
`haystack_sessions` (parallel lists: a session is a list of turns `{role, content}`, with
`has_answer: true` on the turns that hold the answer), and `answer_session_ids`.

Each row becomes one Conversation holding that question's haystack in file order (the release
sorts it by date): session `index` is the 1-based position in the haystack, `session_id` the
haystack id, `date_time` the haystack date; turns are `s<session>:<turn>` (1-based), spoken by
"user" or "assistant", with `has_answer` in their metadata. The question's `evidence` is its
`has_answer` turns, `evidence_sessions` its `answer_session_ids`, and `answer_after` the last
`has_answer` turn in stream order, or, when the answer sessions mark no turn, the last turn of
the last answer session (None if no answer session is in the haystack). Empty sessions are
skipped (their index is not reused).

Hub ids are fetched with `huggingface_hub.hf_hub_download` and then parsed exactly as a local
file (the release files are single JSON lists; `xiaowu0162/longmemeval` names them without a
suffix).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from memgym.data.dialogue import Conversation, DialogueQuestion, DialogueSession, DialogueTurn
from memgym.errors import DataError, unknown_name

__all__ = ["LONGMEMEVAL_HUB_FILES", "LONGMEMEVAL_HUB_ID", "LONGMEMEVAL_QUESTION_TYPES",
           "load_longmemeval", "parse_longmemeval_row"]

LONGMEMEVAL_HUB_ID = "xiaowu0162/longmemeval-cleaned"
"""The default hub dataset: the cleaned release (the paper's authors' fixed version)."""

LONGMEMEVAL_HUB_FILES: dict[str, dict[str, str]] = {
    "xiaowu0162/longmemeval-cleaned": {"s": "longmemeval_s_cleaned.json",
                                       "m": "longmemeval_m_cleaned.json",
                                       "oracle": "longmemeval_oracle.json"},
    "xiaowu0162/longmemeval": {"s": "longmemeval_s", "m": "longmemeval_m",
                               "oracle": "longmemeval_oracle"},
}
"""The file of each variant in the known hub datasets (other ids need `hub_file`)."""

LONGMEMEVAL_QUESTION_TYPES = ("single-session-user", "single-session-assistant",
                              "single-session-preference", "multi-session", "knowledge-update",
                              "temporal-reasoning")
"""The release's question types (the `category` of each question)."""

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_LIST_FIELDS = ("haystack_session_ids", "haystack_dates", "haystack_sessions")


def load_longmemeval(path_or_hub_id: str | Path | Iterable[Mapping[str, Any]], *,
                     variant: str = "s", hub_file: str | None = None,
                     question_types: Collection[str] | None = None,
                     include_abstention: bool = True,
                     limit: int | None = None) -> list[Conversation]:
    """Load LongMemEval questions, one Conversation each, from a file, a hub id or rows.

    Args:
        path_or_hub_id: a LongMemEval file (JSON list, JSONL or parquet), a hub dataset id
            ("xiaowu0162/longmemeval-cleaned"), or already-loaded rows (dicts).
        variant: for a known hub id, which file: "s", "m" or "oracle".
        hub_file: the file to fetch from a hub id (overrides `variant`).
        question_types: keep only these question types (None: all).
        include_abstention: keep the `_abs` questions.
        limit: keep at most this many questions (after filtering), in file order.

    Raises:
        DataError: the file is missing or malformed (the message names the row, question_id,
            session and turn at fault), or the hub file could not be fetched.
        UnknownNameError: an unknown `variant` or question type.
    """
    if question_types is not None:
        for name in question_types:
            if name not in LONGMEMEVAL_QUESTION_TYPES:
                raise unknown_name("LongMemEval question type", name, LONGMEMEVAL_QUESTION_TYPES)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise DataError(f"limit={limit!r} must be a non-negative integer or None")
    source, rows = _rows(path_or_hub_id, variant, hub_file)
    conversations: list[Conversation] = []
    for where, row in rows:
        if limit is not None and len(conversations) >= limit:
            break
        conversation = parse_longmemeval_row(row, where=where, source=source)
        question = conversation.questions[0]
        if question_types is not None and question.category not in question_types:
            continue
        if question.abstention and not include_abstention:
            continue
        conversations.append(conversation)
    return conversations


def parse_longmemeval_row(row: Any, *, where: str = "row", source: str = "") -> Conversation:
    """Build one Conversation (haystack sessions + its single question) from a LongMemEval row.

    `where` prefixes error messages (the loader passes "<file> index <i>").
    """
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: must be an object in LongMemEval's schema, got "
                        f"{type(row).__name__}")
    question_id = _string(row, "question_id", where)
    where = f"{where} (question_id {question_id!r})"
    lists = {}
    for name in _LIST_FIELDS:
        value = row.get(name)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise DataError(f"{where}: field {name!r} must be a list, got {value!r:.60}")
        lists[name] = list(value)
    lengths = {name: len(v) for name, v in lists.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"{where}: fields {', '.join(_LIST_FIELDS)} must be parallel lists of "
                        f"equal length, got lengths {lengths}")
    sessions: list[DialogueSession] = []
    speakers: dict[str, None] = {}
    for k, (session_id, date, turns) in enumerate(zip(*lists.values(), strict=True), 1):
        at = f"{where} session {k}"
        if not isinstance(session_id, str) or not isinstance(date, str):
            raise DataError(f"{at}: haystack_session_ids[{k - 1}] and haystack_dates[{k - 1}] "
                            f"must be strings, got {session_id!r:.40} and {date!r:.40}")
        at = f"{at} (session_id {session_id!r})"
        if isinstance(turns, (str, bytes)) or not isinstance(turns, Sequence):
            raise DataError(f"{at}: haystack_sessions[{k - 1}] must be a list of turns, got "
                            f"{type(turns).__name__}")
        parsed = tuple(_turn(turn, k, j, f"{at} turn {j}") for j, turn in enumerate(turns))
        if parsed:
            speakers.update(dict.fromkeys(t.speaker for t in parsed))
            sessions.append(DialogueSession(k, date, parsed, session_id=session_id))
    question = _question(row, question_id, sessions, where)
    metadata = {"dataset": "longmemeval", "question_type": question.category,
                "num_haystack_sessions": lengths["haystack_sessions"]}
    return Conversation(question_id, tuple(speakers), tuple(sessions), (question,), source,
                        metadata)


# -- pieces ---------------------------------------------------------------------------------------

def _rows(source: Any, variant: str, hub_file: str | None) -> tuple[str, Iterable[tuple[str, Any]]]:
    from memgym.data.hotpotqa import iter_rows  # the shared JSON / JSONL / parquet row reader

    if not isinstance(source, (str, Path)):
        return type(source).__name__, iter_rows(source)
    path = Path(source).expanduser()
    if path.exists():
        return str(path), iter_rows(path)
    text = str(source)
    if not _HUB_ID.fullmatch(text) or text.endswith((".json", ".jsonl", ".parquet")):
        raise DataError(f"LongMemEval file {text!r} does not exist; pass a local file "
                        "(longmemeval_s_cleaned.json, ...) or a hub id such as "
                        f"{LONGMEMEVAL_HUB_ID!r}")
    local = _download(text, variant, hub_file)
    return f"{text}/{local.name}", iter_rows(local)


def _download(hub_id: str, variant: str, hub_file: str | None) -> Path:
    if hub_file is None:
        files = LONGMEMEVAL_HUB_FILES.get(hub_id)
        if files is None:
            raise DataError(f"hub id {hub_id!r} is not a known LongMemEval dataset "
                            f"({', '.join(LONGMEMEVAL_HUB_FILES)}); pass hub_file= to name the "
                            "file to fetch")
        if variant not in files:
            raise unknown_name("LongMemEval variant", variant, files)
        hub_file = files[variant]
    from huggingface_hub import hf_hub_download

    try:
        local = hf_hub_download(repo_id=hub_id, filename=hub_file, repo_type="dataset")
    except Exception as exc:  # offline, unknown repo or file: the hub client raises many types
        raise DataError(f"could not fetch {hub_file!r} from the hub dataset {hub_id!r}: {exc}. "
                        "Download the file and pass its path instead.") from exc
    return Path(local)  # iter_rows reads a suffix-less file as JSON


def _string(row: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> str:
    value = row.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise DataError(f"{where}: field {name!r} must be a non-empty string, got {value!r:.60}")
    return value


def _turn(raw: Any, session: int, j: int, where: str) -> DialogueTurn:
    if not isinstance(raw, Mapping):
        raise DataError(f"{where}: must be an object with 'role' and 'content', got "
                        f"{type(raw).__name__}")
    role, content = raw.get("role"), raw.get("content")
    if not isinstance(role, str) or not role.strip():
        raise DataError(f"{where}: field 'role' must be a string ('user' or 'assistant'), got "
                        f"{role!r:.60}")
    if not isinstance(content, str):
        raise DataError(f"{where}: field 'content' must be a string, got {content!r:.60}")
    has_answer = raw.get("has_answer", False)
    if has_answer is None:
        has_answer = False
    if not isinstance(has_answer, bool):
        raise DataError(f"{where}: field 'has_answer' must be true or false, got "
                        f"{has_answer!r:.60}")
    return DialogueTurn(f"s{session}:{j + 1}", role, content, session,
                        {"has_answer": has_answer})


def _question(row: Mapping[str, Any], question_id: str, sessions: Sequence[DialogueSession],
              where: str) -> DialogueQuestion:
    question_type = _string(row, "question_type", where)
    text = _string(row, "question", where)
    answer = row.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise DataError(f"{where}: field 'answer' must be a string or a number, got "
                        f"{answer!r:.60}")
    answer_ids = row.get("answer_session_ids", [])
    if isinstance(answer_ids, str) or not isinstance(answer_ids, Sequence) or not all(
            isinstance(a, str) for a in answer_ids):
        raise DataError(f"{where}: field 'answer_session_ids' must be a list of session ids, "
                        f"got {answer_ids!r:.60}")
    wanted = set(answer_ids)
    in_answer = [s for s in sessions if s.session_id in wanted]
    evidence = tuple(t.dia_id for s in in_answer for t in s.turns if t.metadata["has_answer"])
    if evidence:
        answer_after: str | None = evidence[-1]
    else:
        answer_after = in_answer[-1].turns[-1].dia_id if in_answer else None
    found = {s.session_id for s in in_answer}
    return DialogueQuestion(
        question_id=question_id, question=text, answers=(str(answer),), category=question_type,
        evidence=evidence, evidence_sessions=tuple(answer_ids), answer_after=answer_after,
        question_date=_string(row, "question_date", where, required=False),
        abstention=question_id.endswith("_abs"),
        metadata={"missing_answer_sessions": tuple(a for a in answer_ids if a not in found)})
