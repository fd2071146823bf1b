"""Memory-bank operations and the parsers that read them from model output.

Two formats, as the papers write them:

* **Memory-R1 / mem0** (mem0's update-memory prompt, which Memory-R1's memory manager uses):
  a JSON object `{"memory": [{"id": "0", "text": "...", "event": "ADD|UPDATE|DELETE|NONE",
  "old_memory": "..."}]}`. `parse_memory_operations` also takes a bare list of items, a single
  item, code fences, prose around the JSON and trailing commas. mem0 lists every existing memory
  with event NONE; those parse to NOOP. The id an ADD proposes is ignored (the bank assigns ids),
  and `old_memory` is informational only.
* **RMM** (prospective reflection): for one extracted topic summary and the numbered list of
  memories retrieved for it, the model answers `Add()` or `Merge(index, merged_summary)`, one
  action per line. `parse_rmm_operations(text, summary=..., candidate_ids=...)` turns `Add()`
  into an ADD of the given summary and `Merge(i, text)` into a MERGE of `text` into candidate
  `i`. **Indices are 0-based**, as in RMM's own prompt: its history summaries are a JSON list
  ("index is the position of the relevant history summary in the list") and its worked example
  merges into the only summary with `Merge(0, ...)`.

Parsing never raises on any string: what cannot be read becomes a refused `OperationResult`
whose reason names the item and the fault; what can be read becomes a `MemoryOperation` the bank
then validates (unknown id, duplicate, missing text, bank full).

**The operation table.** Every operation, the built-in five included, is a row of `OPERATIONS`:
its name, the function that applies it to a bank, whether it needs an id and a text, and which
action formats may write it. `register_operation("PIN", pin)` adds one; both parsers and the
bank read the table, so a registered operation parses (`{"event": "PIN", "id": "3"}` in JSON,
`Pin(0)` in RMM's lines) and applies with no other change. See agents/README.md, "Add a memory
operation".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from memgym.errors import ConfigError

__all__ = ["ACTION_FORMATS", "OPERATIONS", "OPERATION_EVENTS", "MemoryOperation",
           "OperationResult", "OperationSpec", "count_operations", "operation_events",
           "operation_from_dict", "parse_memory_operations", "parse_rmm_operations",
           "register_operation", "unregister_operation"]

OPERATION_EVENTS = ("ADD", "UPDATE", "DELETE", "NOOP", "MERGE")
"""The built-in memory-bank operations (Memory-R1's four plus RMM's MERGE); `operation_events()`
gives the live table, registered operations included."""

ACTION_FORMATS = ("memory_r1", "rmm")
"""The action formats: Memory-R1/mem0 JSON and RMM's `Add()` / `Merge(index, text)` lines."""

MALFORMED = "MALFORMED"
"""The `count_operations` bucket of results that never became an operation."""

_MAX_JSON_STARTS = 64
"""How many candidate '{' / '[' positions the JSON finder tries in prose (bounds the work on
adversarial strings such as a megabyte of brackets)."""

_MAX_SHOWN = 80
"""Characters of a bad value quoted in a reason."""


@dataclass(frozen=True)
class MemoryOperation:
    """One operation on a memory bank.

    Attributes:
        event: a name in the operation table (OPERATIONS): ADD, UPDATE, DELETE, NOOP, MERGE, ...
        id: the bank id it acts on (UPDATE, DELETE, MERGE; optional for NOOP; ignored for ADD).
        text: the new text (ADD, UPDATE: required; MERGE: the merged summary; else ignored).
    """

    event: str
    id: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class OperationResult:
    """What became of one operation (or of an item that could not be parsed into one).

    Attributes:
        operation: the operation, or None when the item was malformed.
        applied: whether the bank changed (or, for NOOP, accepted it).
        reason: why it was refused; "" when applied.
        entry_id: the entry it created or acted on, when there is one.
    """

    operation: MemoryOperation | None
    applied: bool
    reason: str = ""
    entry_id: str | None = None


