"""Bounded, inert reading of submission files: JSON and JSONL only, every size capped.

Nothing in a submission is executed, imported or unpickled: files are read as bytes (after an
`lstat` size check; links and non-regular files are refused), decoded as UTF-8 and parsed by
`json` with NaN/Infinity refused. Every failure is a `Problem` naming the file and the field,
never an exception, so `verify` reports it and goes on.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LIMITS", "Limits", "Problem", "read_json", "read_jsonl", "string_too_long"]


@dataclass(frozen=True)
class Limits:
    """Size bounds of a submission's files and fields."""

    file_bytes: int = 32 * 2**20
    """Largest file (predictions.jsonl of 128 tasks x 8 attempts fits comfortably)."""
    line_bytes: int = 2 * 2**20
    """Largest JSONL line."""
    rows: int = 200_000
    """Most rows in one predictions file."""
    string_chars: int = 2**20
    """Longest string field (the env scores at most the last 2**20 characters of an answer)."""
    short_chars: int = 4096
    """Longest metadata string (name, model, hardware, link, command, ...)."""
    files: int = 4096
    """Most files in one submission folder."""


LIMITS = Limits()


@dataclass(frozen=True)
class Problem:
    """Why a submission is rejected: the file, the field (or line), and the reason."""

    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}" if self.field else \
            f"{self.file}: {self.reason}"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _read_bytes(path: Path, limit: int, label: str) -> tuple[bytes | None, Problem | None]:
    try:
        info = os.lstat(path)
    except OSError:
        return None, Problem(label, "", "file is missing")
    if not stat.S_ISREG(info.st_mode):
        return None, Problem(label, "", "not a regular file (links and devices are refused)")
    if info.st_size > limit:
        return None, Problem(label, "", f"file is {info.st_size} bytes, over the {limit}-byte "
                                        "limit")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        return None, Problem(label, "", f"cannot be read ({exc.strerror})")
    if len(data) > limit:
        return None, Problem(label, "", f"file is over the {limit}-byte limit")
    return data, None


def _parse(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse_constant)


def read_json(path: Path, label: str, limit: int = LIMITS.file_bytes
              ) -> tuple[Any, list[Problem]]:
    """One JSON document, or (None, [the problem])."""
    data, problem = _read_bytes(path, limit, label)
    if problem is not None:
        return None, [problem]
    try:
        return _parse(data.decode("utf-8")), []
    except UnicodeDecodeError as exc:
        return None, [Problem(label, "", f"not UTF-8 (byte {exc.start})")]
    except RecursionError:
        return None, [Problem(label, "", "malformed JSON: nested too deeply")]
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, ints too long to convert
        return None, [Problem(label, "", f"malformed JSON: {str(exc)[:200]}")]


def read_jsonl(path: Path, label: str, limits: Limits = LIMITS
               ) -> tuple[list[tuple[int, Any]], list[Problem]]:
    """Every (line number, row) of a JSONL file; each bad line is a Problem (the rest still read)."""
    data, problem = _read_bytes(path, limits.file_bytes, label)
    if problem is not None:
        return [], [problem]
    rows: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        where = f"line {number}"
        if len(rows) >= limits.rows:
            problems.append(Problem(label, where, f"more than {limits.rows} rows"))
            break
        if len(raw) > limits.line_bytes:
            problems.append(Problem(label, where, f"line is {len(raw)} bytes, over the "
                                                  f"{limits.line_bytes}-byte limit"))
            continue
        try:
            rows.append((number, _parse(raw.decode("utf-8"))))
        except UnicodeDecodeError as exc:
            problems.append(Problem(label, where, f"not UTF-8 (byte {exc.start})"))
        except RecursionError:
            problems.append(Problem(label, where, "malformed JSON: nested too deeply"))
        except ValueError as exc:
            problems.append(Problem(label, where, f"malformed JSON: {str(exc)[:200]}"))
        if len(problems) > 100:
            problems.append(Problem(label, "", "too many bad lines; stopped reading"))
            break
    return rows, problems


def string_too_long(value: Any, limit: int) -> str | None:
    """The path of the first string inside `value` longer than `limit` characters, or None.

    Walks dicts and lists iteratively (no recursion limit to hit); keys count as strings too.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if len(item) > limit:
                return where or "(value)"
        elif isinstance(item, dict):
            for k, v in item.items():
                if len(k) > limit:
                    return f"{where}.<key>" if where else "<key>"
                stack.append((f"{where}.{k}" if where else k, v))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))
    return None
