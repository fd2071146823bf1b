"""Suite-wide: tests marked `needs_models(...)` skip, naming `memgym models prepare ...`, when a
named real model is not prepared (memgym.testing.models), so a fresh machine's run is green.
With MEMGYM_REQUIRE_MODELS=1 (.ci/run's real-model stage) an absent model fails the test instead,
so that stage cannot pass by skipping everything."""

from __future__ import annotations

import os

import pytest

from memgym.testing.models import MARKER_NAME, missing_models, skip_reason


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (listed by `pytest --markers`)."""
    config.addinivalue_line("markers", f"{MARKER_NAME}(*names): needs these prepared models")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose `needs_models` names a model that is not prepared here."""
    names = [name for mark in item.iter_markers(MARKER_NAME) for name in mark.args]
    missing = missing_models(names)
    if missing and os.environ.get("MEMGYM_REQUIRE_MODELS") == "1":
        pytest.fail(f"MEMGYM_REQUIRE_MODELS=1 but {skip_reason(missing)}", pytrace=False)
    if missing:
        pytest.skip(skip_reason(missing))
