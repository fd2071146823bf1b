"""The memory bank: Memory-R1's and RMM's dialogue memory, a list of entries edited only through
operations (ADD, UPDATE, DELETE, NOOP, MERGE, and any a user registers in the operation table,
`memgym.memory.operations.register_operation`), each validated on its own.

    >>> from memgym.memory import MemoryBank
    >>> bank = MemoryBank()
    >>> bank.apply_text('{"memory": [{"id": "9", "text": "Alice lives in Paris", "event": "ADD"}]}',
    ...                 speaker="Alice", session=1, timestamp="8 May 2023", source_ids=("D1:3",))
    [OperationResult(operation=MemoryOperation(event='ADD', id=None, text='Alice lives in Paris'),
                     applied=True, reason='', entry_id='0')]
    >>> [e.text for e in bank.retrieve("where does Alice live?", k=5)]
    ['Alice lives in Paris']

Rules the bank enforces (a refused operation changes nothing and says why; the others apply):

* ids are the bank's: "0", "1", ... in creation order, never reused within an episode (until
  `clear()`); the id a model proposes for an ADD is ignored.
* ADD needs a non-empty text, is refused when the same speaker already has an entry with the
  same text (compared case- and whitespace-insensitively), and when the bank holds
  `max_entries` entries.
* UPDATE and MERGE need a known id and a non-empty text; they keep the id, replace the text and
  record the old text in the entry's `history` (MERGE is RMM's: the merged summary replaces the
  target's text).
* DELETE needs a known id; NOOP changes nothing (an id it names must exist).

Each operation is a row of the table `memgym.memory.operations.OPERATIONS`: the bank checks the
row's id and text rules, then calls its handler `handler(bank, op, context)`, which edits the
bank through `insert`, `rewrite` and `remove`. The built-in five are registered at the bottom of
this module exactly as a user registers one.

Texts are stored stripped, with lone surrogates (from JSON escapes like "\\udcff", which no
tokenizer or UTF-8 file accepts) replaced by "?", so every entry can be embedded and saved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from memgym.errors import ConfigError, unknown_name
from memgym.memory.operations import (
    ACTION_FORMATS,
    OPERATION_EVENTS,
    OPERATIONS,
    MemoryOperation,
    OperationResult,
    _parse_json_items,
    _parse_rmm_items,
    count_operations,
    operation_from_dict,
    parse_memory_operations,
    parse_rmm_operations,
    register_operation,
)
from memgym.memory.retrieval import BM25Retriever, Retriever, encodable

__all__ = ["ACTION_FORMATS", "OPERATION_EVENTS", "MemoryBank", "MemoryEntry", "MemoryOperation",
           "OperationResult", "WriteContext", "count_operations", "parse_memory_operations",
           "parse_rmm_operations"]

_SPACE = re.compile(r"\s+")


def _key(text: str) -> str:
    """The duplicate-detection form of a text: case-folded, whitespace collapsed."""
    return _SPACE.sub(" ", text).strip().casefold()


@dataclass
class MemoryEntry:
    """One memory.

    Attributes:
        id: the bank-assigned id ("0", "1", ...).
        text: what is remembered.
        speaker: whose memory it is (the turn's speaker), or None.
        session: the 1-based session it was written in, or None.
        created_at: the date-time it was added (the session's, as the source writes it).
        updated_at: the date-time of its last UPDATE or MERGE (= created_at until then).
        source_ids: dia_ids of the turns it was written from (grows with UPDATE and MERGE).
        history: its earlier texts, oldest first (one per UPDATE or MERGE that changed it).
    """

    id: str
    text: str
    speaker: str | None = None
    session: int | None = None
    created_at: str = ""
    updated_at: str = ""
    source_ids: tuple[str, ...] = ()
    history: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain JSON-ready data (lists for the tuples)."""
        return {"id": self.id, "text": self.text, "speaker": self.speaker,
                "session": self.session, "created_at": self.created_at,
                "updated_at": self.updated_at, "source_ids": list(self.source_ids),
                "history": list(self.history)}


@dataclass(frozen=True)
class WriteContext:
    """Where a write step's operations come from, as handlers receive it.

    Attributes:
        speaker: the turn's speaker (None for a whole session).
        session: the 1-based session, or None.
        timestamp: the session's date-time as the source writes it.
        source_ids: dia_ids of the turns the step streams.
    """

    speaker: str | None = None
    session: int | None = None
    timestamp: str = ""
    source_ids: tuple[str, ...] = ()


class MemoryBank:
    """A bounded bank of memory entries with validated operations and retrieval.

    Args:
        max_entries: the most entries it holds (None: unbounded); an ADD beyond it is refused.
        retriever: ranks entries for `retrieve` (default: BM25 with bm25s, offline).

    Attributes:
        counts: applied/refused counts per event since construction or `clear()`, slash-named
            ("ADD/applied", ..., "MALFORMED/refused"), as `count_operations` gives them.
        version: bumps on every change of the entries (for caches keyed on the bank's state).
    """

    def __init__(self, max_entries: int | None = None, retriever: Retriever | None = None):
        if max_entries is not None and (isinstance(max_entries, bool)
                                        or not isinstance(max_entries, int) or max_entries <= 0):
            raise ConfigError(f"max_entries must be a positive integer or None, got "
                              f"{max_entries!r}")
        if retriever is not None and not isinstance(retriever, Retriever):
            raise ConfigError(f"retriever must have rank(query, passages, k); got "
                              f"{type(retriever).__name__} (use memgym.memory.make_retriever)")
        self.max_entries = max_entries
        self.retriever: Retriever = retriever if retriever is not None else BM25Retriever()
        self.clear()

    # ------------------------------------------------------------------ state

    def clear(self) -> None:
        """Empty the bank, restart ids at "0" and zero the counts (a retriever's embedding cache
        is kept: it maps texts to vectors and holds nothing of the episode)."""
        self._entries: dict[str, MemoryEntry] = {}
        self._keys: dict[tuple[str | None, str], list[str]] = {}  # (speaker, _key(text)) -> ids
        self._next_id = 0
        self._deleted: set[str] = set()
        self.counts = count_operations(())
        self.version = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[MemoryEntry]:
        return iter(self.entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    @property
    def entries(self) -> list[MemoryEntry]:
        """Copies of the entries, in creation order (editing them does not edit the bank)."""
        return [replace(e) for e in self._entries.values()]

    def get(self, entry_id: str) -> MemoryEntry | None:
        """A copy of the entry with id `entry_id`, or None."""
        entry = self._entries.get(str(entry_id))
        return None if entry is None else replace(entry)

    def texts(self) -> list[str]:
        """The entries' texts, in creation order."""
        return [e.text for e in self._entries.values()]

    # ------------------------------------------------------------------ operations

    def apply(self, ops: Iterable[MemoryOperation | Mapping[str, Any]], *,
              speaker: str | None = None, session: int | None = None, timestamp: str = "",
              source_ids: Sequence[str] = ()) -> list[OperationResult]:
        """Apply operations in order, each validated on its own; never raises on bad operations.

        Args:
            ops: MemoryOperations, or `{"event", "id", "text"}` mappings (read like JSON items;
                an ADD's id is ignored).
            speaker, session, timestamp, source_ids: the context written into entries that an
                ADD creates (timestamp also stamps UPDATE/MERGE; source_ids are appended).

        Returns:
            One result per operation, in order: applied, or refused with the reason. A refused
            duplicate ADD names the entry that already holds the text in `entry_id`.
        """
        results: list[OperationResult] = []
        if isinstance(ops, (str, bytes, Mapping)) or not isinstance(ops, Iterable):
            ops = [ops]  # type: ignore[list-item]  # one stray value: refused below, not raised
        context = WriteContext(speaker, session, str(timestamp),
                               tuple(str(s) for s in source_ids))
        for n, op in enumerate(ops):
            parsed = operation_from_dict(op, f"operation[{n}]")
            results.append(parsed if isinstance(parsed, OperationResult)
                           else self._apply_one(parsed, context))
        self._count(results)
        return results

    def apply_text(self, text: str, format: str = "memory_r1", *,
                   summary: str | None = None, candidate_ids: Sequence[str] = (),
                   **context: Any) -> list[OperationResult]:
        """Parse a model's action and apply it; never raises on any action string.

        Args:
            text: the model's output.
            format: "memory_r1" (mem0 JSON) or "rmm" (`Add()` / `Merge(index, summary)`).
            summary, candidate_ids: for "rmm", the summary `Add()` adds and the bank ids
                `Merge(i, ...)` indexes (0-based); see `parse_rmm_operations`.
            **context: speaker, session, timestamp, source_ids, as for `apply`.

        Returns:
            One result per parsed item, in the order written: refused items (malformed) keep
            their place among the applied and refused operations.

        Raises:
            ConfigError: `format` is not one of ACTION_FORMATS (a programming error, not an
                action's fault), or `context` has a key `apply` does not take.
        """
        if format not in ACTION_FORMATS:
            raise unknown_name("action format", str(format), ACTION_FORMATS)
        unknown = set(context) - {"speaker", "session", "timestamp", "source_ids"}
        if unknown:
            raise ConfigError(f"apply_text got unknown context {sorted(unknown)}; it takes "
                              "speaker, session, timestamp, source_ids")
        if format == "rmm":
            items = _parse_rmm_items(text, summary, candidate_ids)
        else:
            items = _parse_json_items(text)
        ops = [item for item in items if isinstance(item, MemoryOperation)]
        applied = iter(self.apply(ops, **context)) if ops else iter(())
        self._count(item for item in items if isinstance(item, OperationResult))
        return [next(applied) if isinstance(item, MemoryOperation) else item for item in items]

    def _index(self, entry: MemoryEntry) -> None:
        self._keys.setdefault((entry.speaker, _key(entry.text)), []).append(entry.id)

    def _unindex(self, entry: MemoryEntry) -> None:
        key = (entry.speaker, _key(entry.text))
        ids = self._keys.get(key, [])
        if entry.id in ids:
            ids.remove(entry.id)
        if not ids:
            self._keys.pop(key, None)

    def _count(self, results: Iterable[OperationResult]) -> None:
        for key, value in count_operations(results).items():
            self.counts[key] = self.counts.get(key, 0) + value

    def _apply_one(self, op: MemoryOperation, context: WriteContext) -> OperationResult:
        """Check the table's id and text rules for `op`, then run its handler."""
        spec = OPERATIONS[op.event]
        if spec.text == "required" and (op.text is None or not op.text.strip()):
            return OperationResult(op, False, f"{op.event} needs a non-empty text", op.id)
        if spec.id == "required" or (spec.id == "optional" and op.id is not None):
            refusal = self.refusal_for_id(op)
            if refusal is not None:
                return refusal
        result = spec.handler(self, op, context)
        if not isinstance(result, OperationResult):
            raise ConfigError(f"the handler of operation {op.event!r} returned "
                              f"{type(result).__name__}; it must return an OperationResult")
        return result

    # ------------------------------------------------------------------ handler primitives

    def refusal_for_id(self, op: MemoryOperation) -> OperationResult | None:
        """A refusal naming the live ids when `op.id` names no live entry, else None."""
        if op.id is None:
            return OperationResult(op, False, f"{op.event} needs the id of an existing memory",
                                   None)
        if op.id not in self._entries:
            gone = " (it was deleted)" if op.id in self._deleted else ""
            known = ", ".join(list(self._entries)[:20]) or "none; the bank is empty"
            return OperationResult(op, False, f"{op.event} names unknown id {op.id!r}{gone}; "
                                   f"known ids: {known}", None)
        return None

    def duplicate_of(self, text: str, speaker: str | None) -> str | None:
        """The id of `speaker`'s entry with the same text (case and spaces aside), or None."""
        return next(iter(self._keys.get((speaker, _key(text)), ())), None)

    @property
    def full(self) -> bool:
        """Whether the bank holds `max_entries` entries (an insert would exceed its bound)."""
        return self.max_entries is not None and len(self._entries) >= self.max_entries

    def insert(self, text: str, context: WriteContext) -> MemoryEntry:
        """Store a new entry with the next id and the context's speaker, session, time and
        sources; returns a copy. Handlers check duplicates and `full` first (ADD's rules)."""
        entry_id = str(self._next_id)
        self._next_id += 1
        entry = MemoryEntry(entry_id, encodable(text.strip()), context.speaker, context.session,
                            context.timestamp, context.timestamp,
                            tuple(dict.fromkeys(context.source_ids)))
        self._entries[entry_id] = entry
        self._index(entry)
        self.version += 1
        return replace(entry)

    def rewrite(self, entry_id: str, text: str, context: WriteContext) -> MemoryEntry:
        """Replace a live entry's text, keeping its id (the old text goes to `history`), stamp
        it with the context's time and add its sources; returns a copy."""
        entry = self._entries[entry_id]
        self._unindex(entry)
        self.version += 1
        text = encodable(text.strip())
        if text != entry.text:
            entry.history = (*entry.history, entry.text)
            entry.text = text
        entry.updated_at = context.timestamp or entry.updated_at
        entry.source_ids = tuple(dict.fromkeys((*entry.source_ids, *context.source_ids)))
        self._index(entry)
        return replace(entry)

    def remove(self, entry_id: str) -> None:
        """Delete a live entry; its id is never reused within the episode."""
        entry = self._entries.pop(entry_id)
        self._unindex(entry)
        self._deleted.add(entry_id)
        self.version += 1

    def describe_changes(self, results: Iterable[OperationResult]) -> str:
        """What applied operations did, one line each ("ADD [4] text", "UPDATE [2] new text",
        "DELETE [3]"; operations that cannot change the bank are left out): the trace a write
        step keeps, since the whole bank after every step would be quadratic in size."""
        lines = []
        for r in results:
            spec = OPERATIONS.get(r.operation.event) if r.applied and r.operation else None
            if spec is None or not spec.changes:
                continue
            entry = self._entries.get(r.entry_id) if r.entry_id else None
            text = f" {entry.text}" if entry is not None and spec.text != "ignored" else ""
            lines.append(f"{spec.name} [{r.entry_id}]{text}" if r.entry_id else spec.name)
        return "\n".join(lines) or "(no change)"

    # ------------------------------------------------------------------ retrieval

    def retrieve(self, query: str, k: int, *, speaker: str | None = None) -> list[MemoryEntry]:
        """The `k` entries the retriever ranks best for `query`, best first (copies).

        Args:
            query: what to match (a new turn, a question).
            k: how many at most.
            speaker: only this speaker's entries (None: all entries).
        """
        pool = [e for e in self._entries.values() if speaker is None or e.speaker == speaker]
        if k <= 0 or not pool:
            return []
        order = self.retriever.rank(str(query), [e.text for e in pool], int(k))
        return [replace(pool[i]) for i in order]

    def retrieve_per_speaker(self, query: str, k_per_speaker: int,
                             speakers: Sequence[str]) -> list[MemoryEntry]:
        """The best `k_per_speaker` entries of each speaker in turn (Memory-R1 retrieves 30 per
        speaker of a LoCoMo conversation, 60 in all): speakers in the order given, each
        speaker's entries best first."""
        out: list[MemoryEntry] = []
        if isinstance(speakers, str):
            speakers = [speakers]
        for speaker in dict.fromkeys(speakers):
            out.extend(self.retrieve(query, k_per_speaker, speaker=speaker))
        return out

    def __repr__(self) -> str:
        bound = "" if self.max_entries is None else f"/{self.max_entries}"
        return (f"MemoryBank({len(self)}{bound} entries, "
                f"retriever={type(self.retriever).__name__})")


# ----------------------------------------------------------------------------- built-in operations


def _add(bank: MemoryBank, op: MemoryOperation, context: WriteContext) -> OperationResult:
    """ADD: a new entry, refused for a duplicate of the speaker's or in a full bank."""
    text = encodable(op.text.strip())  # type: ignore[union-attr]
    same = bank.duplicate_of(text, context.speaker)
    if same is not None:
        return OperationResult(op, False, f"duplicate ADD: memory {same!r} already holds "
                               "this text (use NOOP, or UPDATE it)", same)
    if bank.full:
        return OperationResult(op, False, f"bank full (max_entries={bank.max_entries}): "
                               "DELETE, UPDATE or MERGE an entry instead of adding", None)
    return OperationResult(op, True, "", bank.insert(text, context).id)


def _replace_text(bank: MemoryBank, op: MemoryOperation, context: WriteContext
                  ) -> OperationResult:
    """UPDATE and MERGE: the new (merged) text replaces the entry's, which goes to history."""
    return OperationResult(op, True, "", bank.rewrite(op.id, op.text, context).id)  # type: ignore[arg-type]


def _delete(bank: MemoryBank, op: MemoryOperation, context: WriteContext) -> OperationResult:
    """DELETE: the entry goes."""
    bank.remove(op.id)  # type: ignore[arg-type]
    return OperationResult(op, True, "", op.id)


def _noop(bank: MemoryBank, op: MemoryOperation, context: WriteContext) -> OperationResult:
    """NOOP (mem0's NONE): nothing changes."""
    return OperationResult(op, True, "", op.id)


register_operation("ADD", _add, id="ignored", text="required", replace=True)
register_operation("UPDATE", _replace_text, text="required", formats=("memory_r1",),
                   replace=True)
register_operation("DELETE", _delete, formats=("memory_r1",), replace=True)
register_operation("NOOP", _noop, id="optional", aliases=("NONE", "NO_OP", "NO-OP", "NO OP"),
                   formats=("memory_r1",), changes=False, replace=True)
register_operation("MERGE", _replace_text, text="required", replace=True)
