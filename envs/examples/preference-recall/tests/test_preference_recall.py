"""preference-recall passes memgym's checker, is solvable from its stream, and is deterministic."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest

import preference_recall
from memgym.errors import DataError
from memgym.testing import check_memgym_env
from preference_recall.oracle import oracle_answer, oracle_memory
from preference_recall.tasks import PreferenceTasks


@pytest.fixture(autouse=True, scope="module")
def registered():
    preference_recall.register()  # what the entry point does at `import memgym` once installed


def test_env_passes_the_memgym_checker():
    env = gym.make(preference_recall.ENV_ID)
    check_memgym_env(env)
    env.close()


def test_every_task_is_solvable_from_its_documents():
    env = gym.make(preference_recall.ENV_ID, num_tasks=12, memory_tokens=1024)
    for task_id in range(env.unwrapped.num_tasks):
        obs, _ = env.reset(seed=0, options={"task_id": task_id})
        memory = ""
        while obs["phase"] == "update":  # keep every chunk: the memory is large enough here
            memory += obs["chunk"]
            obs, *_ = env.step(memory)
        gold = env.unwrapped.task.answers[0]
        _, reward, done, _, info = env.step("\\boxed{" + gold + "}")
        assert done and info["reward_components"]["accuracy"] == 1.0, task_id


def _play(env, task_id, answer_from_memory):
    obs, _ = env.reset(seed=0, options={"task_id": task_id})
    while obs["phase"] == "update":
        obs, *_ = env.step(oracle_memory(obs["question"], obs["memory"], obs["chunk"]))
    _, _, done, _, info = env.step("\\boxed{" + answer_from_memory(obs) + "}")
    assert done
    return info["reward_components"]["accuracy"]


@pytest.mark.parametrize("chunk_tokens", [64, 7])
def test_the_oracle_policy_scores_1_and_the_stale_first_value_scores_0(chunk_tokens):
    env = gym.make(preference_recall.ENV_ID, num_tasks=16, chunk_tokens=chunk_tokens)
    for task_id in range(16):
        assert _play(env, task_id, lambda o: oracle_answer(o["question"], o["memory"])) == 1.0
        task = PreferenceTasks(num_tasks=16)[task_id]
        first = task.gold_context[0].split("I really like ")[1].split(" as my")[0]
        if task.metadata["num_updates"] > 0:  # the stale first preference is wrong
            assert first != task.answers[0]
            assert _play(env, task_id, lambda o: first) == 0.0


def test_exact_match_normalises_case_punctuation_and_articles():
    env = gym.make(preference_recall.ENV_ID, num_tasks=4)
    gold = PreferenceTasks(num_tasks=4)[1].answers[0]
    env.reset(seed=0, options={"task_id": 1})
    obs = {"phase": "update"}
    while obs["phase"] == "update":
        obs, *_ = env.step("")
    _, _, _, _, info = env.step("\\boxed{The " + gold.upper() + "!}")
    assert info["reward_components"]["accuracy"] == 1.0
    assert info["scorer"] == "exact_match"


def test_tasks_are_deterministic_and_vary_with_the_seed():
    a, b = PreferenceTasks(num_tasks=8), PreferenceTasks(num_tasks=8)
    assert [a[i] for i in range(8)] == [b[i] for i in range(8)]
    c = PreferenceTasks(num_tasks=8, seed=1)
    assert [a[i].context for i in range(8)] != [c[i].context for i in range(8)]
    assert [a[i].task_type for i in range(4)] == ["updates-0", "updates-1", "updates-2",
                                                   "updates-3"]
    pickle.loads(pickle.dumps(a))


def test_the_answer_is_the_latest_statement_and_decoys_are_not_it():
    for task in PreferenceTasks(num_tasks=20):
        assert task.gold_context[-1].endswith(f"{task.answers[0]} for "
                                              f"{task.metadata['category']}.") or \
            task.metadata["num_updates"] == 0
        decoys = [c for c in task.context if c.startswith("User: My friend")]
        assert len(decoys) == 2
        assert all(f" {task.answers[0]}," not in d for d in decoys)


@pytest.mark.parametrize("kwargs, field", [({"num_tasks": 0}, "num_tasks"),
                                           ({"num_turns": 3}, "num_turns"),
                                           ({"max_updates": -1}, "max_updates"),
                                           ({"seed": "x"}, "seed")])
def test_bad_sizes_are_data_errors_naming_the_field(kwargs, field):
    with pytest.raises(DataError, match=f"field '{field}'"):
        gym.make(preference_recall.ENV_ID, **kwargs)


def test_a_misspelt_kwarg_is_a_type_error():
    with pytest.raises(TypeError):
        gym.make(preference_recall.ENV_ID, num_task=3)
