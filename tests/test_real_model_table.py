"""bench/real_model_table.py: the held-out questions share nothing with the adapter's training
sample, each cell is a real `memgym eval` command, and the table reads what that run wrote."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "real_model_table.py"
_spec = importlib.util.spec_from_file_location("real_model_table", SCRIPT)
table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(table)

needs_sample = pytest.mark.skipif(not table.SHARED_HOTPOTQA.is_file(),
                                  reason=f"no {table.SHARED_HOTPOTQA} here")


@needs_sample
def test_heldout_questions_are_rows_21_to_100_and_none_is_in_the_bundled_sample(tmp_path):
    path, n = table.heldout_file(tmp_path / "heldout.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    bundled = {json.loads(line)["_id"] for line in table.BUNDLED.read_text().splitlines()}
    assert n == len(rows) == 80 and not bundled & {r["_id"] for r in rows}


@needs_sample
def test_a_source_that_shares_questions_with_the_bundled_sample_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="share 20 questions with the bundled sample"):
        table.heldout_file(tmp_path / "heldout.jsonl", skip=0)
    assert not (tmp_path / "heldout.jsonl").exists()


def test_a_cell_is_a_greedy_memgym_eval_with_the_models_own_tokenizer(tmp_path):
    cmd = table.eval_command("smollm2-135m-memagent", "mem1", 30, 20, tmp_path / "d.jsonl",
                             tmp_path / "out")
    assert cmd[:4] == ["memgym", "eval", "--env", "MemAgent-HotpotQA-v0"]
    for arg in ("num_docs=30", "tokenizer=smollm2-135m-memagent", f"data_path={tmp_path}/d.jsonl",
                "agents/mem1.yaml", "temperature=0", "--resume"):
        assert arg in cmd
    assert cmd[cmd.index("--model") + 1] == "smollm2-135m-memagent"
    assert cmd[cmd.index("--episodes") + 1] == "20" and cmd[cmd.index("--threads") + 1] == "1"


@needs_sample
@pytest.mark.slow
def test_one_cell_runs_through_memgym_eval_and_its_row_reads_the_runs_summary(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--models", "embedded", "--agents",
                           "oracle", "--docs", "10", "--n", "1", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    row = [line for line in proc.stdout.splitlines() if line.startswith("| embedded")]
    assert len(row) == 1 and "| heldout | 10 | oracle | 1 |" in row[0]
    cell = table.cell(tmp_path / "embedded" / "heldout" / "docs10" / "oracle")
    assert cell["n"] == 1 and cell["peak_prompt_tokens"] > 0 and cell["wall_s"] > 0
    assert cell["mean"] in (0.0, 1.0) and cell["boxed"] in (0.0, 1.0)
