"""dialogue-recall passes memgym's checker; the latest stated fact is the answer."""

from __future__ import annotations

import dialogue_recall
import gymnasium as gym
import pytest

from memgym.errors import ConfigError
from memgym.testing import check_memgym_env


@pytest.fixture(autouse=True, scope="module")
def registered():
    dialogue_recall.register()


def test_env_passes_the_memgym_checker():
    check_memgym_env(gym.make(dialogue_recall.ENV_ID, num_tasks=4))


def _play_keeping_everything(env, task_id, answer):
    obs, _ = env.reset(seed=0, options={"task_id": task_id})
    memory = ""
    while obs["phase"] == "update":
        memory += obs["chunk"]
        obs, *_ = env.step(memory)
    _, _, done, _, info = env.step("\\boxed{" + answer + "}")
    assert done
    return info["reward_components"]["accuracy"]


def test_the_corrected_value_scores_and_the_first_does_not():
    env = gym.make(dialogue_recall.ENV_ID, num_tasks=8, memory_tokens=4096)
    for t in range(8):
        task = env.unwrapped.tasks[t]
        stated = [p for p in task.context if "renamed" in p or "repainted" in p or "gave up" in p]
        assert len(stated) == 1  # exactly one correction in the stream
        assert _play_keeping_everything(env, t, task.answers[0]) == 1.0


def test_without_corrections_the_first_value_is_the_answer():
    env = gym.make(dialogue_recall.ENV_ID, num_tasks=4, corrections=False)
    for task in env.unwrapped.tasks[:4]:
        assert any(task.answers[0] in p for p in task.context)
        assert not any("renamed" in p or "repainted" in p for p in task.context)


def test_tasks_are_deterministic_and_differ_by_seed():
    one = gym.make(dialogue_recall.ENV_ID, num_tasks=3).unwrapped.tasks
    two = gym.make(dialogue_recall.ENV_ID, num_tasks=3).unwrapped.tasks
    other = gym.make(dialogue_recall.ENV_ID, num_tasks=3, seed=1).unwrapped.tasks
    assert [t.context for t in one[:3]] == [t.context for t in two[:3]]
    assert [t.context for t in one[:3]] != [t.context for t in other[:3]]


def test_a_single_session_is_a_config_error():
    with pytest.raises(ConfigError, match="num_sessions=1 must be an integer >= 2"):
        gym.make(dialogue_recall.ENV_ID, num_sessions=1)
