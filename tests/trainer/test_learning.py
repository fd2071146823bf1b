"""The learning test: GRPO improves a tiny random-weight policy's reward on CPU.

The committed recipe train/tiny_random_budget.yaml trains memgym's tiny random model as a MemAgent
on the easiest synthetic memory task for 40 steps with a fixed seed. What the policy can learn
from scratch in that budget is the memory-budget part of the rubric (memory_tokens: 3 words):
it starts writing memories of random length (about a quarter of its writes fit) and learns,
from reward alone, to write memories that fit. Accuracy (3-digit codes) stays out of reach of a
random model's exploration at this scale and is not asserted. The margin asserted is on both
the training reward and the held-out evaluation (greedy, tasks never trained on).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memgym.trainer.config import load_config
from memgym.trainer.grpo import GRPOTrainer

RECIPE = Path(__file__).resolve().parents[2] / "train" / "tiny_random_budget.yaml"


@pytest.mark.slow
def test_quickstart_policy_improves_mean_reward(tmp_path):
    config = load_config(RECIPE, [f"output_dir={tmp_path / 'run'}", "save_steps=0"])
    trainer = GRPOTrainer(config)
    try:
        rows = trainer.train()
    finally:
        trainer.close()
    train = [r["reward"] for r in rows if "reward" in r]
    evals = [r["eval/reward"] for r in rows if "eval/reward" in r]
    assert len(train) == config.max_steps
    first, last = sum(train[:5]) / 5, sum(train[-5:]) / 5
    assert first < 0.5, f"the untrained policy already scores {first:.2f}: the test is too easy"
    assert last >= first + 0.3, f"mean reward {first:.3f} -> {last:.3f}"
    assert evals[-1] >= evals[0] + 0.3, f"held-out reward {evals[0]:.3f} -> {evals[-1]:.3f}"
