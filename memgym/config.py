"""YAML recipes, `key=value` overrides, and validation into dataclasses.

Only the CLI and recipe entry points use this module: they turn a recipe file plus overrides into
typed dataclasses once, and components below them take plain arguments. Every bad key is reported
with where it came from and the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from memgym.errors import ConfigError, did_you_mean

__all__ = ["KEYS_HELP", "from_dict", "load_yaml", "merge", "parse_overrides", "to_dict"]

T = TypeVar("T")

KEYS_HELP: dict[type, str] = {}
"""Per config dataclass, the command that lists its keys, named by an unknown-key error in
place of the whole list when there are many (e.g. GRPOConfig: `memgym train --help-keys`)."""

_LIST_ALL_UP_TO = 15
"""An unknown-key error lists every valid key up to this many, else the nearest few."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe into a dict; syntax errors name the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of keys to values, "
                          f"got {type(data).__name__}")
    return data


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """Turn `["a.b=1", "c=[x, y]"]` into a nested dict; values are parsed as YAML scalars/lists."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override of {part!r}")
        node[parts[-1]] = value
    return out


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge `override` into a copy of `base` (override wins)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            choices = ", ".join(repr(a) for a in typing.get_args(hint))
            raise ConfigError(f"{where}={value!r} is not allowed; choose one of {choices}")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return from_dict(hint, value, where=where)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or hint is tuple) else items
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # PyYAML reads "1e-5" (no dot) as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}={value!r}: expected a number") from None
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(hint, type) and not isinstance(value, hint) or (
            hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}={value!r}: expected {getattr(hint, '__name__', hint)}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass `cls` from `data`, rejecting unknown keys and values of the wrong type.

    Args:
        cls: the dataclass to build (nested dataclass fields are built recursively).
        data: the mapping, e.g. a loaded recipe merged with overrides.
        where: a prefix for error messages (a file name or a parent key).
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        lines = [f"{where + '.' if where else ''}{k}: unknown key.{did_you_mean(k, fields)}"
                 for k in unknown]
        raise ConfigError("; ".join(lines) + _valid_keys(cls, list(fields), unknown))
    kwargs = {name: _check_type(value, hints[name], f"{where + '.' if where else ''}{name}")
              for name, value in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def _valid_keys(cls: type, names: list[str], unknown: list[str]) -> str:
    """The tail of an unknown-key error: every valid key when few, else the nearest few and the
    command that lists them all (a recipe key error once listed all 70 on one line)."""
    if len(names) <= _LIST_ALL_UP_TO:
        return f" (valid keys: {', '.join(names)})"
    near = dict.fromkeys(name for key in unknown
                         for name in difflib.get_close_matches(key, names, n=4, cutoff=0.4))
    where = f"`{KEYS_HELP[cls]}`" if cls in KEYS_HELP else f"the fields of {cls.__qualname__}"
    nearest = f"nearest keys: {', '.join(list(near)[:5])}; " if near else ""
    return f" ({nearest}all {len(names)} keys: {where})"


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a plain dict (for writing the resolved recipe next to results)."""
    return dataclasses.asdict(obj)
