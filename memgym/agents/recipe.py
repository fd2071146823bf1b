"""Agent recipes: YAML files (or dicts) validated into a kind's config and built into an Agent.

    >>> agent = load_agent("memagent", backend, overrides=["temperature=0"])   # a shipped recipe
    >>> agent = load_agent("my_recipe.yaml", backend)                          # a file

A recipe names its `kind` and sets that kind's fields; nothing else is allowed:

    kind: memory_r1                       # a registered kind (AGENT_KINDS) ...
    manager: {temperature: 0.0}           # an LLMCall field: applied over the kind's default

    kind: my_agents:AppendOnlyAgent       # ... or a user's class or factory, imported
    answerer: {max_new_tokens: 64}

A kind is a config dataclass plus a builder (`AgentKind`, the shipped ones in
`memgym.agents.kinds`); a user's class or factory becomes one from its signature (`AgentKind.from_factory`): its keyword parameters are the recipe's fields,
`backend=` gets the run's LLM backend (a factory without a `backend` parameter runs without
one). Each LLM call is an `LLMCall` field whose default is the kind's own setting, so
`llm_calls` finds every call of any agent, which is how the trainer sets its sampling on every
trainable one (`trainer_sampling_overrides`); the MemAgent-style kinds' flat keys
(`temperature`, `*_max_new_tokens`) count as one call. The config objects stop here and never
reach the components. Unknown keys and kinds are ConfigErrors naming the file, the key and
the closest valid name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memgym.agents.base import Agent
from memgym.agents.calls import LLMCall
from memgym.agents.kinds import (  # re-exported: recipes' configs are part of this API
    AGENT_KINDS,
    AgentKind,
    BankOracleConfig,
    DialogueFullContextConfig,
    DialogueOracleConfig,
    FullContextConfig,
    Mem0StyleConfig,
    Mem1Config,
    MemAgentConfig,
    MemoryR1Config,
    OracleConfig,
    RagBM25Config,
    RagTurnsConfig,
    RMMConfig,
    ScriptedPolicyConfig,
    SharedSampling,
)
from memgym.config import from_dict, load_yaml, merge, parse_overrides
from memgym.errors import ConfigError, unknown_name
from memgym.imports import import_object, is_import_path
from memgym.llm.base import LLMBackend
from memgym.llm.spec import BackendSpec
from memgym.recipes import find_recipe

__all__ = [
    "AGENT_KINDS",
    "AgentKind",
    "AgentRecipe",
    "BackendSpec",
    "BankOracleConfig",
    "DialogueFullContextConfig",
    "DialogueOracleConfig",
    "FullContextConfig",
    "LLMCall",
    "Mem0StyleConfig",
    "Mem1Config",
    "MemAgentConfig",
    "MemoryR1Config",
    "OracleConfig",
    "RMMConfig",
    "RagBM25Config",
    "RagTurnsConfig",
    "ScriptedPolicyConfig",
    "SharedSampling",
    "build_agent",
    "llm_calls",
    "load_agent",
    "load_recipe",
    "register_agent_kind",
    "trainer_sampling_overrides",
]


def register_agent_kind(name: str, kind: AgentKind | Callable[..., Agent]) -> AgentKind:
    """Make an agent kind available to recipes as `kind: name`.

    Args:
        name: the recipe name; a name may be registered once.
        kind: an `AgentKind`, or an agent class or factory whose keyword parameters are the
            recipe's fields (see `AgentKind.from_factory`). A recipe can also name a class or
            factory directly, `kind: package.module:Name`, without registering it.

    Returns:
        The registered AgentKind.
    """
    if name in AGENT_KINDS:
        raise ConfigError(f"agent kind {name!r} is already registered")
    if not isinstance(kind, AgentKind):
        kind = AgentKind.from_factory(kind, where=name)
    if not dataclasses.is_dataclass(kind.config):
        raise ConfigError(f"agent kind {name!r}: config must be a dataclass")
    AGENT_KINDS[name] = kind
    return kind


def _resolve_kind(kind: Any, source: str) -> AgentKind:
    """The AgentKind a recipe's `kind` names: registered, or imported from 'module:Name'."""
    if isinstance(kind, str) and kind in AGENT_KINDS:
        return AGENT_KINDS[kind]
    if is_import_path(kind):
        found = import_object(kind, key=f"{source}: kind")
        if isinstance(found, AgentKind):
            return found
        if callable(found):
            return AgentKind.from_factory(found, where=kind)
        raise ConfigError(f"{source}: kind {kind!r} is a {type(found).__name__}, not an agent "
                          "class, factory or AgentKind")
    err = unknown_name("agent kind", str(kind), AGENT_KINDS)
    raise ConfigError(f"{source}: kind: {err} (or 'package.module:Name' for your own "
                      "agent class or factory)") from err


