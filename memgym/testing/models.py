"""Which named models a test needs, and a skip that says how to get them.

A test that needs a prepared real model (`memgym models prepare NAME`) carries the
`needs_models` marker; memgym's tests/conftest.py skips it when one is absent, naming the
command, so the README's `python -m pytest -q` passes on a fresh machine with an empty cache,
and `python -m pytest -m needs_models` runs exactly those tests once the models are prepared:

    @needs_models("smollm2-135m-instruct")
    def test_...(): ...

    @pytest.mark.parametrize("recipe", recipe_params(paths))   # marks each recipe that names one
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memgym.models.registry import MODELS, is_present, prepare_command

__all__ = ["MARKER_NAME", "missing_models", "models_named_in", "needs_models", "recipe_params",
           "skip_reason"]

MARKER_NAME = "needs_models"
"""The pytest marker: `@pytest.mark.needs_models("smollm2-135m-instruct", ...)`."""


def _needs_preparing(name: str) -> bool:
    return name in MODELS and MODELS[name].kind != "embedded"


def missing_models(names: Iterable[str]) -> list[str]:
    """The names among `names` that are named models not prepared in memgym's cache."""
    return [name for name in dict.fromkeys(names) if _needs_preparing(name) and not is_present(name)]


def skip_reason(missing: list[str]) -> str:
    """The skip message: which models are absent and the one command that prepares them."""
    return (f"{', '.join(missing)} not prepared here; run "
            f"`{prepare_command(' '.join(missing))}` (then `python -m pytest -m needs_models`)")


def models_named_in(config: Any) -> list[str]:
    """Named models (those `memgym models prepare` makes) that a recipe uses anywhere in its
    values: a mapping, a list, or a YAML file's path."""
    if isinstance(config, Path):
        import yaml

        config = yaml.safe_load(config.read_text())
    if isinstance(config, str):
        return [config] if _needs_preparing(config) else []
    values = config.values() if isinstance(config, dict) else \
        config if isinstance(config, (list, tuple)) else ()
    return list(dict.fromkeys(name for value in values for name in models_named_in(value)))


def needs_models(*names: str):  # -> pytest.MarkDecorator (pytest is a dev dependency)
    """The `needs_models` marker for these names."""
    import pytest

    return getattr(pytest.mark, MARKER_NAME)(*names)


def recipe_params(paths: Iterable[Path]) -> list:
    """One `pytest.param` per recipe file, id'd by its stem, marked with the models it names."""
    import pytest

    return [pytest.param(path, id=path.stem,
                         marks=[needs_models(*named)] if (named := models_named_in(path)) else [])
            for path in paths]


def real_vllm_marks() -> list:
    """The marks of a real-engine vLLM test module (`pytestmark = real_vllm_marks()`): vllm and
    slow, skipped where `vllm` is not importable, naming how to get an environment that has it."""
    import importlib.util

    import pytest

    return [pytest.mark.vllm, pytest.mark.slow, pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="needs vLLM: build its environment with scripts/install_vllm_cpu.sh VENV and run "
        "these tests with VENV/bin/python (.ci/vllm_cpu does both), or pip install memgym[vllm] "
        "on a GPU")]
