"""Data-parallel training (memgym.trainer.distributed): groups per rank never span ranks, the
optimizer-step split is the one-process split, the world-of-one collectives are the identity,
and `torchrun --nproc_per_node 2 -m memgym train` (gloo, CPU) leaves the model after a step
equal to a one-process run on the same groups, writes only from rank 0, and its checkpoint
resumes in one process to the weights one process reaches.

Tolerance of the 2-process comparison (float32, measured): the step's gradient, read back from
AdamW's first moment in the checkpoint, agrees to 1e-6 of its largest entry (measured 5e-7: it
is summed in another order, per rank then across ranks). The weights agree to 1e-6 except for
at most 0.1% of them, which agree to the learning rate (measured: 23 of 176,704 weights, by at
most 9.5e-5 against a learning rate of 5e-3): AdamW's first step g / (|g| + eps) turns the
rounding of a gradient entry within rounding of 0 into a visible part of an update. A real
divergence (a wrong normaliser, a missing all-reduce) moves the gradients by their own size
and most weights by about the learning rate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from memgym.errors import ConfigError
from memgym.trainer.distributed import Distributed, NullLogger, _buckets, world_from_env

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize("groups,world", [(4, 2), (5, 2), (8, 3), (3, 3)])
def test_each_rank_gets_a_contiguous_block_of_whole_groups(groups, world):
    shares = [Distributed(r, world).my_groups(groups) for r in range(world)]
    assert [g for share in shares for g in share] == list(range(groups))
    assert all(share for share in shares)


def test_fewer_groups_than_ranks_is_refused_naming_the_setting():
    with pytest.raises(ConfigError, match="tasks_per_step=2 is less than the 4 processes"):
        Distributed(1, 4).my_groups(2)


def test_a_world_of_one_splits_steps_like_the_single_process_trainer():
    one = Distributed()
    for n_groups, steps in [(4, 2), (5, 3), (2, 4), (1, 1)]:
        ids = list(range(0, 2 * n_groups, 2))  # kept groups (some dropped in between)
        expected = [c.tolist() for c in np.array_split(np.arange(n_groups),
                                                       min(steps, n_groups))]
        assert one.split_steps(ids, steps) == expected
    assert one.split_steps([], 2) == []
    assert one.sum(1, 2.5) == [1.0, 2.5]
    assert one.gather_objects({"a": 1}) == [{"a": 1}]


def test_gradient_buckets_keep_order_and_split_by_dtype():
    ts = [torch.zeros(3), torch.zeros(2), torch.zeros(2, dtype=torch.float64), torch.zeros(1)]
    buckets = _buckets(ts)
    assert [len(b) for b in buckets] == [2, 1, 1]
    assert [t for b in buckets for t in b] == ts


def test_launcher_variables_are_read_and_checked(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert world_from_env() == (1, 2, 1)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two'"):
        world_from_env()


def test_null_logger_keeps_rows_and_writes_nothing(tmp_path):
    log = NullLogger()
    log.log({"step": 1})
    log.log_samples(1, [{"x": 1}])
    log.plot()
    log.close()
    assert log.rows == [{"step": 1}]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _assert_same_step(a: Path, b: Path, lr: float) -> None:
    """Checkpoints a and b hold the same weights (within lr/100) and gradient moments."""
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    diff = torch.cat([(wa[k] - wb[k]).abs().reshape(-1) for k in wa])
    assert float(diff.max()) <= lr, f"{a} and {b}: weights differ by {float(diff.max())}"
    off = int((diff > 1e-6).sum())
    assert off <= diff.numel() / 1000, f"{a} and {b}: {off} of {diff.numel()} weights differ"
    ma = torch.load(a / "optimizer.pt", weights_only=True)["state"]
    mb = torch.load(b / "optimizer.pt", weights_only=True)["state"]
    assert ma.keys() == mb.keys()
    scale = max(float(mb[k]["exp_avg"].abs().max()) for k in mb)
    moment = max(float((ma[k]["exp_avg"] - mb[k]["exp_avg"]).abs().max()) for k in ma)
    assert moment <= 1e-6 * scale, f"{a} and {b}: gradients differ by {moment} of {scale}"


@pytest.mark.slow
def test_two_gloo_processes_make_the_one_process_update(tmp_path, tiny_recipe):
    from memgym.cli import main

    recipe = {**tiny_recipe, "use_lora": False, "max_steps": 1, "save_steps": 1,
              "drop_zero_std_groups": False, "eval_tasks": 0, "eval_steps": 0,
              "tasks_per_step": 2, "num_generations": 4, "report_to": "none"}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    two, one = tmp_path / "two", tmp_path / "one"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "memgym", "train", str(path), f"output_dir={two}"],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main(["train", str(path), f"output_dir={one}"]) == 0

    lr = recipe["learning_rate"]
    _assert_same_step(two / "checkpoint-1", one / "checkpoint-1", lr)
    rows_two = [json.loads(x) for x in (two / "metrics.jsonl").read_text().splitlines()]
    rows_one = [json.loads(x) for x in (one / "metrics.jsonl").read_text().splitlines()]
    assert len(rows_two) == 1  # rank 0 alone wrote it
    for key in ("reward", "reward_std", "rows", "tokens/trained", "rewards/accuracy/mean"):
        assert rows_two[0][key] == rows_one[0][key], key
    for key in ("loss", "grad_norm", "entropy"):
        assert rows_two[0][key] == pytest.approx(rows_one[0][key], rel=1e-5, abs=1e-7), key
    state = json.loads((two / "checkpoint-1" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and not list(two.glob(".checkpoint-*"))

    # Resume at another world size: the 1-process checkpoint resumed in 2 processes makes the
    # step its 1-process resume makes. Both resumes start from the same weights on purpose:
    # the 2- and 1-process checkpoints differ by rounding (above), a sampled token can flip on
    # that, and step 2's rollouts would then differ (this comparison failed under load when it
    # resumed those two checkpoints instead).
    one_in_two = tmp_path / "one_in_two"
    shutil.copytree(one, one_in_two)
    assert main(["train", str(path), "max_steps=2", "--resume", str(one)]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "memgym", "train", str(path), "max_steps=2", "--resume", str(one_in_two)],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_same_step(one_in_two / "checkpoint-2", one / "checkpoint-2", lr)
    # and a checkpoint of 2 processes resumes in 1
    assert main(["train", str(path), "max_steps=2", "--resume", str(two)]) == 0
    state = json.loads((two / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["world_size"] == 1 and state["step"] == 2


def test_accelerates_fsdp_settings_are_read_and_fsdp1_refused(monkeypatch):
    from memgym.trainer.distributed import fsdp_from_env

    assert fsdp_from_env() is None
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(ConfigError, match="fsdp_version: 2"):
        fsdp_from_env()
    monkeypatch.setenv("FSDP_VERSION", "2")
    monkeypatch.setenv("FSDP_TRANSFORMER_CLS_TO_WRAP", "Qwen2DecoderLayer")
    monkeypatch.setenv("FSDP_RESHARD_AFTER_FORWARD", "false")
    assert fsdp_from_env() == {"reshard_after_forward": False, "layer_cls": ["Qwen2DecoderLayer"]}


@pytest.mark.parametrize("name", ["multi_gpu", "fsdp2_7b_lora", "fsdp2_14b_full"])
def test_the_accelerate_configs_load_and_ask_for_what_memgym_runs(name):
    config = yaml.safe_load((REPO / "train" / "accelerate" / f"{name}.yaml").read_text())
    assert config["num_processes"] == 8 and config["num_machines"] == 1
    if name.startswith("fsdp2"):
        assert config["distributed_type"] == "FSDP"
        assert config["fsdp_config"]["fsdp_version"] == 2


def test_a_sharded_policy_must_sample_through_vllm_servers(tiny_recipe, monkeypatch):
    from memgym.trainer.config import load_config
    from memgym.trainer.grpo import GRPOTrainer

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    with pytest.raises(ConfigError, match="generation_backend=vllm-server"):
        GRPOTrainer(load_config(tiny_recipe))


def test_vllm_server_generation_needs_urls(tiny_recipe):
    from memgym.trainer.config import load_config

    with pytest.raises(ConfigError, match="vllm_server_urls"):
        load_config({**tiny_recipe, "generation_backend": "vllm-server"})
    with pytest.raises(ConfigError, match="generation_backend=vllm-server"):
        load_config({**tiny_recipe, "vllm_server_urls": ["http://127.0.0.1:8000"]})


def test_fsdp2_sharding_on_cpu_gathers_each_parameter_whole_for_vllm(tmp_path):
    """FSDP2 (fully_shard) in a gloo world of one: parameters become DTensors, the weights sent
    to vLLM are gathered one at a time and equal the unsharded ones, backward runs, and the full
    state dict reaches rank 0. (Several ranks and NCCL are GPU-only and not exercised here.)"""
    import torch.distributed as dist

    from memgym.llm.vllm_server import full_weights_for_vllm
    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        model = build_tiny_model(build_tiny_tokenizer(), seed=0)
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        model = Distributed(fsdp={"reshard_after_forward": True, "layer_cls": None}).shard(model)
        assert type(next(model.parameters())).__name__ == "DTensor"
        sent = dict(full_weights_for_vllm(model))
        assert sent.keys() == before.keys()
        assert all(torch.equal(sent[k], before[k]) for k in before)
        model(input_ids=torch.tensor([[5, 6, 7]])).logits.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
        full = Distributed(fsdp={}).full_state_dict(model)
        assert set(before) <= set(full)
    finally:
        dist.destroy_process_group()


def test_an_idle_microbatch_adds_nothing_to_the_loss_or_the_counts(tiny_recipe):
    from memgym.trainer.config import load_config
    from memgym.trainer.grpo import GRPOTrainer
    from memgym.trainer.loss import LossNorm, grpo_loss

    trainer = GRPOTrainer(load_config(tiny_recipe))
    try:
        idle = trainer._idle_microbatch()
        logps = trainer._logps(trainer.model, idle)
        loss, stats = grpo_loss(logps, logps.detach(), idle.advantages, idle.mask, idle.weights,
                                LossNorm(1.0, 1.0), loss_type=trainer.config.loss_type)
        loss.backward()
    finally:
        trainer.close()
    assert idle.rows == [] and float(stats["tokens"]) == 0.0 and float(loss.detach()) == 0.0
    assert all(p.grad is None or not p.grad.any() for p in trainer.params)
