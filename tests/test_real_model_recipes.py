"""The real-model recipes run: one CPU GRPO step of train/smollm2_memagent.yaml and one episode
of agents/memagent_smollm2.yaml with SmolLM2-135M-Instruct, at tiny caps (the recipes' own env,
prompts and reward otherwise). Skipped, with the command that fixes it, where SmolLM2 is not
prepared (`memgym models prepare smollm2-135m-instruct`, which `.ci/run` does)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from memgym.testing.models import needs_models

ROOT = Path(__file__).resolve().parents[1]
SMOL = "smollm2-135m-instruct"
AGENT = ROOT / "agents" / "memagent_smollm2.yaml"
RECIPE = ROOT / "train" / "smollm2_memagent.yaml"
pytestmark = needs_models(SMOL)


@pytest.fixture(autouse=True)
def prepared_smollm2():
    """Restore torch's threads (both runs set 1)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_smollm2_grpo_recipe_trains_one_step_on_cpu(tmp_path):
    pytest.importorskip("peft")
    from memgym.trainer.config import load_config
    from memgym.trainer.grpo import GRPOTrainer
    from memgym.trainer.logging import read_metrics

    config = load_config(RECIPE, [
        f"agent={AGENT}", f"output_dir={tmp_path / 'run'}", "device=cpu", "max_steps=1",
        "num_generations=2", "tasks_per_step=1", "max_completion_length=4", "eval_tasks=0",
        "eval_steps=0", "save_steps=0", "warmup_steps=0", "env_kwargs.limit=2",
        "env_kwargs.memory_tokens=16", "temperature=1.0"])
    assert (config.env_kwargs["num_docs"], config.env_kwargs["scorer"]) == (10, "f1")
    threads_before = torch.get_num_threads()
    trainer = GRPOTrainer(config)
    try:
        rows = trainer.train()
    finally:
        trainer.close()
    assert [row["step"] for row in rows] == [1]
    # torch_threads' default "auto" leaves torch's own threads (the test used to expect 1, the
    # old default, and passed only when an earlier test had left torch at 1).
    assert config.torch_threads == "auto" and torch.get_num_threads() == threads_before
    logged = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert logged[-1]["step"] == 1 and "reward" in logged[-1]


def test_smollm2_eval_recipe_runs_an_episode_on_cpu(tmp_path):
    from memgym.cli import main

    out = tmp_path / "eval"
    assert main(["eval", "--env", "MemAgent-HotpotQA-v0", "--env-kwargs", "num_docs=10",
                 "chunk_tokens=1000", "memory_tokens=256", "limit=1", "--agent", str(AGENT),
                 "--agent-overrides", "memory_max_new_tokens=4", "answer_max_new_tokens=4",
                 "--backend", "transformers", "--model", SMOL, "--episodes", "1",
                 "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["episodes"] == 1
    assert summary["metrics"]["incomplete_episodes"] == 0
    prediction = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    # 10 documents (~1,500 tokens) in 1,000-token chunks: a memory update per chunk + the answer
    assert prediction["num_chunks"] >= 2
    assert prediction["tokens"]["llm_calls"] == prediction["num_chunks"] + 1
