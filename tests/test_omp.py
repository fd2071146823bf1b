"""memgym._omp: `import memgym` makes OpenMP workers sleep instead of spin, unless told otherwise.

The behaviour is read back from libgomp itself (OMP_DISPLAY_ENV=VERBOSE prints its settings when
torch loads it): GOMP_SPINCOUNT 0 means idle workers sleep at once (the passive policy).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from memgym._omp import WAIT_POLICY, prefer_passive_omp_wait

ROOT = Path(__file__).parents[1]


def _libgomp_settings(code: str, **env: str) -> dict[str, str]:
    """Run `code` in a fresh interpreter; the settings libgomp printed when it was loaded."""
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environ.update(env, OMP_DISPLAY_ENV="VERBOSE", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", code + "; torch.ones(2) + 1"], env=environ,
                          capture_output=True, text=True, timeout=300, check=True)
    settings = {}
    for line in done.stderr.splitlines():
        name, sep, value = line.strip().partition(" = ")
        if sep:
            settings[name] = value.strip("'")
    if "GOMP_SPINCOUNT" not in settings:
        pytest.skip("torch's OpenMP runtime is not GNU libgomp (no GOMP_SPINCOUNT to read back)")
    return settings


def test_importing_memgym_before_torch_makes_openmp_workers_sleep_instead_of_spin():
    before = _libgomp_settings("import torch")
    after = _libgomp_settings("import memgym, torch")
    assert before["GOMP_SPINCOUNT"] != "0"  # libgomp's own default spins
    assert after["GOMP_SPINCOUNT"] == "0"


def test_a_wait_policy_the_user_set_is_kept():
    settings = _libgomp_settings(
        "import memgym, os, torch; assert os.environ['OMP_WAIT_POLICY'] == 'ACTIVE'",
        OMP_WAIT_POLICY="ACTIVE")
    assert settings["OMP_WAIT_POLICY"] == "ACTIVE"


def test_prefer_passive_says_whether_it_took_effect(monkeypatch):
    import torch  # noqa: F401 - loaded: too late for this process's runtime

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert prefer_passive_omp_wait() is False
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert prefer_passive_omp_wait() is False  # set, but torch's runtime was already loaded
    assert os.environ["OMP_WAIT_POLICY"] == WAIT_POLICY


def _backend_log(imports: str) -> str:
    """stderr of building a TransformersBackend on 2 torch threads after `imports`."""
    code = (f"{imports}; import logging; logging.basicConfig(); "
            "from memgym.llm.hf import TransformersBackend; "
            "TransformersBackend('embedded', threads=2).close()")
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    environ.update(PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True,
                          text=True, timeout=300, check=True).stderr


def test_the_backend_warns_when_torch_was_imported_before_memgym():
    assert "OMP_WAIT_POLICY=PASSIVE" in _backend_log("import torch, memgym")
    assert "OMP_WAIT_POLICY" not in _backend_log("import memgym, torch")
