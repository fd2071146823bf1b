"""agents/README.md's "Compose your own memory agent" runs as written: its files are written to a
fresh folder and its commands run there through the real CLI, with memgym importable but nothing
else (the user's module is found in the current folder, as a user's would be)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "agents" / "README.md"


def _section(title: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start:] if end < 0 else text[start:end]


def _blocks(section: str) -> tuple[dict[str, str], list[str]]:
    """The guide's named files (```python my_agents.py) and its commands (```bash lines)."""
    files = dict(re.findall(r"```\w+ ([\w.]+)\n(.*?)```", section, re.DOTALL))
    commands = [line for body in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
                for line in body.splitlines() if line.startswith("memgym ")]
    return files, commands


def test_the_guide_uses_public_names_only():
    files, _ = _blocks(_section("Compose your own memory agent"))
    code = files["my_agents.py"]
    assert not re.search(r"import\s+_|import .*\b_[a-z]\w*|\._[a-z]\w*\(", code), \
        "the guide imports or calls something private"


@pytest.mark.slow
def test_compose_your_own_agent_runs_as_written(tmp_path):
    files, commands = _blocks(_section("Compose your own memory agent"))
    assert set(files) == {"my_agents.py", "append_only.yaml"} and len(commands) == 1
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for command in commands:
        argv = [sys.executable, "-m", "memgym", *shlex.split(command)[1:], "--no-progress"]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "runs/append_only/summary.json").read_text())
    assert summary["run"]["recipe"]["kind"] == "my_agents:AppendOnlyAgent"
    assert summary["run"]["recipe"]["answerer"]["template"] == "memory_r1_answer"
    assert summary["metrics"]["dialogue"]["overall"]["questions"] == 16
    traces = [json.loads(line) for line in
              (tmp_path / "runs/append_only/traces.jsonl").read_text().splitlines()]
    assert traces
