"""Resolve `package.module:Name` import paths: a user's agent kind, policy function or template.

The one place memgym turns such a string into an object (recipes' `kind: mymod:MyAgent`,
`memory_fn`, `--backend scripted --model mymod:policy`). Like `memgym eval --env module:Id`, a
module that is not importable from `sys.path` is looked for in the current directory, so a
user's `my_agents.py` beside them is found without `PYTHONPATH`. Imports nothing of memgym's but
its errors, so any layer may use it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from memgym.errors import ConfigError

__all__ = ["import_callable", "import_object", "is_import_path"]


def is_import_path(spec: object) -> bool:
    """Whether `spec` reads as "package.module:attribute" (rather than a registered name)."""
    if not isinstance(spec, str):
        return False
    module, sep, attr = spec.partition(":")
    return bool(sep and module and attr) and "/" not in module and "\\" not in module


def _import_module(name: str, spec: str, key: str) -> ModuleType:
    """Import `name` from sys.path, else from the current directory; errors name `key`."""
    cwd = os.getcwd()
    for attempt in ("sys.path", "cwd"):
        if attempt == "cwd" and cwd not in sys.path:
            sys.path.insert(0, cwd)
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):  # one of ITS imports
                raise ConfigError(f"{key}={spec!r}: importing {name!r} failed: {exc} (a module "
                                  f"that {name!r} imports is missing; install it)") from exc
            if attempt == "cwd":
                raise ConfigError(
                    f"{key}={spec!r}: no module {name!r} on sys.path or in the current "
                    f"directory ({cwd}); run from the folder that holds "
                    f"{name.replace('.', '/')}.py, add its folder to PYTHONPATH, or install "
                    "it") from exc
        except ImportError as exc:
            raise ConfigError(f"{key}={spec!r}: cannot import {name!r} ({exc})") from exc
    raise AssertionError("unreachable")


def import_object(spec: str, *, key: str = "import path") -> Any:
    """Resolve "package.module:attribute" (attribute may be dotted) to the object it names.

    Raises:
        ConfigError: `spec` is malformed, the module cannot be imported, or it lacks the
            attribute; the message names `key` (the recipe key or flag) and the spec.
    """
    if not isinstance(spec, str) or not is_import_path(spec):
        raise ConfigError(f"{key}={spec!r}: expected 'package.module:Name'")
    module_name, _, attr = spec.partition(":")
    obj: Any = _import_module(module_name, spec, key)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{key}={spec!r}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def import_callable(spec: str, *, key: str = "callable") -> Callable[..., Any]:
    """Resolve "package.module:function" to a callable; errors name `key` and the spec."""
    obj = import_object(spec, key=key)
    if not callable(obj):
        raise ConfigError(f"{key}={spec!r} is not callable")
    return obj
