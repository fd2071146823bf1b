"""agents/README.md, "Add a memory operation": the guide's files, written to a fresh folder and
run as a user runs them, print exactly the output the guide shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
GUIDE = ROOT / "agents" / "README.md"


def _section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("## Add a memory operation")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_the_guides_operation_registers_from_a_users_module_and_runs_in_an_env(tmp_path):
    section = _section()
    files = re.findall(r"```python (\S+)\n(.*?)```", section, re.DOTALL)
    assert [name for name, _ in files] == ["my_ops.py", "run_append.py"]
    for name, body in files:
        (tmp_path / name).write_text(body, encoding="utf-8")
    expected = re.search(r"```text\n(.*?)```", section, re.DOTALL).group(1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run([sys.executable, "run_append.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected
