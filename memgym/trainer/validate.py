"""Offline checks of a training recipe, for `memgym train --dry-run`: nothing is loaded or run.

Each check fails at once with a ConfigError that names the key, the bad value and the nearest
valid one, instead of 5-50 s into a run (after the model has loaded, or after hub retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memgym.envs.validation import validate_env
from memgym.errors import ConfigError

__all__ = ["check_agent", "check_model", "check_recipe"]


def check_agent(agent: str | Mapping[str, Any]) -> None:
    """The agent recipe loads: its file (or shipped name) exists, its kind and keys are known."""
    from memgym.agents.recipe import load_recipe

    try:
        load_recipe(agent)
    except ConfigError as exc:
        raise ConfigError(f"agent={agent!r}: {exc}") from exc


def check_model(model: str) -> str:
    """Check that `model` resolves offline (`memgym.models.resolve_model_path`), without loading it.

    Returns:
        A note ("" when nothing is worth saying): an `org/name` hub id that is neither cached nor
        reachable now is left to the run (which fails at once offline), not refused here.

    Raises:
        ConfigError: any other name that does not resolve, saying what was tried.
    """
    from memgym.models import resolve_model_path

    try:
        resolve_model_path(model)
    except ConfigError as exc:
        if model.count("/") == 1 and not model.startswith((".", "/", "~")) \
                and not Path(model).exists():
            return f"note: model={model!r} could not be checked now ({exc})"
        raise
    return ""


def check_recipe(config: Any) -> list[str]:
    """Run every offline check on a GRPOConfig; returns notes to print."""
    validate_env(config.env_id, config.env_kwargs, field="env_id", kwargs_field="env_kwargs")
    check_agent(config.agent)
    note = check_model(config.model)
    return [note] if note else []
