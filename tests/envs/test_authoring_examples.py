"""The worked examples under envs/examples/ register and pass memgym's environment checker."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from memgym.testing import check_memgym_env

EXAMPLES = Path(__file__).parents[2] / "envs" / "examples"
CASES = [("jsonl-qa", "jsonl_qa", {}), ("jsonl-qa", "jsonl_qa", {"num_distractors": 20}),
         ("dialogue-recall", "dialogue_recall", {"num_tasks": 4}),
         ("preference-recall", "preference_recall", {"num_tasks": 8})]


def _register(folder: str, module: str):
    if str(EXAMPLES / folder) not in sys.path:
        sys.path.insert(0, str(EXAMPLES / folder))
    package = importlib.import_module(module)
    package.register()
    return package


@pytest.mark.parametrize("folder,module,kwargs", CASES)
def test_example_registers_and_passes_the_checker(folder, module, kwargs):
    package = _register(folder, module)
    env = gym.make(package.ENV_ID, **kwargs)
    check_memgym_env(env)
    env.close()


@pytest.mark.slow  # each example's own test suite in a subprocess: ~4 s each
@pytest.mark.parametrize("folder", ["jsonl-qa", "dialogue-recall", "preference-recall"])
def test_example_passes_its_own_tests(folder):
    root = EXAMPLES / folder
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = f"{root}{os.pathsep}{EXAMPLES.parents[1]}"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                         cwd=root, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
