"""Offline checks of a training recipe, for `memgym train --dry-run`: nothing is loaded or run.

Each check fails at once with a ConfigError that names the key, the bad value and the nearest
valid one, instead of 5-50 s into a run (after the model has loaded, or after hub retries).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memgym.errors import ConfigError, did_you_mean

__all__ = ["check_agent", "check_env_id", "check_env_kwargs", "check_model", "check_recipe"]

_MODEL_ALIASES = ("tiny", "embedded")


def check_env_id(env_id: str) -> Any:
    """The Gymnasium spec of `env_id`; `module:Env-v0` imports module (from the working folder too).

    Raises:
        ConfigError: the module cannot be imported, or the id is not registered (did-you-mean).
    """
    import gymnasium as gym

    import memgym.envs  # noqa: F401 - registers memgym's ids

    if ":" in env_id:
        module, _, env_id = env_id.partition(":")
        if os.getcwd() not in sys.path:  # `--env mymod:MyEnv-v0` from the folder holding mymod
            sys.path.insert(0, os.getcwd())
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"env_id: module {module!r} could not be imported ({exc}); run "
                              "from the folder that holds it or put it on PYTHONPATH") from exc
    if env_id not in gym.registry:
        raise ConfigError(f"env_id={env_id!r} is not registered.{did_you_mean(env_id, gym.registry)}"
                          " `memgym envs` lists memgym's ids; a user env is `module:Env-v0`")
    return gym.spec(env_id)


def _entry_point(spec: Any) -> Any:
    entry = spec.entry_point
    if callable(entry):
        return entry
    module, _, name = str(entry).partition(":")
    return getattr(importlib.import_module(module), name)


def _accepted_kwargs(spec: Any) -> set[str] | None:
    """Keyword arguments the env's constructor takes, or None when it cannot be told."""
    entry = _entry_point(spec)
    target = entry.__init__ if inspect.isclass(entry) else entry
    params = inspect.signature(target).parameters
    names = {n for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return names
    if getattr(entry, "__module__", "") != "memgym.envs.registration":
        return None  # a user's factory forwards **kwargs somewhere we cannot see
    # memgym's factories forward the rest to LongContextMemoryEnv (and the synthetic one to
    # the task generator first)
    from memgym.data.synthetic import synthetic_tasks
    from memgym.envs.long_context import LongContextMemoryEnv

    names |= {n for n in inspect.signature(LongContextMemoryEnv.__init__).parameters
              if n not in ("self", "tasks")}
    if entry.__name__ == "make_synthetic":
        names |= set(inspect.signature(synthetic_tasks).parameters)
    return names


def check_env_kwargs(spec: Any, env_kwargs: Mapping[str, Any]) -> None:
    """Every key of `env_kwargs` is a parameter of the env's constructor.

    Raises:
        ConfigError: naming each unknown key with the nearest accepted one.
    """
    accepted = _accepted_kwargs(spec)
    if accepted is None:
        return
    accepted -= set(spec.kwargs)  # fixed by the registration (e.g. a RULER env's task)
    bad = [k for k in env_kwargs if k not in accepted]
    if bad:
        lines = [f"env_kwargs.{k}: {spec.id} takes no such argument.{did_you_mean(k, accepted)}"
                 for k in bad]
        raise ConfigError("; ".join(lines) + f" It takes: {', '.join(sorted(accepted))}")


def check_agent(agent: str | Mapping[str, Any]) -> None:
    """The agent recipe loads: its file exists, its kind and keys are known (did-you-mean)."""
    from memgym.agents.recipe import load_recipe

    if isinstance(agent, str) and not Path(agent).is_file():
        raise ConfigError(f"agent={agent!r}: no such recipe file (see agents/ for examples)")
    load_recipe(agent)


def check_model(model: str) -> str:
    """Where `model` resolves offline: an alias, a local folder, or the local hub cache.

    Returns:
        A note ("" when nothing is worth saying), e.g. that a hub id is not cached yet.

    Raises:
        ConfigError: a name that is none of these and does not look like a hub id.
    """
    if model in _MODEL_ALIASES:
        return ""
    if Path(model).is_dir():
        if not (Path(model) / "config.json").is_file():
            raise ConfigError(f"model={model!r}: the folder holds no config.json (not a "
                              "transformers model folder)")
        return ""
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(model, "config.json"), str):
            return ""
    except Exception:  # noqa: BLE001, S110 - not installed, or not a valid repo id
        pass
    if model.count("/") == 1 and not model.startswith((".", "/")):
        return (f"note: model={model!r} is not in the local hub cache; the run will download it "
                "(or fail at once with HF_HUB_OFFLINE=1)")
    raise ConfigError(f"model={model!r}: not 'tiny' or 'embedded', not a local folder, and not a "
                      f"hub id in the local cache.{did_you_mean(model, _MODEL_ALIASES)} Give a "
                      "local model folder, 'embedded', 'tiny', or an org/name hub id")


def check_recipe(config: Any) -> list[str]:
    """Run every offline check on a GRPOConfig; returns notes to print."""
    spec = check_env_id(config.env_id)
    check_env_kwargs(spec, config.env_kwargs)
    check_agent(config.agent)
    note = check_model(config.model)
    return [note] if note else []
