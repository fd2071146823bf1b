"""The command that reproduces one eval run exactly, built from its run.json.

A board records it per setting (submission.json's `commands`, the board README's "Reproduce"
list), and `verify` rebuilds it from the submitted run.json, so a recorded command cannot drift
from the run it claims to reproduce. The agent overrides are the difference between the recipe
file's text (`agent_recipe_text`) and the resolved recipe (`recipe`) that run.json records;
`verify` compares everything but them, because re-deriving them depends on the recipe schema of
the memgym that verifies (a later version may resolve a recipe with more fields).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

import yaml

from memgym.errors import MemgymError
from memgym.leaderboard.board import flag_value

__all__ = ["eval_command", "recipe_overrides", "without_overrides"]


def eval_command(run: Mapping[str, Any], setting: str = "<setting>", board: str = "board", *,
                 overrides: bool = True) -> str:
    """The `memgym eval` command that reproduces one run exactly, from its run.json: the env id
    and every env kwarg it ran, the recipe file with the overrides that turn it into the
    resolved recipe the run recorded (`overrides=False` leaves them out), the backend, model
    and its settings, the judge, the episodes, K and seed."""
    parts = ["memgym eval", f"--env {run.get('env_id')}"]
    kwargs = _mapping(run, "env_kwargs")
    cached = {k: _cached_file(v) for k, v in kwargs.items() if k == "data_path"}
    cached = {k: v for k, v in cached.items() if v}
    if kwargs:
        parts.append("--env-kwargs " + " ".join(
            f'{k}="{cached[k]}"' if k in cached else shlex.quote(f"{k}={flag_value(v)}")
            for k, v in kwargs.items()))
    parts.append(f"--agent {shlex.quote(str(run.get('agent_recipe_file')))}")
    changed = recipe_overrides(run) if overrides else {}
    if changed:
        parts.append("--agent-overrides " + _pairs(changed))
    if run.get("backend"):
        parts.append(f"--backend {run['backend']} --model {shlex.quote(str(run.get('model')))}")
    urls = run.get("base_url")
    for url in ([urls] if isinstance(urls, str) else urls if isinstance(urls, list) else []):
        parts.append(f"--base-url {shlex.quote(str(url))}")
    if _mapping(run, "backend_kwargs"):
        parts.append("--backend-kwargs " + _pairs(_mapping(run, "backend_kwargs")))
    judge = run.get("judge")
    if isinstance(judge, Mapping) and judge.get("model"):
        parts.append(f"--judge-base-url {shlex.quote(str(judge.get('base_url')))} "
                     f"--judge-model {shlex.quote(str(judge['model']))}")
    parts.append(f"--episodes {run.get('episodes')} --avg-k {run.get('avg_k')} "
                 f"--seed {run.get('seed')} --out runs/{board}/{setting}")
    return " ".join(parts)


def without_overrides(command: str) -> str:
    """`command` without its `--agent-overrides ...` part (up to the next flag)."""
    head, sep, tail = command.partition(" --agent-overrides ")
    if not sep:
        return command
    rest = tail.split(" --", 1)
    return head + (" --" + rest[1] if len(rest) > 1 else "")


def recipe_overrides(run: Mapping[str, Any]) -> dict[str, Any]:
    """The `--agent-overrides` (dotted keys) that turn the run's recipe file, as recorded in
    `agent_recipe_text`, into the resolved recipe it recorded in `recipe`."""
    from memgym.agents.recipe import load_recipe

    resolved = run.get("recipe") if isinstance(run.get("recipe"), Mapping) else {}
    text = run.get("agent_recipe_text")
    try:
        base = load_recipe(yaml.safe_load(text if isinstance(text, str) else "") or {}).to_dict()
    except (MemgymError, yaml.YAMLError, AttributeError, TypeError, ValueError, KeyError):
        base = {"kind": resolved.get("kind")}  # unreadable: give every resolved value
    return _diff(base, resolved)


def _mapping(run: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = run.get(key)  # run.json is a submission's file: any JSON may be here
    return dict(value) if isinstance(value, Mapping) else {}


def _diff(base: Mapping[str, Any], resolved: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in resolved.items():
        have = base.get(key)
        if isinstance(value, Mapping) and isinstance(have, Mapping):
            out.update(_diff(have, value, f"{prefix}{key}."))
        elif key not in base or have != value:
            out[f"{prefix}{key}"] = value
    return out


def _pairs(values: Mapping[str, Any]) -> str:
    return " ".join(shlex.quote(f"{k}={flag_value(v)}") for k, v in values.items())


def _cached_file(value: Any) -> str:
    """For a data file `memgym data get` provides, the shell text that finds it on any machine
    (`$(memgym data path NAME --file FILE)`); "" for any other value."""
    from memgym.data.download import DATASETS

    if not isinstance(value, str):
        return ""
    for dataset in DATASETS.values():
        for file in dataset.files:
            if value.replace("\\", "/").endswith("/" + file.name) or value == file.name:
                return f"$(memgym data path {dataset.name} --file {file.name})"
    return ""
