"""Tests for memgym.trainer.grpo: tiny-model GRPO runs on CPU that change the trained
parameters, write the run folder (metrics.jsonl, curve, checkpoints), use the disabled LoRA
adapter or a frozen copy as reference, drop zero-variance groups, reuse a rollout for several
optimizer steps, and resume after SIGKILL with the same next metrics as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from memgym.testing.models import recipe_params
from memgym.trainer.config import load_config
from memgym.trainer.grpo import GRPOTrainer
from memgym.trainer.logging import read_metrics

pytest.importorskip("peft")


def _train(recipe, **overrides):
    trainer = GRPOTrainer(load_config({**recipe, **overrides}))
    try:
        before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()
                  if p.requires_grad}
        rows = trainer.train()
        return trainer, before, rows
    finally:
        trainer.close()


def test_lora_run_changes_adapter_and_writes_run_folder(tiny_recipe):
    trainer, before, rows = _train(tiny_recipe, save_steps=2)
    out = Path(tiny_recipe["output_dir"])
    changed = [n for n, p in trainer.model.named_parameters()
               if p.requires_grad and not torch.equal(p, before[n])]
    assert changed and all("lora_" in n for n in changed)
    assert [r["step"] for r in rows] == [1, 2]
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2]
    for key in ("reward", "rewards/accuracy/mean", "rewards/memory_budget/std",
                "frac_reward_zero_std", "entropy", "clip_ratio/region_mean",
                "completions/mean_length", "memory/mean_tokens", "episodes/turns_mean",
                "time/rollout_s", "time/train_s", "throughput/train_tokens_per_s"):
        assert key in rows[-1], key
    assert (out / "learning_curve.png").stat().st_size > 0
    assert (out / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "config.json").read_text())["num_generations"] == 4


def test_rows_are_trainable_turns_with_per_episode_weights(tiny_recipe):
    trainer = GRPOTrainer(load_config({**tiny_recipe, "drop_zero_std_groups": False}))
    try:
        from memgym.trainer.rollout import collect_episodes, group_jobs
        jobs = group_jobs([0, 1], 4, seed=0, rollout=0)
        episodes = collect_episodes(trainer.pool, trainer.agent, jobs, concurrency=8)
        rows, groups, metrics = trainer._rows(episodes)
    finally:
        trainer.close()
    assert len(rows) == sum(t.trainable for e in episodes for t in e.turns)
    assert sorted(i for _, g in groups for i in g) == list(range(len(rows)))
    assert [g for g, _ in groups] == [0, 1]
    per_episode: dict[int, float] = {}
    for r in rows:
        per_episode[r.episode] = per_episode.get(r.episode, 0.0) + r.weight
    assert per_episode == pytest.approx(dict.fromkeys(range(8), 1.0))
    # All Turns of an episode share its advantage (broadcast credit).
    for e in range(8):
        assert len({r.advantage for r in rows if r.episode == e}) == 1
    assert metrics["episodes/turns_mean"] == pytest.approx(
        sum(len(e.turns) for e in episodes) / 8)


def test_lora_reference_is_the_base_model(tiny_recipe):
    from memgym.testing.tiny_lm import build_tiny_model
    trainer, _, _ = _train(tiny_recipe, beta=0.05)
    base = build_tiny_model(trainer.tokenizer, seed=tiny_recipe["seed"])
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad(), trainer.model.disable_adapter():
        ref = trainer.model(input_ids=ids).logits
    with torch.no_grad():
        torch.testing.assert_close(ref, base(input_ids=ids).logits)
        assert not torch.allclose(trainer.model(input_ids=ids).logits, ref)
    assert trainer.ref_model is None                   # no second copy with LoRA


def test_full_finetuning_with_beta_keeps_a_frozen_reference(tiny_recipe):
    trainer, before, rows = _train(tiny_recipe, use_lora=False, beta=0.1, max_steps=2)
    assert trainer.ref_model is not None
    for name, p in trainer.ref_model.named_parameters():
        torch.testing.assert_close(p, before[name])
    assert any(not torch.equal(p, before[n]) for n, p in trainer.model.named_parameters())
    assert "kl" in rows[-1] and rows[-1]["kl"] >= 0


def test_flat_rollout_is_dropped_with_a_warning_and_no_update(tiny_recipe, caplog):
    # Reward only accuracy, which the untrained tiny model never earns: every group is flat.
    env = {**tiny_recipe["env_kwargs"], "reward_weights": {"accuracy": 1.0}}
    trainer, before, rows = _train(tiny_recipe, env_kwargs=env, max_steps=1)
    assert rows[-1]["frac_reward_zero_std"] == 1.0 and rows[-1]["rows"] == 0
    assert "nothing will be learned" in caplog.text
    for n, p in trainer.model.named_parameters():
        if p.requires_grad:
            assert torch.equal(p, before[n])


def test_dropped_groups_shrink_the_rollouts_steps_instead_of_leaving_empty_ones(tiny_recipe):
    # 4 groups, 4 steps per rollout: a dropped group must not leave an empty step behind.
    trainer = GRPOTrainer(load_config({**tiny_recipe, "tasks_per_step": 4,
                                       "steps_per_generation": 4, "max_steps": 4}))
    from memgym.trainer.rollout import TrainingRow
    try:
        # two groups survive the zero-std filter, two rows each
        rows = [TrainingRow([1, 2], [3], [0.0], 1.0, 1.0, e, 0) for e in range(4)]
        steps = trainer._prepare_steps(rows, [(0, [0, 1]), (2, [2, 3])])
        assert [len(step_rows) for step_rows, _ in steps] == [2, 2]
        assert trainer._prepare_steps([], []) == [([], [])]  # all dropped: one step, no rows
        trained = trainer.train()
    finally:
        trainer.close()
    assert all(r["rows"] > 0 for r in trained if r["frac_reward_zero_std"] < 1)
    assert trainer.scheduler.last_epoch == trainer.step == 4


def test_one_rollout_feeds_several_optimizer_steps(tiny_recipe):
    trainer, _, rows = _train(tiny_recipe, steps_per_generation=2, num_iterations=2,
                              max_steps=4, tasks_per_step=2, drop_zero_std_groups=False)
    assert trainer.rollouts == 1 and [r["step"] for r in rows] == [1, 2, 3, 4]
    # All four steps train on the one rollout: its metrics repeat on every row.
    assert len({r["reward"] for r in rows}) == 1
    assert sum(r["rows"] for r in rows[:2]) == sum(r["rows"] for r in rows[2:])


def test_unknown_reward_weight_is_a_config_error(tiny_recipe):
    from memgym.errors import ConfigError
    with pytest.raises(ConfigError, match="accuracyy"):
        _train(tiny_recipe, reward_weights={"accuracyy": 1.0}, max_steps=1)


# ---------------------------------------------------------------------------------------------
# Resume after SIGKILL
# ---------------------------------------------------------------------------------------------
_VOLATILE = ("time/", "throughput/")


def _cli(recipe_path: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "memgym.cli", "train", str(recipe_path),
            f"output_dir={out}", *extra]


@pytest.mark.slow
def test_resume_after_sigkill_reproduces_next_metrics(tmp_path, tiny_recipe):
    import yaml

    # One LLM call per forward: batched decoding is not bit-exact across batch compositions
    # (float sums in another order can flip a sampled token), and timing decides the batches.
    recipe = {**tiny_recipe, "max_steps": 6, "save_steps": 2, "lr_scheduler_type": "linear",
              "warmup_steps": 2, "save_total_limit": 5, "rollout_batch_size": 1}
    recipe.pop("output_dir")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "WANDB_MODE": "disabled"}

    # The uninterrupted reference run.
    ref_dir = tmp_path / "ref"
    subprocess.run(_cli(path, ref_dir), check=True, env=env, capture_output=True, timeout=300)
    reference = {r["step"]: r for r in read_metrics(ref_dir / "metrics.jsonl")}
    assert sorted(reference) == [1, 2, 3, 4, 5, 6]

    # Kill -9 a second run as soon as its first checkpoint is complete.
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_cli(path, run_dir), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run_dir / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, "the run ended before writing checkpoint-2"
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpt_step = max(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*"))
    assert ckpt_step < 6

    subprocess.run(_cli(path, run_dir, "--resume", str(run_dir)), check=True, env=env,
                   capture_output=True, timeout=300)
    resumed = {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl")}
    assert sorted(resumed) == [1, 2, 3, 4, 5, 6]
    for step in range(ckpt_step + 1, 7):
        for key, value in reference[step].items():
            if key.startswith(_VOLATILE) or not isinstance(value, float):
                continue
            assert resumed[step][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (step, key)


# ---------------------------------------------------------------------------------------------
# A separate sampler (vLLM) kept in sync; the objective is packing-invariant; resume checks
# ---------------------------------------------------------------------------------------------
class _SyncRecorder:
    """A TransformersBackend standing in for vLLM: records every sync and the weights it saw."""

    def __init__(self, inner):
        self.inner, self.syncs, self.tokenizer = inner, [], inner.tokenizer

    def sync_weights(self, model):
        self.syncs.append({n: p.detach().clone() for n, p in model.named_parameters()
                           if p.requires_grad})

    async def generate(self, request):
        return await self.inner.generate(request)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _recording_trainer(monkeypatch, config, **kwargs):
    from memgym.llm.hf import TransformersBackend

    def backend(self):
        return _SyncRecorder(TransformersBackend(self.model, self.tokenizer,
                                                 manage_mode=False))
    monkeypatch.setattr(GRPOTrainer, "_generation_backend", backend)
    return GRPOTrainer(config, **kwargs)


def test_sampling_backend_holds_the_trained_weights_for_evaluation(tiny_recipe, monkeypatch):
    trainer = _recording_trainer(monkeypatch, load_config({**tiny_recipe, "max_steps": 1,
                                                           "drop_zero_std_groups": False}))
    try:
        assert trainer.sampling_backend() is trainer.backend
        trainer.sampling_backend()
        assert len(trainer.backend.syncs) == 1  # nothing changed since: no second sync
        trainer.train()
        syncs = len(trainer.backend.syncs)
        trainer.sampling_backend()  # the optimizer step moved the weights: synced again
        assert len(trainer.backend.syncs) == syncs + 1
        for name, p in trainer.model.named_parameters():
            if p.requires_grad:
                torch.testing.assert_close(trainer.backend.syncs[-1][name], p.detach(),
                                           atol=0, rtol=0)
    finally:
        trainer.close()


def test_separate_sampler_syncs_once_per_rollout_and_sees_resumed_weights(tiny_recipe,
                                                                          monkeypatch):
    recipe = {**tiny_recipe, "steps_per_generation": 2, "drop_zero_std_groups": False,
              "max_steps": 4, "save_steps": 2}
    first = _recording_trainer(monkeypatch, load_config(recipe))
    try:
        first.train()
    finally:
        first.close()
    assert first.rollouts == 2 and len(first.backend.syncs) == 2  # not one per optimizer step
    trained = {n: p.detach().clone() for n, p in first.model.named_parameters()
               if p.requires_grad}

    resumed = _recording_trainer(monkeypatch, load_config({**recipe, "max_steps": 6}),
                                 resume_from=recipe["output_dir"])
    try:
        assert resumed.backend.syncs == []  # built after the checkpoint loaded, synced lazily
        resumed.train()
    finally:
        resumed.close()
    assert resumed.rollouts == 3 and len(resumed.backend.syncs) == 1
    for name, value in resumed.backend.syncs[0].items():  # the first rollout's weights
        torch.testing.assert_close(value, trained[name], atol=0, rtol=0)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_step_gradient_does_not_depend_on_microbatch_budget(tiny_recipe, loss_type):
    from memgym.trainer.rollout import collect_episodes, group_jobs

    trainer = GRPOTrainer(load_config({**tiny_recipe, "loss_type": loss_type,
                                       "drop_zero_std_groups": False, "learning_rate": 0.0,
                                       "max_grad_norm": 0.0, "beta": 0.01, "use_lora": False,
                                       "num_iterations": 2, "tasks_per_step": 4}))
    try:
        trainer.model.eval()
        jobs = group_jobs(trainer.sampler.take(4), 4, seed=1, rollout=0)
        rows, groups, _ = trainer._rows(collect_episodes(trainer.pool, trainer.agent, jobs,
                                                         concurrency=8))
        grads = []
        for budget in (1 << 20, 1):  # one micro-batch, then one row per micro-batch
            trainer.config.max_tokens_per_microbatch = budget
            [(step_rows, micro)] = trainer._prepare_steps(rows, groups)
            assert len(micro) == (1 if budget > 1 else len(rows))
            trainer._optimizer_step(step_rows, micro)
            grads.append([p.grad.clone() for p in trainer.params])
    finally:
        trainer.close()
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    assert any(g.abs().sum() > 0 for g in grads[0])


def test_resume_refuses_a_changed_learning_rate_and_allows_max_steps(tiny_recipe):
    from memgym.errors import ConfigError

    _train(tiny_recipe, save_steps=2)
    with pytest.raises(ConfigError, match=r"learning_rate: 0\.005 -> 0\.001"):
        GRPOTrainer(load_config({**tiny_recipe, "learning_rate": 1e-3}),
                    resume_from=tiny_recipe["output_dir"])
    trainer = GRPOTrainer(load_config({**tiny_recipe, "max_steps": 3}),
                          resume_from=tiny_recipe["output_dir"])
    try:
        rows = trainer.train()
    finally:
        trainer.close()
    assert [r["step"] for r in rows] == [1, 2, 3]  # appended to the first run's rows


def test_trainer_owns_the_mode_the_engine_never_switches_it(tiny_recipe, monkeypatch):
    import threading

    calls = []
    trainer = GRPOTrainer(load_config({**tiny_recipe, "num_iterations": 2}))
    original = type(trainer.model).train

    def train(module, mode=True):
        calls.append(threading.current_thread() is threading.main_thread())
        return original(module, mode)
    monkeypatch.setattr(type(trainer.model), "train", train)
    try:
        trainer.train()
    finally:
        trainer.close()
    assert calls and all(calls)


def test_training_chunks_count_the_policys_tokens(tiny_recipe):
    trainer = GRPOTrainer(load_config(tiny_recipe))
    try:
        env = trainer.pool.first().unwrapped
        text = "The river flows, through the old town."
        assert env.counter.count(text) == len(trainer.tokenizer.encode(
            text, add_special_tokens=False)) != len(text.split())
        assert "tokenizer" not in trainer.config.env_kwargs  # the recipe stays as written
    finally:
        trainer.close()


def test_training_env_extracts_the_answer_format_the_agent_asks_for(tiny_recipe):
    agent = {**tiny_recipe["agent"], "answer_format": "answer_is"}
    trainer = GRPOTrainer(load_config({**tiny_recipe, "agent": agent}))
    try:
        assert trainer.pool.first().unwrapped.answer_format == "answer_is"
        assert trainer.agent.answer_format == "answer_is"
    finally:
        trainer.close()


def test_few_tasks_warn_that_rollouts_repeat_them(tiny_recipe, caplog):
    env = {**tiny_recipe["env_kwargs"], "num_tasks": 3}
    trainer = GRPOTrainer(load_config({**tiny_recipe, "env_kwargs": env, "tasks_per_step": 4}))
    trainer.close()
    assert "only 3 training tasks for tasks_per_step=4" in caplog.text


def test_recipe_sampling_is_overridden_and_capped_by_the_trainer():
    from memgym.agents.recipe import load_recipe, trainer_sampling_overrides

    recipe = load_recipe({"kind": "memagent", "top_k": 20, "top_p": 0.8,
                          "memory_max_new_tokens": 2048, "answer_max_new_tokens": 16})
    out = trainer_sampling_overrides(recipe, temperature=1.0, top_p=1.0, top_k=0,
                                     max_new_tokens=512)
    assert out == {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "memory_max_new_tokens": 512}


# ---------------------------------------------------------------------------------------------
# The train command: --resume continues in DIR, --overwrite, --dry-run validates offline
# ---------------------------------------------------------------------------------------------
def _recipe_file(tmp_path, tiny_recipe, **extra):
    import yaml

    recipe = {**tiny_recipe, **extra}
    recipe.pop("output_dir")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**recipe, "output_dir": str(tmp_path / "recipe_out")}))
    return path


def _main(*argv):
    from memgym.cli import main
    return main([str(a) for a in argv])


def test_resume_continues_in_dir_with_its_config_and_appends(tmp_path, tiny_recipe, capsys):
    path = _recipe_file(tmp_path, tiny_recipe, max_steps=5, save_steps=1)
    run = tmp_path / "run"
    assert _main("train", path, "max_steps=2", f"output_dir={run}") == 0
    first = read_metrics(run / "metrics.jsonl")
    # The recipe says max_steps=5: the run keeps its own 2 unless the command line says more.
    assert _main("train", path, "--resume", run) == 0
    assert "ignored" in capsys.readouterr().err
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2]
    assert _main("train", path, "max_steps=3", "--resume", run / "checkpoint-2") == 0
    rows = read_metrics(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[:2] == first
    assert not (tmp_path / "recipe_out").exists()
    # A changed learning rate is refused, naming the key.
    assert _main("train", path, "learning_rate=0.1", "--resume", run) == 2
    assert "learning_rate" in capsys.readouterr().err


def test_a_fresh_run_refuses_a_folder_with_checkpoints_unless_overwrite(tmp_path, tiny_recipe,
                                                                        capsys):
    path = _recipe_file(tmp_path, tiny_recipe, max_steps=1)
    run = tmp_path / "run"
    assert _main("train", path, f"output_dir={run}") == 0
    assert _main("train", path, f"output_dir={run}") == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err
    assert _main("train", path, f"output_dir={run}", "--overwrite") == 0
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1]


@pytest.mark.parametrize("override, expected", [
    ("env_id=MemAgent-Synthtic-v0", "Did you mean 'MemAgent-Synthetic-v0'"),
    ("env_kwargs.num_kyes=3", "Did you mean 'num_keys'"),
    ("agent.temperatur=0.5", "Did you mean 'temperature'"),
    ("model=embeded", "Did you mean 'embedded'"),
    ("env_id=no_such_module:X-v0", "no module 'no_such_module' in the current directory"),
])
def test_dry_run_catches_misspelt_names_offline(tmp_path, tiny_recipe, capsys, override,
                                                expected):
    path = _recipe_file(tmp_path, tiny_recipe)
    assert _main("train", path, override, "--dry-run") == 2
    assert expected in capsys.readouterr().err


def test_dry_run_takes_shipped_recipes_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _main("train", "quickstart", "agent=memagent_smollm2", "--dry-run") == 0
    assert _main("train", "quickstart", "agent=memagnet", "--dry-run") == 2
    assert "recipe file not found: memagnet" in capsys.readouterr().err


@pytest.mark.parametrize("recipe", recipe_params(
    path for path in sorted((Path(__file__).resolve().parents[2] / "train").glob("*.yaml"))
    if path.name != "tiny_memagent_gpu.yaml"))  # its model is built by a script first
def test_dry_run_accepts_the_shipped_recipes(recipe, capsys):
    assert _main("train", recipe, "--dry-run") == 0, recipe


def test_vllm_sampler_gets_the_prepared_folder_and_the_length_settings(tiny_recipe,
                                                                       monkeypatch):
    import memgym.llm.vllm as vllm_backend
    from memgym.models import resolve_model_path

    built = {}

    class RecordingVLLM:  # stands in for the engine: the trainer only constructs it here
        def __init__(self, model, **kwargs):
            built.update(model=model, **kwargs)

        def close(self):
            pass

    monkeypatch.setattr(vllm_backend, "VLLMBackend", RecordingVLLM)
    folder = resolve_model_path("embedded")
    trainer = GRPOTrainer(load_config({
        **tiny_recipe, "model": folder, "generation_backend": "vllm", "tis_cap": None,
        "vllm_max_model_len": 4096, "vllm_max_num_batched_tokens": 2048}))
    trainer.close()
    assert built["model"] == folder
    assert built["max_model_len"] == 4096 and built["max_num_batched_tokens"] == 2048


def test_trainer_start_sets_torch_threads_on_cpu(tiny_recipe, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        trainer = GRPOTrainer(load_config({**tiny_recipe, "device": "cpu"}))
        trainer.close()
        assert torch.get_num_threads() == 2  # the default, "auto", leaves torch's own
        trainer = GRPOTrainer(load_config({**tiny_recipe, "device": "cpu", "torch_threads": None}))
        trainer.close()
        assert torch.get_num_threads() == 1  # None: as memgym eval, 1 unless OMP_NUM_THREADS
        trainer = GRPOTrainer(load_config({**tiny_recipe, "device": "cpu", "torch_threads": 2}))
        trainer.close()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _dialogue_like_episode():
    """Two writes (reader 1, 0), two answers (f1 0, 1): the episode's mean components."""
    from memgym.agents.episode import Episode

    steps = [{"op_validity": 1.0, "reader": 1.0}, {"op_validity": 1.0, "reader": 0.0},
             {"f1": 0.0}, {"f1": 1.0}]
    return Episode(task_id=0, seed=0, rewards=[0.0, 0.0, 0.0, 1.0], step_components=steps,
                   reward=0.5, reward_components={"f1": 0.5, "op_validity": 1.0, "reader": 0.5},
                   reward_weights={"f1": 1.0, "op_validity": 0.0, "reader": 0.0})


def test_eval_reward_and_samples_use_the_episodes_result_under_the_runs_weights():
    from memgym.trainer.grpo import _samples, episode_reward

    e = _dialogue_like_episode()
    assert episode_reward(e, None) == 0.5  # the env's result, not the last step's 1.0
    assert episode_reward(e, {"reader": 1.0}) == 0.5
    assert episode_reward(e, {"f1": 1.0, "op_validity": 1.0}) == 1.5
    sample = _samples([e], 1, {"reader": 1.0})[0]
    assert sample["reward"] == 0.5 and sample["rewards/f1"] == 0.5


def test_step_metrics_average_each_component_over_the_steps_that_scored_it():
    from memgym.agents.base import Turn
    from memgym.trainer.grpo import _trained_step_metrics

    e = _dialogue_like_episode()
    e.turns = [Turn(component="x", step=t, prompt="p", completion="c") for t in range(4)]
    metrics = _trained_step_metrics([e])
    assert metrics["step_rewards/f1/mean"] == 0.5  # over the two answers, not the four steps
    assert metrics["step_rewards/reader/mean"] == 0.5
    assert metrics["step_rewards/steps"] == 4.0
