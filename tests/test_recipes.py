"""Shipped recipes by name (memgym.recipes): from any folder, through the CLI, and in the wheel
(one source: the top-level agents/ and train/ folders)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from memgym.agents import load_recipe
from memgym.cli import main
from memgym.errors import ConfigError
from memgym.recipes import find_recipe, shipped_recipes
from memgym.trainer.config import load_config

ROOT = Path(__file__).parents[1]


def test_shipped_recipes_are_the_checkouts_folders():
    assert set(shipped_recipes("agents")) == {p.stem for p in (ROOT / "agents").glob("*.yaml")}
    assert set(shipped_recipes("train")) == {p.stem for p in (ROOT / "train").glob("*.yaml")}


def test_recipes_load_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe("memagent")
    assert recipe.kind == "memagent" and recipe.text == (ROOT / "agents/memagent.yaml").read_text()
    assert recipe.source == "agents/memagent.yaml"  # as results and leaderboards record it
    assert load_recipe("agents/memory_r1.yaml").kind == "memory_r1"  # the docs' spelling
    config = load_config("quickstart")
    assert load_config(ROOT / "train" / "quickstart.yaml") == config


def test_a_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "memagent.yaml").write_text("kind: memagent\nname: mine\n")
    assert load_recipe("memagent.yaml").config.name == "mine"
    assert load_recipe("memagent").config.name == "memagent"  # a bare name is the shipped one


def test_an_unknown_recipe_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"recipe file not found: memagnet .*memagent.*"
                                          r"memgym agents"):
        find_recipe("memagnet", "agents")


def test_eval_takes_a_shipped_agent_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["eval", "--env", "MemAgent-Synthetic-v0", "--agent", "scripted_oracle",
               "--episodes", "2", "--out", "runs/oracle", "--no-progress"])
    assert rc == 0 and (tmp_path / "runs/oracle/summary.json").is_file()


def test_memgym_agents_lists_every_shipped_recipe_with_a_line(capsys):
    assert main(["agents"]) == 0
    out = capsys.readouterr().out
    for name in [*shipped_recipes("agents"), *shipped_recipes("train")]:
        assert name in out
    assert "Memory-R1" in out and "GRPO from random weights" in out


@pytest.mark.slow
def test_the_wheel_carries_the_same_recipe_files(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", str(ROOT), "-w", str(tmp_path)], check=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("memgym-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        packed = {n: zf.read(n) for n in zf.namelist() if n.startswith("memgym/_recipes/")}
    for folder in ("agents", "train"):
        for path in (ROOT / folder).glob("*.yaml"):
            assert packed.pop(f"memgym/_recipes/{folder}/{path.name}") == path.read_bytes()
    assert all(n.startswith("memgym/_recipes/train/accelerate/") for n in packed)


def _values(node):
    """Every scalar value of a loaded YAML tree."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)
    else:
        yield node


def test_shipped_recipes_name_no_path_outside_the_package():
    # recipes load by name from any folder, so a relative data_path (../shared/data/...) breaks
    # them everywhere but a checkout; the envs' default is the file `memgym data get` cached.
    # (Values only: a committed leaderboard submission pins its recipe's bytes, comments too.)
    import yaml

    for folder in ("agents", "train"):
        for name, path in shipped_recipes(folder).items():
            for value in _values(yaml.safe_load(path.read_text(encoding="utf-8"))):
                assert not (isinstance(value, str) and ("../" in value or "shared/" in value)), \
                    f"{folder}/{name}.yaml: {value}"
