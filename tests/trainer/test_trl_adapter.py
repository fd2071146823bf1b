"""Tests for memgym.trainer.trl_adapter: the dataset and per-component reward functions TRL's
GRPOTrainer consumes, on the synthetic task (oracle memory as the prefix policy) and on a
natively single-turn env, the replayed prefix cached per (task, seed), plus one real TRL
GRPOTrainer step on the tiny model."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import pytest

from memgym.data.synthetic import oracle_answer, oracle_memory, synthetic_tasks
from memgym.envs.long_context import LongContextMemoryEnv
from memgym.errors import ConfigError
from memgym.trainer.trl_adapter import TRLEnvAdapter

SYNTH = {"difficulty": 1, "num_tasks": 6, "chunk_tokens": 16}


def _oracle_prefix(obs):
    return oracle_memory(obs["question"], obs["memory"], obs["chunk"])


def make_closed_book(num_tasks: int = 8) -> LongContextMemoryEnv:
    """A single-turn env: synthetic questions without context, answered at once."""
    tasks = [dataclasses.replace(t, context=()) for t in
             synthetic_tasks(num_tasks=num_tasks, seed=0, difficulty=1)]
    return LongContextMemoryEnv(tasks, scorer="exact_match", source="closed book")


if "Test-ClosedBook-v0" not in gym.registry:
    gym.register("Test-ClosedBook-v0", entry_point=make_closed_book)


def test_dataset_prompts_show_the_final_observation():
    adapter = TRLEnvAdapter("MemAgent-Synthetic-v0", SYNTH, prefix_policy=_oracle_prefix)
    ds = adapter.dataset()
    assert len(ds) == 6 and ds.column_names == ["prompt", "task_id", "seed"]
    task = adapter.env.unwrapped.tasks[2]
    text = ds[2]["prompt"][0]["content"]
    assert task.question in text and task.answers[0] in text       # oracle memory holds it
    assert "\\boxed{}" in text


def test_one_reward_function_per_component_named_after_it():
    adapter = TRLEnvAdapter("MemAgent-Synthetic-v0", SYNTH, prefix_policy=_oracle_prefix)
    assert [f.__name__ for f in adapter.reward_funcs] == ["accuracy", "format",
                                                         "memory_budget"]
    assert adapter.reward_weights == [1.0, 0.0, 0.0]
    ds = adapter.dataset([0, 1])
    obs = [adapter._replay(t, 0) for t in (0, 1)]
    right = [[{"role": "assistant", "content": oracle_answer(o["question"], o["memory"])}]
             for o in obs]
    wrong = ["\\boxed{000}", "no box"]
    kw = {"task_id": ds["task_id"], "seed": ds["seed"]}
    acc, fmt, _ = adapter.reward_funcs
    assert acc(ds["prompt"], right, **kw) == [1.0, 1.0]
    assert acc(ds["prompt"], wrong, **kw) == [0.0, 0.0]
    assert fmt(ds["prompt"], wrong, **kw) == [1.0, 0.0]


def _scores_by_full_replay(adapter, task_id, seed, completion):
    """What the adapter did before caching: a fresh env, the whole prefix, then the step."""
    env = gym.make(adapter.env_id, **adapter.env_kwargs)
    obs, _ = env.reset(seed=seed, options={"task_id": task_id})
    while obs["phase"] != "answer":
        obs, *_ = env.step(_oracle_prefix(obs))
    *_, info = env.step(completion)
    return dict(info["reward_components"])


def test_prefix_policy_runs_once_per_task_and_seed_not_once_per_completion():
    calls = []

    def counting_prefix(obs):
        calls.append(obs["question"])
        return _oracle_prefix(obs)

    adapter = TRLEnvAdapter("MemAgent-Synthetic-v0", SYNTH, prefix_policy=counting_prefix)
    ds = adapter.dataset([0, 1, 2])
    after_dataset = len(calls)
    assert after_dataset > 3  # several chunks per task
    obs = [adapter._replay(t, 0) for t in (0, 1, 2)]
    group = [["\\boxed{000}", "no box", "\\boxed{x}",
              oracle_answer(o["question"], o["memory"])] for o in obs]
    completions = [c for g in group for c in g]  # G=4 completions per prompt, as TRL sends
    task_ids = [t for t in ds["task_id"] for _ in range(4)]
    seeds = [0] * len(completions)
    for reward in adapter.reward_funcs:
        reward([None] * len(completions), completions, task_id=task_ids, seed=seeds)
    assert len(calls) == after_dataset  # no replay for any completion
    adapter.reward_funcs[0]([None], ["late"], task_id=[0], seed=[7])  # a new seed: one replay
    assert len(calls) > after_dataset


def test_cached_prefix_scores_match_a_full_replay():
    adapter = TRLEnvAdapter("MemAgent-Synthetic-v0", SYNTH, prefix_policy=_oracle_prefix)
    for task_id in range(4):
        obs = adapter._replay(task_id, 0)
        right = oracle_answer(obs["question"], obs["memory"])
        for completion in (right, "\\boxed{000}", "no box", right):  # the same twice
            assert adapter.score(task_id, 0, completion) == \
                _scores_by_full_replay(adapter, task_id, 0, completion)
        assert adapter.score(task_id, 0, right)["accuracy"] == 1.0
        assert adapter.score(task_id, 0, "no box")["accuracy"] == 0.0


def test_multi_step_env_without_prefix_policy_is_rejected():
    with pytest.raises(ConfigError, match="not single-turn"):
        TRLEnvAdapter("MemAgent-Synthetic-v0", SYNTH)


def test_natively_single_turn_env_needs_no_prefix():
    adapter = TRLEnvAdapter("Test-ClosedBook-v0")
    ds = adapter.dataset()
    assert len(ds) == 8
    gold = adapter.env.unwrapped.tasks[3].answers[0]
    acc = adapter.reward_funcs[0]
    assert acc([ds[3]["prompt"]], [f"\\boxed{{{gold}}}"], task_id=[3], seed=[0]) == [1.0]


@pytest.mark.slow
def test_trl_grpo_trainer_runs_one_step_on_the_tiny_model(tmp_path):
    trl = pytest.importorskip("trl")
    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

    adapter = TRLEnvAdapter("Test-ClosedBook-v0")
    tok = build_tiny_tokenizer()
    model = build_tiny_model(tok)
    # GRPOConfig turns gradient checkpointing on by default; transformers 5 renamed it
    # activation_checkpointing (the old name is a deprecated alias): switch off whichever exists.
    names = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    off = "activation_checkpointing" if "activation_checkpointing" in names \
        else "gradient_checkpointing"
    args = trl.GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, max_steps=1,
                          per_device_train_batch_size=4, num_generations=4,
                          max_completion_length=4, reward_weights=adapter.reward_weights,
                          report_to=[], logging_steps=1, save_strategy="no", **{off: False})
    assert args.gradient_checkpointing is False
    trainer = trl.GRPOTrainer(model=model, processing_class=tok,
                              reward_funcs=adapter.reward_funcs,
                              train_dataset=adapter.dataset(), args=args)
    trainer.train()
    logged = trainer.state.log_history[0]
    assert "rewards/accuracy/mean" in logged and "rewards/format/mean" in logged