# ----------------------------------------------------------------------------- the table

_ARGUMENT_RULES = ("required", "optional", "ignored")
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass(frozen=True)
class OperationSpec:
    """One row of the operation table: how an operation is validated, applied and written.

    Attributes:
        name: the event name, upper case ("ADD", "PIN").
        handler: `handler(bank, op, context) -> OperationResult` applies a validated operation
            to a `MemoryBank` (its public `insert`, `rewrite`, `remove`); `context` is the
            step's `WriteContext` (speaker, session, timestamp, source_ids).
        id: "required" (must name a live entry; checked before the handler runs), "optional"
            (checked when given) or "ignored" (dropped, as ADD's proposed id).
        text: "required" (non-empty; checked before the handler runs), "optional" or "ignored".
        aliases: other spellings the parsers accept (mem0 writes NOOP as "NONE").
        formats: the action formats whose parser reads it ("memory_r1" JSON, "rmm" lines).
        changes: whether applying it can change the bank (NOOP: False, so traces skip it).
    """

    name: str
    handler: Callable[..., OperationResult]
    id: str = "required"
    text: str = "ignored"
    aliases: tuple[str, ...] = ()
    formats: tuple[str, ...] = ACTION_FORMATS
    changes: bool = True


OPERATIONS: dict[str, OperationSpec] = {}
"""The operation table, by name: the built-in five (registered by memgym.memory.bank) and every
operation a user registers. Read it; change it only through `register_operation`."""


def register_operation(name: str, handler: Callable[..., OperationResult], *,
                       id: str = "required", text: str = "ignored",
                       aliases: Sequence[str] = (), formats: Sequence[str] = ACTION_FORMATS,
                       changes: bool = True, replace: bool = False) -> OperationSpec:
    """Add an operation to the table that the bank and both parsers read.

    Args:
        name: the event name, upper case letters, digits and "_" ("PIN", "APPEND").
        handler: `handler(bank, op, context) -> OperationResult`; called only after the id and
            text rules below hold, so it does the operation's own work and checks.
        id, text: "required", "optional" or "ignored" (see `OperationSpec`).
        aliases: other spellings the parsers accept.
        formats: the action formats that may write it (default: both).
        changes: False for an operation that never changes the bank.
        replace: allow re-registering an existing name (e.g. on module reload).

    Returns:
        The table row.

    Raises:
        ConfigError: a bad name, rule or format, a handler that is not callable, or a name or
            alias already taken (unless `replace`).
    """
    if not isinstance(name, str) or not _NAME.match(name) or name == MALFORMED:
        raise ConfigError(f"register_operation: name {name!r} must be upper case letters, "
                          f"digits and '_' (e.g. 'PIN'), and not {MALFORMED!r}")
    if not callable(handler):
        raise ConfigError(f"register_operation({name!r}): handler must be callable "
                          f"handler(bank, op, context), got {type(handler).__name__}")
    for label, rule in (("id", id), ("text", text)):
        if rule not in _ARGUMENT_RULES:
            raise ConfigError(f"register_operation({name!r}): {label}={rule!r}; choose one of "
                              f"{', '.join(_ARGUMENT_RULES)}")
    bad = [f for f in formats if f not in ACTION_FORMATS]
    if bad or isinstance(formats, str):
        raise ConfigError(f"register_operation({name!r}): formats={formats!r}; a list of "
                          f"{', '.join(ACTION_FORMATS)}")
    spellings = [name, *(str(a).strip().upper() for a in aliases)]
    taken = {s: n for n, spec in OPERATIONS.items() if n != name or not replace
             for s in (n, *spec.aliases)}
    clash = [s for s in spellings if s in taken and not (replace and taken[s] == name)]
    if clash:
        raise ConfigError(f"register_operation({name!r}): {clash[0]!r} is already the "
                          f"operation {taken[clash[0]]!r}; pick another name or pass "
                          "replace=True")
    spec = OperationSpec(name, handler, id, text, tuple(spellings[1:]), tuple(formats),
                         bool(changes))
    OPERATIONS[name] = spec
    _start_pattern.cache_clear()
    return spec


def unregister_operation(name: str) -> None:
    """Remove a registered operation from the table (tests, notebooks); a no-op if absent.

    Raises:
        ConfigError: `name` is a built-in operation (the envs and agents rely on those).
    """
    if name in OPERATION_EVENTS:
        raise ConfigError(f"unregister_operation: {name!r} is built in and cannot be removed")
    OPERATIONS.pop(name, None)
    _start_pattern.cache_clear()


def operation_events() -> tuple[str, ...]:
    """The names in the operation table, built-in first, then registered ones in order."""
    return tuple(OPERATIONS)


def _shown_events(format: str | None = None) -> str:
    """The events a format reads, as prompts spell them: "ADD, UPDATE, DELETE, NONE, MERGE"."""
    return ", ".join("NONE" if n == "NOOP" else n for n, spec in OPERATIONS.items()
                     if format is None or format in spec.formats)


def _show(value: Any) -> str:
    """A short repr of a bad value for a reason string."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _refused(reason: str) -> OperationResult:
    return OperationResult(None, False, reason, None)


def _normalise_event(event: Any, format: str | None = None) -> str | None:
    """The table's name for `event` ("none" -> "NOOP"), or None if no operation `format` reads
    is spelled so."""
    if not isinstance(event, str):
        return None
    name = event.strip().upper()
    for spec in OPERATIONS.values():
        if (name == spec.name or name in spec.aliases) and (
                format is None or format in spec.formats):
            return spec.name
    return None


def _id_of(value: Any) -> tuple[str | None, str]:
    """The id as a string (ints accepted, as models write them), or (None, why not)."""
    if value is None:
        return None, ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None, f"id must be a string or an integer, got {type(value).__name__}"
    text = str(value).strip()
    return (text or None), ""


def operation_from_dict(item: Any, where: str = "item", format: str | None = None
                        ) -> MemoryOperation | OperationResult:
    """Read one `{"event", "id", "text"}` mapping into a MemoryOperation, or a refused result
    whose reason starts with `where` (e.g. "memory[2]") and names the bad field. `format`
    limits the events to those that action format reads (None: every registered one)."""
    if isinstance(item, MemoryOperation):
        return item
    if not isinstance(item, Mapping):
        return _refused(f"{where}: expected an object with 'event', 'id', 'text', "
                        f"got {type(item).__name__} {_show(item)}")
    if "event" not in item:
        return _refused(f"{where}: missing 'event' (one of {_shown_events(format)})")
    event = _normalise_event(item["event"], format)
    if event is None:
        return _refused(f"{where}: unknown event {_show(item['event'])}; use one of "
                        f"{_shown_events(format).replace('NONE', 'NONE (NOOP)')}")
    entry_id, why = _id_of(item.get("id"))
    if why:
        return _refused(f"{where}: {why}")
    text = item.get("text")
    if text is not None and not isinstance(text, str):
        return _refused(f"{where}: 'text' must be a string, got {type(text).__name__}")
    return MemoryOperation(event, None if OPERATIONS[event].id == "ignored" else entry_id, text)


# ----------------------------------------------------------------------------- JSON (Memory-R1)

_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\r?\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")
_MEMORY_KEY = re.compile(r"\{\s*[\"']memory[\"']\s*:")
_BRACKET = re.compile(r"[\[{]")


def _decode(text: str) -> tuple[Any, str]:
    """json.loads `text`, retrying once without trailing commas; (value, "") or (None, error)."""
    for attempt in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            return json.loads(attempt), ""
        except RecursionError:
            return None, "nested too deeply"
        except ValueError as exc:
            error = str(exc)
    return None, error


def _raw_decode_at(text: str, start: int) -> Any:
    """The JSON value that starts at `text[start]`, or None (trailing commas tolerated)."""
    decoder = json.JSONDecoder()
    try:
        return decoder.raw_decode(text, start)[0]
    except RecursionError:
        return None
    except ValueError:
        pass
    end = text.rfind("}" if text[start] == "{" else "]")
    if end <= start:
        return None
    value, _ = _decode(text[start:end + 1])
    return value


def _usable(value: Any, in_prose: bool = False) -> bool:
    """Whether a decoded value can be the operations: a {"memory": ...} object, one item, or a
    list (found in prose, a list must hold an object: "see [1]" is not an action)."""
    if isinstance(value, list):
        return not in_prose or any(isinstance(v, dict) for v in value)
    return isinstance(value, dict) and ("memory" in value or "event" in value)


def _find_json(text: str) -> tuple[Any, str]:
    """The operations JSON inside `text`: the whole text; else the last fenced block, or the
    last {"memory": ...} object, that decodes (a model's final answer follows its drafts and
    the prompt it echoes); else the first object/list in prose that can be operations.
    Returns (value, "") or (None, why none was found)."""
    stripped = text.strip()
    value, error = _decode(stripped)
    if error == "":  # the whole text is JSON: it is the answer, whatever is nested inside it
        if _usable(value):
            return value, ""
        return None, ("expected an object with a 'memory' list or a list of operations, got "
                      f"{_show(value)}")
    first_error = error
    for block in reversed(_FENCE.findall(text)):
        value, err = _decode(block.strip())
        if err == "" and _usable(value):
            return value, ""
    starts = [m.start() for m in _MEMORY_KEY.finditer(text, 0)][::-1][:_MAX_JSON_STARTS]
    tried = set(starts)
    for bracket in _BRACKET.finditer(text):
        if len(starts) >= _MAX_JSON_STARTS:
            break
        if bracket.start() not in tried:
            starts.append(bracket.start())
    for start in starts:
        value = _raw_decode_at(text, start)
        if _usable(value, in_prose=True):
            return value, ""
    return None, first_error


def _parse_json_items(text: Any) -> list[MemoryOperation | OperationResult]:
    """Parsed operations and refused items of a Memory-R1 action, in item order."""
    if not isinstance(text, str):
        return [_refused(f"malformed JSON: the action must be a string, got "
                         f"{type(text).__name__}")]
    if not text.strip():
        return [_refused("malformed JSON: the action is empty; write "
                         '{"memory": [{"id": ..., "text": ..., "event": ...}]}')]
    value, error = _find_json(text)
    if value is None:
        return [_refused(f"malformed JSON: {error}")]
    if isinstance(value, dict) and "memory" in value:
        items, where = value["memory"], "memory"
        if not isinstance(items, list):
            return [_refused(f"malformed JSON: 'memory' must be a list of operations, got "
                             f"{type(items).__name__}")]
    elif isinstance(value, dict):
        items, where = [value], "operation"
    else:
        items, where = value, "item"
    return [operation_from_dict(item, f"{where}[{i}]", "memory_r1")
            for i, item in enumerate(items)]


def _split(parsed: Iterable[MemoryOperation | OperationResult]
           ) -> tuple[list[MemoryOperation], list[OperationResult]]:
    ops: list[MemoryOperation] = []
    refused: list[OperationResult] = []
    for item in parsed:
        (ops if isinstance(item, MemoryOperation) else refused).append(item)
    return ops, refused


def parse_memory_operations(text: str) -> tuple[list[MemoryOperation], list[OperationResult]]:
    """Read Memory-R1 / mem0 JSON operations from model output; never raises.

    Returns:
        (the operations that parsed, a refused result per item that did not). A string with no
        readable JSON gives no operations and one refused result "malformed JSON: ...".
    """
    return _split(_parse_json_items(text))


# ----------------------------------------------------------------------------- RMM

@lru_cache(maxsize=8)
def _start_pattern() -> re.Pattern:
    """An action's start: a name RMM's format reads, then "(", at a line start, after a bullet,
    a number or a "label:" (rebuilt when the table changes)."""
    names = sorted((n.lower() for n, spec in OPERATIONS.items() if "rmm" in spec.formats),
                   key=len, reverse=True)
    return re.compile(
        r"(?im)^[ \t]*(?:[-*\u2022\u2013>]+[ \t]*|\d+[.)][ \t]*)?(?:[A-Za-z][\w ]{0,30}:[ \t]*)?"
        r"[*`]*[ \t]*(" + "|".join(map(re.escape, names)) + r")[ \t]*\(")


_MERGE_ARGS = re.compile(r"\s*([+-]?\d+)\s*,\s*(.*)\)[\s*`]*$", re.DOTALL)
_ADD_ARGS = re.compile(r"([^)\n]*)\)")
_CALL_ARGS = re.compile(r"\s*(?:([+-]?\d+)\s*(?:,\s*(.*?))?)?\)[\s*`]*$", re.DOTALL)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def _action_segment(text: str, start: int, end: int) -> str:
    """The call text from `start`: its first line if that closes the call, else lines up to the
    first that ends with ')' (a merged summary written over several lines); prose after it is
    not part of the call."""
    lines = text[start:end].splitlines()
    taken: list[str] = []
    for line in lines:
        taken.append(line)
        if line.rstrip().rstrip("*`").rstrip().endswith(")"):
            break
    return "\n".join(taken)


def _parse_rmm_items(text: Any, summary: str | None, candidate_ids: Sequence[str]
                     ) -> list[MemoryOperation | OperationResult]:
    """Parsed operations and refused lines of an RMM action, in order."""
    if not isinstance(text, str):
        return [_refused(f"malformed RMM action: must be a string, got {type(text).__name__}")]
    if not isinstance(candidate_ids, Sequence) or isinstance(candidate_ids, str):
        return [_refused("malformed RMM action: candidate_ids must be a list of bank ids, "
                         f"got {type(candidate_ids).__name__}")]
    if summary is not None and not isinstance(summary, str):
        return [_refused(f"malformed RMM action: summary must be a string, got "
                         f"{type(summary).__name__}")]
    starts = list(_start_pattern().finditer(text))
    if not starts:
        return [_refused("malformed RMM action: no Add() or Merge(index, merged_summary) line "
                         f"in {_show(text.strip())}")]
    items: list[MemoryOperation | OperationResult] = []
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        call = _action_segment(text, match.end(), end)
        where = f"action[{n}]"
        event = _normalise_event(match.group(1), "rmm")
        if event == "ADD":
            items.append(_rmm_add(text, match.end(), summary, where))
        elif event == "MERGE":
            items.append(_rmm_merge(call, candidate_ids, where))
        else:
            items.append(_rmm_call(event, call, summary, candidate_ids, where))
    return items


def _rmm_add(text: str, end: int, summary: str | None, where: str
             ) -> MemoryOperation | OperationResult:
    """`Add()` (adds `summary`) or `Add(text)`; the text ends at the first `)` or line end."""
    args = _ADD_ARGS.match(text, end)
    if args is None:
        return _refused(f"{where}: Add( is not closed; write Add()")
    given = _unquote(args.group(1))
    if summary is None and not given:
        return _refused(f"{where}: Add() needs the new summary: pass summary=... to "
                        "parse_rmm_operations")
    return MemoryOperation("ADD", None, summary if summary is not None else given)


def _candidate(index: int, candidate_ids: Sequence[str], where: str, name: str
               ) -> str | OperationResult:
    """The bank id at 0-based position `index` of the memories shown, or a refusal."""
    if 0 <= index < len(candidate_ids):
        return str(candidate_ids[index])
    return _refused(
        f"{where}: {name} index {index} is out of range: "
        + (f"{len(candidate_ids)} retrieved memories, indices 0..{len(candidate_ids) - 1}"
           if candidate_ids else "no retrieved memories to merge into; use Add()")
        + " (0-based, as in RMM's prompt)")


def _rmm_merge(call: str, candidate_ids: Sequence[str], where: str
               ) -> MemoryOperation | OperationResult:
    """`Merge(index, merged_summary)`; the summary may span lines."""
    args = _MERGE_ARGS.match(call)
    if args is None:
        return _refused(f"{where}: expected Merge(index, merged_summary), got "
                        f"{_show('Merge(' + call.strip())}")
    target = _candidate(int(args.group(1)), candidate_ids, where, "Merge")
    if isinstance(target, OperationResult):
        return target
    return MemoryOperation("MERGE", target, _unquote(args.group(2)))


def _rmm_call(event: str, call: str, summary: str | None, candidate_ids: Sequence[str],
              where: str) -> MemoryOperation | OperationResult:
    """A registered operation in RMM's call style: `Name(index, text)`, `Name(index)`,
    `Name()`; with an ignored id, `Name(text)` or `Name()` (the summary)."""
    spec = OPERATIONS[event]
    title = event.capitalize()
    if spec.id == "ignored":
        args = _ADD_ARGS.match(call)
        if args is None:
            return _refused(f"{where}: {title}( is not closed; write {title}(text)")
        return MemoryOperation(event, None, _unquote(args.group(1)) or summary)
    args = _CALL_ARGS.match(call)
    if args is None:
        return _refused(f"{where}: expected {title}(index"
                        f"{', text' if spec.text != 'ignored' else ''}), got "
                        f"{_show(title + '(' + call.strip())}")
    target: str | OperationResult | None = None
    if args.group(1) is not None:
        target = _candidate(int(args.group(1)), candidate_ids, where, title)
        if isinstance(target, OperationResult):
            return target
    text = _unquote(args.group(2)) if args.group(2) is not None else None
    return MemoryOperation(event, target, text)


def parse_rmm_operations(text: str, *, summary: str | None = None,
                         candidate_ids: Sequence[str] = ()
                         ) -> tuple[list[MemoryOperation], list[OperationResult]]:
    """Read RMM's `Add()` / `Merge(index, merged_summary)` lines; never raises.

    Args:
        text: the model's output (one action per line; bullets, numbering, code fences and
            prose lines around the actions are tolerated).
        summary: the extracted topic summary the decision is about; `Add()` adds it.
        candidate_ids: bank ids of the retrieved memories shown to the model, in the order shown;
            `Merge(i, ...)` merges into `candidate_ids[i]` (0-based, as RMM's prompt).

    Returns:
        (the operations that parsed, a refused result per action that did not). `NO_TRAIT`
        alone (RMM's extraction found nothing to store) is the explicit empty action: ([], []).
        Other output with no action at all gives one refused result "malformed RMM action: ...".
    """
    if isinstance(text, str) and text.strip().strip("`").strip().upper() == "NO_TRAIT":
        return [], []
    return _split(_parse_rmm_items(text, summary, candidate_ids))


# ----------------------------------------------------------------------------- counting


def count_operations(results: Iterable[OperationResult]) -> dict[str, int]:
    """Applied and refused counts per event, slash-named for metrics: {"ADD/applied": 2,
    "ADD/refused": 0, ..., "MALFORMED/refused": 1}: every operation in the table present,
    zeros included;
    MALFORMED counts items that never parsed into an operation."""
    events = operation_events()
    counts = {f"{event}/{kind}": 0 for event in events for kind in ("applied", "refused")}
    counts[f"{MALFORMED}/refused"] = 0
    for result in results:
        event = result.operation.event if result.operation is not None else MALFORMED
        if event not in events:
            event = MALFORMED
        counts[f"{event}/{'applied' if result.applied else 'refused'}"] += 1
    return counts
