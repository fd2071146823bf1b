"""Typed, actionable errors. Every exception memgym raises on bad input derives from MemgymError."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MemgymError(Exception):
    """Base class of every error memgym raises about bad input or configuration."""


class DataError(MemgymError, ValueError):
    """A data file or row is malformed; the message names the file, the line or index, and the field."""


class ConfigError(MemgymError, ValueError):
    """A configuration key or value is invalid; the message names the key and the fix."""


class UnknownNameError(MemgymError, KeyError):
    """A name (component, scorer, env, backend) is not registered; the message suggests the nearest."""

    def __str__(self) -> str:  # KeyError would repr() the message, adding quotes
        return str(self.args[0]) if self.args else ""


class BackendError(MemgymError, RuntimeError):
    """An LLM backend failed (server down, bad response); the message names the backend and URL."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean X?' for the closest of `choices` to `name`, or '' if none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UnknownNameError:
    """Build an UnknownNameError for `name` among `choices`, listing them and the nearest match."""
    choices = sorted(choices)
    return UnknownNameError(
        f"unknown {kind} {name!r}.{did_you_mean(name, choices)} Known: {', '.join(choices)}"
    )
