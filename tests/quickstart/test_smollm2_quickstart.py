"""`memgym quickstart smollm2`: its recipe, its splits, its table, and a small real run.

The settings and table tests run anywhere; the run itself needs vLLM (the CPU build,
`scripts/install_vllm_cpu.sh VENV`, as `.ci/vllm_cpu` does) and the prepared model.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from memgym.errors import ConfigError
from memgym.quickstart import smollm2 as Q
from memgym.quickstart.report import paired_gain
from memgym.trainer.config import GRPOConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "train" / "smollm2_quickstart.yaml"
SFT_TASKS = 60
"""The adapter's SFT played the synthetic task's default seed, tasks 0-59
(bench/make_smollm2_memagent_adapter.py; memgym/assets/smollm2-135m-memagent-lora)."""


def test_recipe_is_the_quickstarts_grpo_stage():
    recipe = load_config(RECIPE)
    expected = GRPOConfig(**Q.GRPO, output_dir=recipe.output_dir,
                          env_kwargs=Q.split_env_kwargs("train", Q.TRAIN_TASKS, Q.MODEL),
                          agent=Q.rollout_recipe(Q.GRPO))
    differ = [f.name for f in fields(GRPOConfig)
              if getattr(recipe, f.name) != getattr(expected, f.name)]
    assert differ == []


def test_held_out_tasks_were_seen_neither_by_grpo_nor_by_the_sft():
    from memgym.data.synthetic import synthetic_tasks

    def streams(knobs: dict, n: int) -> set[tuple[str, ...]]:
        return {tuple(task.context) for task in synthetic_tasks(num_tasks=n, **knobs)}

    seen = streams(Q.SPLITS["train"], Q.TRAIN_TASKS) | streams(Q.TASK, SFT_TASKS)
    for split in Q.EVAL_SPLITS:
        held_out = streams(Q.SPLITS[split], Q.EVAL_TASKS)
        assert len(held_out) == Q.EVAL_TASKS, split
        assert not held_out & seen, split


def test_paired_gain_is_the_mean_difference_with_an_interval_around_it():
    base = [0, 1, 0, 1, 0, 0, 1, 0] * 8
    trained = [1, 1, 0, 1, 1, 0, 1, 0] * 8          # two of eight tasks fixed, none broken
    gain = paired_gain(base, trained)
    assert gain["mean"] == pytest.approx(0.25) and gain["n"] == 64
    low, high = gain["ci95"]
    assert 0 < low < 0.25 < high <= 1
    assert paired_gain(base, base)["ci95"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="3 base scores but 2 trained"):
        paired_gain([0, 1, 1], [1, 1])


def test_without_vllm_the_quickstart_says_how_to_get_it(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(ConfigError, match="install_vllm_cpu.sh"):
        Q.run_quickstart(tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written before the check
