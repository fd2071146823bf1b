"""Offline checks of an env id and its kwargs, before any data or model loads.

`memgym eval` and `memgym train --dry-run` both call `validate_env`, so a misspelt id or kwarg
fails in a second with the nearest valid name, not 5-50 s into a run. A `module:EnvId-v0` id
imports `module` from the current directory too (the `memgym` console script's `sys.path` does
not hold it), so a user's `myenvs.py` next to them is found without `PYTHONPATH`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from memgym.errors import ConfigError, did_you_mean

__all__ = ["align_answer_format", "env_accepts", "env_kwarg_names", "import_env_module", "validate_env"]


def import_env_module(env_id: str, field: str = "--env") -> None:
    """Import the module of a `module:EnvId` id, trying `sys.path` first, then the current dir.

    Raises:
        ConfigError: the module is in neither place, or one of its own imports is missing;
            `field` names where the id came from (`--env`, `env_id`).
    """
    module = env_id.split(":", 1)[0]
    if not module or module in sys.modules:
        return
    cwd = os.getcwd()
    for attempt in ("sys.path", "cwd"):
        if attempt == "cwd" and cwd not in sys.path:
            sys.path.insert(0, cwd)
        try:
            importlib.import_module(module)
            return
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):  # one of ITS imports
                raise ConfigError(f"{field} {env_id}: importing {module!r} failed: {exc} (a "
                                  f"module that {module!r} imports is missing; install it)"
                                  ) from exc
            if attempt == "cwd":
                raise ConfigError(
                    f"{field} {env_id}: no module {module!r} in the current directory ({cwd}) "
                    f"or on sys.path; run from the folder that holds "
                    f"{module.replace('.', '/')}.py, or add its folder to PYTHONPATH, or "
                    "install it") from exc


def env_kwarg_names(spec: gym.envs.registration.EnvSpec) -> set[str] | None:
    """The keyword arguments `gym.make(spec.id, **kwargs)` accepts, or None when unknowable.

    memgym's factories forward `**kwargs` to `LongContextMemoryEnv` (and the synthetic one to
    its task generator too), so those are followed; a user's factory that forwards `**kwargs`
    somewhere we cannot see gives None. Kwargs the registration fixes (a RULER env's task) and
    `gym.make`'s own arguments are accounted for.
    """
    from gymnasium.envs.registration import load_env_creator

    entry = spec.entry_point
    creator = load_env_creator(entry) if isinstance(entry, str) else entry
    target = creator.__init__ if inspect.isclass(creator) else creator
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return None
    names = {n for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        from memgym.envs import registration
        from memgym.envs.long_context import LongContextMemoryEnv

        if getattr(creator, "__module__", None) != registration.__name__:
            return None
        names |= set(inspect.signature(LongContextMemoryEnv.__init__).parameters) - {
            "self", "tasks", "source"}
        if creator is registration.make_synthetic:
            from memgym.data.synthetic import synthetic_tasks

            names |= set(inspect.signature(synthetic_tasks).parameters)
    names -= set(spec.kwargs or {})
    return names | (set(inspect.signature(gym.make).parameters) - {"id", "kwargs"})


def _spec(env_id: str, field: str) -> gym.envs.registration.EnvSpec:
    import memgym.envs  # noqa: F401 - registers memgym's ids

    if ":" in env_id:
        import_env_module(env_id, field)
    name = env_id.split(":", 1)[-1]
    try:
        return gym.spec(name)
    except gym.error.Error as exc:
        raise ConfigError(f"{field} {env_id}: no env {name!r} is registered."
                          f"{did_you_mean(name, list(gym.registry))} `memgym envs` lists "
                          "memgym's; give a user's env as module:EnvId-v0") from exc


def env_accepts(env_id: str, key: str) -> bool:
    """Whether the registered env `env_id` takes the keyword argument `key` (False if unknown)."""
    try:
        names = env_kwarg_names(_spec(env_id, "--env"))
    except ConfigError:
        return False
    return names is not None and key in names


def validate_env(env_id: str, env_kwargs: Mapping[str, Any] | None = None, *,
                 field: str = "--env", kwargs_field: str = "--env-kwargs") -> None:
    """Check an env id and its kwarg names without building the env (no data is loaded).

    Raises:
        ConfigError: an unknown id, a module that cannot be imported, or an unknown kwarg name,
            each with the nearest valid name; `field` / `kwargs_field` say where they came from.
    """
    spec = _spec(env_id, field)
    accepted = env_kwarg_names(spec)
    if accepted is None:
        return
    for key in env_kwargs or {}:
        if key not in accepted:
            raise ConfigError(f"{kwargs_field} {key}=...: {spec.id} has no argument {key!r}."
                              f"{did_you_mean(key, accepted)} Its arguments: "
                              f"{', '.join(sorted(accepted))}")


def align_answer_format(env_id: str, env_kwargs: dict[str, Any], agent_config: Any) -> None:
    """Let the env extract the answer format the agent's prompt asks for, unless kwargs set one.

    A MemAgent recipe with `answer_format: answer_is` (MemAgent's released eval prompt) then
    needs no matching `--env-kwargs answer_format=answer_is`; an explicit env kwarg wins (and the
    agent refuses a mismatch at its first step).
    """
    fmt = getattr(agent_config, "answer_format", None)
    if fmt and "answer_format" not in env_kwargs and env_accepts(env_id, "answer_format"):
        env_kwargs["answer_format"] = fmt