def _over_call_defaults(config: type, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with each LLMCall field's mapping applied over that field's default.

    A key set to null keeps the default (as the recipes memgym wrote before LLMCall had
    defaults on the class, e.g. `temperature: null` in an older run.json, read).
    """
    out = dict(data)
    for f in dataclasses.fields(config):
        if isinstance(f.default, LLMCall) and isinstance(out.get(f.name), Mapping):
            default = {k: v for k, v in dataclasses.asdict(f.default).items() if v is not None}
            given = {k: v for k, v in out[f.name].items() if v is not None}
            out[f.name] = merge(default, given)
    return out


# -- loading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentRecipe:
    """A validated recipe: its kind, its config and where it came from.

    Attributes:
        kind: a key of AGENT_KINDS, or the 'package.module:Name' of a user's kind.
        config: the kind's config dataclass, defaults filled in and overrides applied.
        source: the recipe file, or "<dict>".
        text: the recipe file's text as read ("" for a dict), kept with results.
        definition: the AgentKind that builds it.
    """

    kind: str
    config: Any
    source: str = "<dict>"
    text: str = ""
    definition: AgentKind | None = None

    @property
    def agent_kind(self) -> AgentKind:
        """The AgentKind that builds this recipe."""
        return self.definition or _resolve_kind(self.kind, self.source)

    @property
    def needs_backend(self) -> bool:
        """Whether building this agent needs an LLM backend."""
        return self.agent_kind.needs_backend

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as a plain dict (kind first), as written next to results."""
        return {"kind": self.kind, **dataclasses.asdict(self.config)}


def load_recipe(recipe: str | Path | Mapping[str, Any],
                overrides: Sequence[str] | Mapping[str, Any] = ()) -> AgentRecipe:
    """Read and validate a recipe (a file, a shipped recipe's name, or a dict) with overrides.

    Args:
        recipe: a YAML path, the name of a shipped recipe ("memagent", see `memgym agents`), a
            user's kind as 'package.module:Name' (its defaults), or the recipe as a mapping.
        overrides: ["temperature=0", "manager.temperature=0", ...] or a mapping, applied over it.

    Raises:
        ConfigError: a missing recipe, a missing or unknown `kind`, an unknown key, or a value of
            the wrong type; the message names the file, the key and the closest valid name.
    """
    if isinstance(recipe, Mapping):
        data, source, text = dict(recipe), "<dict>", ""
    elif is_import_path(str(recipe)) and not Path(recipe).is_file():  # --agent mymod:MyAgent
        data, source, text = {"kind": str(recipe)}, str(recipe), ""
    else:
        path = find_recipe(recipe, "agents")
        # a shipped recipe is recorded by its repository path, which every install resolves
        # (results and leaderboard entries then name the same file wherever they were made)
        source = str(recipe) if Path(recipe).is_file() else f"agents/{path.name}"
        data, text = load_yaml(path), path.read_text(encoding="utf-8")
    extra = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
    data = merge(data, extra)
    kind = data.pop("kind", None)
    if kind is None:
        raise ConfigError(f"{source}: the recipe has no 'kind'; set one of "
                          f"{', '.join(sorted(AGENT_KINDS))}, or 'package.module:Name'")
    definition = _resolve_kind(kind, source)
    try:
        config = from_dict(definition.config, _over_call_defaults(definition.config, data))
    except ConfigError as exc:
        raise ConfigError(f"{source} (kind {kind}): {exc}") from exc
    return AgentRecipe(str(kind), config, source, text, definition)


def build_agent(recipe: AgentRecipe, backend: LLMBackend | None) -> Agent:
    """Build the agent a validated recipe describes, on `backend`."""
    kind = recipe.agent_kind
    if kind.needs_backend and backend is None:
        raise ConfigError(f"{recipe.source}: agent kind {recipe.kind!r} calls an LLM; "
                          "pass a backend (memgym eval: --backend and --model)")
    return kind.build(recipe.config, backend)


def load_agent(recipe: str | Path | Mapping[str, Any], backend: LLMBackend | None,
               overrides: Sequence[str] | Mapping[str, Any] = ()) -> Agent:
    """Build an agent from a recipe file, a shipped recipe's name or a dict, with overrides.

    Args:
        recipe: a YAML recipe path (e.g. "agents/memagent.yaml"), a shipped recipe's name
            ("memagent"), or the recipe as a dict.
        backend: the LLM backend the agent calls (None for kinds that make no LLM calls).
        overrides: ["temperature=0", ...] or a dict, applied over the recipe.
    """
    return build_agent(load_recipe(recipe, overrides), backend)


# -- the LLM calls of a recipe, for the trainer ---------------------------------------------------
def llm_calls(config: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every LLM call a recipe's config declares, as (recipe key path, the object holding it).

    An `LLMCall` anywhere in the config (a field, or inside a list or mapping field) is one call
    at its key path ("manager"); a config with flat sampling keys (`SharedSampling`, or any
    config with a `temperature` field) is one entry at its own path ("" at the top), standing
    for every call that shares those keys.
    """
    if isinstance(config, LLMCall):
        yield path, config
        return
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        names = [f.name for f in dataclasses.fields(config)]
        if "temperature" in names:
            yield path, config
        for name in names:
            yield from llm_calls(getattr(config, name), f"{path}.{name}" if path else name)
    elif isinstance(config, Mapping):
        for key, value in config.items():
            yield from llm_calls(value, f"{path}.{key}" if path else str(key))
    elif isinstance(config, (list, tuple)):
        for i, value in enumerate(config):
            yield from llm_calls(value, f"{path}.{i}" if path else str(i))


def _at(path: str, values: dict[str, Any]) -> dict[str, Any]:
    """`values` nested under a dotted key path ("" is the top)."""
    for part in reversed(path.split(".") if path else []):
        values = {part: values}
    return values


_NEUTRAL = {"top_p": 1.0, "top_k": 0}
"""Sampling values that truncate nothing: a call without the key samples as if it had them."""


def _flat_sampling(recipe: AgentRecipe, path: str, config: Any, values: dict[str, Any]
                   ) -> dict[str, Any]:
    """The trainer's `values` for a config of flat sampling keys; a key the config lacks is
    refused by name unless the trainer's value truncates nothing (top_p 1, top_k 0)."""
    for key, value in values.items():
        neutral = _NEUTRAL.get("top_k" if key.endswith("top_k") else key)
        if not hasattr(config, key) and value != neutral:
            where = f"{path}." if path else ""
            raise ConfigError(f"{recipe.source}: agent kind {recipe.kind!r} has no "
                              f"{where}{key}, so its trainable calls cannot sample at the "
                              f"trainer's {key}={value}; set {key}={neutral} in the training "
                              "recipe or declare each call as an LLMCall (see agents/README.md)")
    return {k: v for k, v in values.items() if hasattr(config, k)}


def trainer_sampling_overrides(recipe: AgentRecipe, *, temperature: float, top_p: float,
                               top_k: int, max_new_tokens: int) -> dict[str, Any]:
    """Recipe overrides that put the trainer's sampling on every trainable LLM call.

    The trainer's temperature is the one its log-probs assume, so it replaces every trainable
    call's own, as do top_p and top_k (a recipe's own never truncates silently);
    `max_new_tokens` (the trainer's max_completion_length) caps each call's cap. Frozen calls
    keep their settings.

    Raises:
        ConfigError: the agent makes LLM calls on the trained backend but declares none of them
            (a user's kind without `LLMCall` parameters or flat `temperature`), so the trainer
            cannot set its sampling; the message names the kind and the fix.
    """
    out: dict[str, Any] = {}
    found = False
    for path, call in llm_calls(recipe.config):
        found = True
        if not getattr(call, "trainable", True):
            continue
        if isinstance(call, LLMCall):
            values: dict[str, Any] = {"temperature": temperature, "top_p": top_p,
                                      "top_k": top_k}
            if call.max_new_tokens > max_new_tokens:
                values["max_new_tokens"] = max_new_tokens
        else:
            top_k_key = getattr(call, "SAMPLING_TOP_K", "top_k")
            values = _flat_sampling(recipe, path, call, {"temperature": temperature,
                                                         "top_p": top_p, top_k_key: top_k})
            values.update({f.name: max_new_tokens for f in dataclasses.fields(call)
                           if f.name.endswith("max_new_tokens")
                           and isinstance(getattr(call, f.name), int)
                           and getattr(call, f.name) > max_new_tokens})
        out = merge(out, _at(path, values))
    if not found and recipe.needs_backend:
        raise ConfigError(f"{recipe.source}: agent kind {recipe.kind!r} declares no LLM call, so "
                          "the trainer cannot give its calls the trainer's sampling (temperature, "
                          "top_p, top_k, max_completion_length); declare each call as an LLMCall "
                          "parameter (see agents/README.md)")
    return out
