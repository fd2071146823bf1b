"""scripts/build_tiny_memory_r1.py (how the embedded tiny Memory-R1 manager was made): the
script run as a user runs it, and `memgym quickstart memory-r1 --model` starting from its
output."""

import json
import subprocess
import sys
from pathlib import Path

from memgym.quickstart import memory_r1 as M

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "build_tiny_memory_r1.py"


def test_a_fresh_manager_is_built_and_the_quickstart_starts_from_it(tmp_path):
    model = tmp_path / "model"
    out = subprocess.run([sys.executable, str(SCRIPT), "--out", str(model), "--steps", "2",
                          "--conversations", "4", "--threads", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    build = json.loads((model / "BUILD.json").read_text())
    assert build["settings"]["steps"] == 2 and build["pairs"] > 0
    result = M.run_quickstart(tmp_path / "run", steps=1, model_path=model, eval_tasks=2,
                              grpo_overrides={"tasks_per_step": 1, "num_generations": 2},
                              log=lambda *_: None)
    assert result.table["build"]["settings"]["steps"] == 2
    assert result.table["manager"] == str(model)
