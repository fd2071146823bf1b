"""The generated env catalog, `memgym envs new`, and entry-point registration of outside envs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import gymnasium as gym
import pytest

import memgym  # noqa: F401
from memgym.cli import main
from memgym.envs.authoring import catalog_markdown, check_catalog, new_env_package, write_catalog
from memgym.envs.registration import ENV_DESCRIPTIONS, PLUGIN_ENVS, register_entry_point_envs
from memgym.errors import ConfigError

REPO = Path(__file__).parents[2]
README = REPO / "envs" / "README.md"


def test_catalog_in_envs_readme_is_current():
    assert check_catalog(README) is None, "run `memgym envs catalog --write`"


def test_catalog_lists_every_memgym_registered_id():
    text = catalog_markdown()
    # A "|" inside a description is escaped so it does not end the table cell.
    missing = [env_id for env_id, blurb in ENV_DESCRIPTIONS.items()
               if f"| `{env_id}` | {blurb.replace('|', chr(92) + '|')}" not in text]
    assert missing == []


def test_stale_catalog_is_reported_and_rewritten(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("intro\n<!-- catalog:start -->\nold\n<!-- catalog:end -->\nrest\n")
    assert "stale; run `memgym envs catalog --write`" in check_catalog(path)
    assert write_catalog(path) and check_catalog(path) is None
    assert path.read_text().startswith("intro\n") and path.read_text().endswith("rest\n")
    assert main(["envs", "catalog", "--check", "--file", str(path)]) == 0


def test_catalog_check_exits_2_when_stale(tmp_path, capsys):
    path = tmp_path / "README.md"
    path.write_text("<!-- catalog:start -->\n<!-- catalog:end -->\n")
    assert main(["envs", "catalog", "--check", "--file", str(path)]) == 2
    assert "memgym envs catalog --write" in capsys.readouterr().err


def test_file_without_markers_is_a_config_error(tmp_path):
    (tmp_path / "x.md").write_text("no markers")
    with pytest.raises(ConfigError, match="no <!-- catalog:start -->"):
        write_catalog(tmp_path / "x.md")


@pytest.mark.parametrize("name", ["My-Task", "1task", "my--task", "import", "my_task"])
def test_envs_new_refuses_a_bad_name(tmp_path, name):
    with pytest.raises(ConfigError, match="envs new"):
        new_env_package(name, tmp_path)


def test_envs_new_refuses_an_existing_folder(tmp_path):
    new_env_package("my-task", tmp_path)
    with pytest.raises(ConfigError, match="exists"):
        new_env_package("my-task", tmp_path)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(extra)
    return env


@pytest.mark.slow  # a pytest subprocess: ~5 s
def test_envs_new_writes_a_package_that_passes_its_own_tests(tmp_path):
    assert main(["envs", "new", "my-task", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "my-task"
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                         cwd=root, capture_output=True, text=True, timeout=300, check=False,
                         env=_env(PYTHONPATH=f"{root}{os.pathsep}{REPO}"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout


@pytest.mark.slow  # a Python subprocess importing memgym: ~4 s
def test_the_skeleton_registers_at_import_and_leaves_the_scorer_to_each_task(tmp_path):
    # `memgym eval --env my_task:MyTask-v0` only imports the package; and a scorer set on a
    # task must not be overridden by the skeleton (it once passed scorer="sub_em" always)
    new_env_package("my-task", tmp_path)
    code = ("import gymnasium as gym, my_task\n"
            "env = gym.make('MyTask-v0').unwrapped\n"
            "print(env.scorer)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=False,
                         env=_env(PYTHONPATH=os.pathsep.join([str(tmp_path / "my-task"),
                                                               str(REPO)])))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None"]


@pytest.mark.slow  # a Python subprocess importing memgym: ~4 s
def test_installed_entry_point_registers_outside_envs_at_import_memgym(tmp_path):
    new_env_package("my-task", tmp_path)
    site = tmp_path / "site"  # what `pip install` leaves: the package and its dist-info
    dist = site / "my_task-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-task\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[memgym.envs]\nmy-task = my_task:register\n")
    code = ("import gymnasium as gym, memgym\n"
            "from memgym.envs.registration import PLUGIN_ENVS\n"
            "env = gym.make('MyTask-v0'); env.reset(seed=0, options={'task_id': 0})\n"
            "print(PLUGIN_ENVS['MyTask-v0'][0], env.unwrapped.num_tasks)\n")
    path = os.pathsep.join([str(site), str(tmp_path / "my-task"), str(REPO)])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=False, env=_env(PYTHONPATH=path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["my-task", "3"]


def test_entry_point_register_function_is_called_and_recorded(tmp_path, monkeypatch):
    new_env_package("ep-probe", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "ep-probe"))
    ep = EntryPoint(name="ep-probe", value="ep_probe:register", group="memgym.envs")
    try:
        found = register_entry_point_envs([ep])
        blurb = "ep-probe: questions over documents from a JSONL file"
        assert found["EpProbe-v0"] == ("ep-probe", blurb)
        assert "EpProbe-v0" in gym.registry
    finally:
        PLUGIN_ENVS.pop("EpProbe-v0", None)
        gym.registry.pop("EpProbe-v0", None)


def test_broken_entry_point_is_logged_and_skipped(caplog):
    ep = EntryPoint(name="broken", value="no_such_module_xyz:register", group="memgym.envs")
    with caplog.at_level(logging.WARNING, logger="memgym.envs.registration"):
        register_entry_point_envs([ep])
    assert "the 'broken' entry point (no_such_module_xyz:register)" in caplog.text
    assert not any(name == "broken" for name, _ in PLUGIN_ENVS.values())
