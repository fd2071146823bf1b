"""MemoryAgentBench (Hu et al. 2025): long contexts fed in chunks, then many questions about them.

The hub dataset `ai-hyz/MemoryAgentBench` has one split per competency (Accurate_Retrieval,
Test_Time_Learning, Long_Range_Understanding, Conflict_Resolution), stored as
`data/<Competency>-00000-of-00001.parquet`. A row is `context` (one long string), `questions`
(strings), `answers` (a list of gold-answer lists, one per question) and `metadata` (`source`,
the sub-dataset such as "ruler_qa" or "factconsolidation_mh_6k"; and, parallel to `questions`
where the source has them, `qa_pair_ids`, `question_ids`, `question_types`, `question_dates`;
plus `keypoints`, `previous_events`, `demo`, `haystack_sessions`).

Each row becomes one Conversation: the context is cut into consecutive chunks of at most
`chunk_tokens` tokens (memgym's token counters; lossless: the chunks join back into the
context), each chunk one turn of speaker "context" with dia_id `s<session>:<turn>`, grouped
`chunks_per_session` to a session (undated). Every question is asked after the whole context;
its `category` is the competency, and since the benchmark does not say which chunk holds an
answer, `evidence` is empty and `answer_after` is None.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from memgym.data.dialogue import Conversation, DialogueQuestion, DialogueSession, DialogueTurn
from memgym.data.text import split_passages
from memgym.errors import DataError, unknown_name
from memgym.tokenizers import TokenCounter, load_token_counter

__all__ = ["MEMORYAGENTBENCH_COMPETENCIES", "MEMORYAGENTBENCH_HUB_ID", "load_memoryagentbench",
           "parse_memoryagentbench_row"]

MEMORYAGENTBENCH_HUB_ID = "ai-hyz/MemoryAgentBench"
"""The hub dataset; its splits are the competencies."""

MEMORYAGENTBENCH_COMPETENCIES = ("Accurate_Retrieval", "Test_Time_Learning",
                                 "Long_Range_Understanding", "Conflict_Resolution")
"""The four competencies, spelled as the hub's split names."""

CONTEXT_SPEAKER = "context"
"""The speaker of every chunk turn."""

_PARALLEL = ("qa_pair_ids", "question_ids", "question_types", "question_dates")
_KEPT_METADATA = ("keypoints", "previous_events", "demo")
_SUFFIXES = (".parquet", ".jsonl", ".json")


def load_memoryagentbench(
        path_or_hub_id: str | Path | Iterable[Mapping[str, Any]] = MEMORYAGENTBENCH_HUB_ID, *,
        competency: str | None = None, chunk_tokens: int = 512,
        tokenizer: str | TokenCounter | None = None, chunks_per_session: int = 1,
        sources: Collection[str] | None = None, limit: int | None = None) -> list[Conversation]:
    """Load MemoryAgentBench rows of one competency as chunked Conversations.

    Args:
        path_or_hub_id: the hub id (default "ai-hyz/MemoryAgentBench"), a local parquet /
            JSONL / JSON file of rows, a folder holding `<Competency>-*.parquet|jsonl|json`
            files (a hub snapshot's `data/`, or its parent), a folder saved with
            `datasets.save_to_disk`, a `datasets.Dataset`, or a list of row dicts.
        competency: which split: one of MEMORYAGENTBENCH_COMPETENCIES. Required, except for a
            file whose name starts with the competency (then inferred).
        chunk_tokens: the most tokens a chunk (a turn) holds.
        tokenizer: how tokens are counted: None/"words" (offline default), a model name or
            path, or a TokenCounter (see memgym.tokenizers.load_token_counter).
        chunks_per_session: chunks grouped into one session (RMM reflects at session ends).
        sources: keep only rows whose `metadata.source` is one of these (None: all).
        limit: keep at most this many rows (after filtering), in order.

    Raises:
        DataError: a missing source, a malformed row (the message names the row and field),
            or a hub load that failed.
        UnknownNameError: an unknown competency.
        ConfigError: a tokenizer that cannot be loaded.
    """
    for name, value, low in (("chunk_tokens", chunk_tokens, 1),
                             ("chunks_per_session", chunks_per_session, 1),
                             ("limit", limit, 0)):
        if value is None and name == "limit":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise DataError(f"{name}={value!r} must be an integer >= {low}")
    if competency is not None and competency not in MEMORYAGENTBENCH_COMPETENCIES:
        raise unknown_name("MemoryAgentBench competency", competency,
                           MEMORYAGENTBENCH_COMPETENCIES)
    counter = load_token_counter(tokenizer)
    source_name, competency, rows = _rows(path_or_hub_id, competency)
    conversations: list[Conversation] = []
    for i, (where, row) in enumerate(rows):
        if limit is not None and len(conversations) >= limit:
            break
        if sources is not None and _source_of(row) not in sources:
            continue
        conversations.append(parse_memoryagentbench_row(
            row, index=i, competency=competency, counter=counter, chunk_tokens=chunk_tokens,
            chunks_per_session=chunks_per_session, where=where, source=source_name))
    return conversations


def parse_memoryagentbench_row(row: Any, *, index: int, competency: str, counter: TokenCounter,
                               chunk_tokens: int, chunks_per_session: int = 1,
                               where: str = "row", source: str = "") -> Conversation:
    """Build one Conversation from a MemoryAgentBench row: the context chunked into turns."""
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: must be an object with 'context', 'questions', 'answers' and "
                        f"'metadata', got {type(row).__name__}")
    context = row.get("context")
    if not isinstance(context, str) or not context.strip():
        raise DataError(f"{where}: field 'context' must be a non-empty string, got "
                        f"{context!r:.60}")
    questions = _string_list(row.get("questions"), where, "questions")
    answers = _answers(row.get("answers"), len(questions), where)
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise DataError(f"{where}: field 'metadata' must be an object or null, got "
                        f"{type(metadata).__name__}")
    parallel = {name: _parallel(metadata.get(name), len(questions), where, name)
                for name in _PARALLEL}
    conversation_id = f"{competency}:{index}"
    chunks = split_passages(context, chunk_tokens, counter)
    sessions = []
    for start in range(0, len(chunks), chunks_per_session):
        number = start // chunks_per_session + 1
        turns = tuple(
            DialogueTurn(f"s{number}:{j + 1}", CONTEXT_SPEAKER, chunk, number,
                         {"chunk": start + j, "tokens": counter.count(chunk)})
            for j, chunk in enumerate(chunks[start:start + chunks_per_session]))
        sessions.append(DialogueSession(number, "", turns))
    dialogue_questions = tuple(
        DialogueQuestion(
            question_id=f"{conversation_id}:q{q}", question=text, answers=answers[q],
            category=competency, question_date=parallel["question_dates"][q] or "",
            metadata={"source_question_id": parallel["question_ids"][q],
                      "qa_pair_id": parallel["qa_pair_ids"][q],
                      "question_type": parallel["question_types"][q]})
        for q, text in enumerate(questions))
    kept = {name: metadata[name] for name in _KEPT_METADATA if metadata.get(name)}
    info = {"dataset": "memoryagentbench", "competency": competency,
            "source": _source_of(row), "chunk_tokens": chunk_tokens,
            "tokenizer": counter.name, "num_chunks": len(chunks), **kept}
    return Conversation(conversation_id, (CONTEXT_SPEAKER,), tuple(sessions),
                        dialogue_questions, source, info)


# -- pieces ---------------------------------------------------------------------------------------

def _rows(source: Any, competency: str | None) -> tuple[str, str, Iterable[tuple[str, Any]]]:
    """(source name, competency, rows) for any accepted source."""
    from memgym.data.hotpotqa import iter_rows  # the shared file / datasets / hub row reader

    if not isinstance(source, (str, Path)):
        return type(source).__name__, _need(competency, "rows"), iter_rows(source)
    path = Path(source).expanduser()
    if path.is_file():
        inferred = next((c for c in MEMORYAGENTBENCH_COMPETENCIES
                         if path.name.startswith(c)), None)
        if competency is not None and inferred is not None and inferred != competency:
            raise DataError(f"{path}: the file is named for {inferred!r} but competency="
                            f"{competency!r}; pass the file of that competency")
        return str(path), _need(competency or inferred, str(path)), iter_rows(path)
    if path.is_dir():
        competency = _need(competency, str(path))
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            return str(path), competency, iter_rows(path, split=competency)
        files = _competency_files(path, competency)
        return str(path), competency, (item for f in files for item in iter_rows(f))
    text = str(source)
    if text.endswith(_SUFFIXES) or text.startswith((".", "/", "~")) or "/" not in text:
        raise DataError(f"MemoryAgentBench source {text!r} does not exist; pass a local file "
                        f"or folder, or the hub id {MEMORYAGENTBENCH_HUB_ID!r}")
    competency = _need(competency, text)
    return f"{text} [{competency}]", competency, iter_rows(text, split=competency)


def _need(competency: str | None, where: str) -> str:
    if competency is None:
        raise DataError(f"{where}: pass competency= (one of "
                        f"{', '.join(MEMORYAGENTBENCH_COMPETENCIES)}) to say which split to load")
    return competency


def _competency_files(folder: Path, competency: str) -> list[Path]:
    for where in (folder, folder / "data"):
        files = sorted(p for p in where.glob(f"{competency}*") if p.suffix in _SUFFIXES)
        if files:
            return files
    raise DataError(f"{folder}: no {competency}-*.parquet/.jsonl/.json file here or in data/; "
                    "pass the folder of a hub snapshot or the file itself")


def _source_of(row: Any) -> str:
    metadata = row.get("metadata") if isinstance(row, Mapping) else None
    value = metadata.get("source") if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) else ""


def _string_list(value: Any, where: str, name: str) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(
            isinstance(v, str) for v in value):
        raise DataError(f"{where}: field {name!r} must be a list of strings, got {value!r:.60}")
    return list(value)


def _answers(value: Any, n: int, where: str) -> list[tuple[str, ...]]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != n:
        raise DataError(f"{where}: field 'answers' must be a list of {n} answer lists (one per "
                        f"question), got {value!r:.60}")
    out = []
    for q, item in enumerate(value):
        options = [item] if isinstance(item, (str, int, float)) else item
        if isinstance(options, bool) or not isinstance(options, Sequence) or not options or any(
                isinstance(a, bool) or not isinstance(a, (str, int, float)) for a in options):
            raise DataError(f"{where}: answers[{q}] must be a non-empty list of strings, got "
                            f"{item!r:.60}")
        out.append(tuple(str(a) for a in options))
    return out


def _parallel(value: Any, n: int, where: str, name: str) -> list[Any]:
    """A metadata list parallel to the questions, or Nones when the source has none."""
    if value is None or (isinstance(value, Sequence) and not isinstance(value, str)
                         and len(value) == 0):
        return [None] * n
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != n:
        raise DataError(f"{where}: metadata field {name!r} must be a list parallel to the {n} "
                        f"questions, got {value!r:.60}")
    return list(value)
