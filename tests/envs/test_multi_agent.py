"""The PettingZoo views of the dialogue env: PettingZoo's own API and seed tests, whose turn it
is, per-agent scalar rewards with components in infos, and the frozen-reader manager reward."""

import json
import warnings

import pytest
from dialogue_helpers import tiny_conversation

pytest.importorskip("pettingzoo")  # the optional extra memgym[multiagent]
from pettingzoo.test import (
    api_test,
    parallel_api_test,
    parallel_seed_test,
    seed_test,
)

from memgym.envs.dialogue import DialogueMemoryEnv
from memgym.envs.multi_agent import memory_bank_aec_env, memory_bank_parallel_env
from memgym.errors import ConfigError

SMALL = {"num_conversations": 2, "num_sessions": 2, "questions": 3}


@pytest.fixture(autouse=True)
def _quiet():  # PettingZoo warns that text observations are not numpy arrays
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def test_pettingzoo_api_test_passes():
    api_test(memory_bank_aec_env(**SMALL), num_cycles=200)


def test_pettingzoo_parallel_api_test_passes():
    parallel_api_test(memory_bank_parallel_env(**SMALL), num_cycles=200)


def test_pettingzoo_seed_tests_pass():
    seed_test(lambda: memory_bank_aec_env(**SMALL), num_cycles=100)
    parallel_seed_test(lambda: memory_bank_parallel_env(**SMALL), num_cycles=100)


def test_aec_selects_the_manager_for_writes_then_the_answerer():
    env = memory_bank_aec_env(DialogueMemoryEnv([tiny_conversation()]))
    env.reset(seed=0, options={"task_id": 0})
    order = []
    for agent in env.agent_iter():
        obs, reward, terminated, truncated, info = env.last()
        if terminated or truncated:
            env.step(None)
            continue
        order.append((agent, obs["phase"]))
        if agent == "manager":
            env.step(json.dumps({"memory": [{"event": "ADD", "text": obs["dialogue"][-40:]}]}))
        else:
            env.step("Lisbon [NO_CITE]")
    assert order == [("manager", "write")] * 4 + [("answerer", "answer")] * 3
    assert env.agents == []


def test_rewards_are_per_agent_scalars_with_components_in_infos():
    env = memory_bank_parallel_env(DialogueMemoryEnv([tiny_conversation()]))
    obs, infos = env.reset(seed=0, options={"task_id": 0})
    assert set(obs) == {"manager", "answerer"} and obs["manager"] == obs["answerer"]
    for _ in range(4):
        obs, rewards, terms, truncs, infos = env.step({"manager": "[]", "answerer": "ignored"})
    assert infos["manager"]["reward_components"]["op_validity"] == 1.0
    assert infos["answerer"]["reward_components"] == {}  # it did not act: nothing scored
    obs, rewards, terms, truncs, infos = env.step({"manager": "ignored", "answerer": "Lisbon"})
    assert rewards == {"manager": 0.0, "answerer": 1.0}
    assert infos["answerer"]["reward_components"]["f1"] == 1.0
    assert infos["manager"]["reward_components"] == {}
    with pytest.raises(ConfigError, match="the answerer acts"):
        env.step({"manager": "[]"})


def test_the_managers_reward_is_the_frozen_readers_score_after_its_edit():
    def reader(question, memories):
        return "Lisbon" if any("Lisbon" in m.text for m in memories) else "unknown"

    env = memory_bank_parallel_env(DialogueMemoryEnv([tiny_conversation()], reader=reader))
    env.reset(seed=0, options={"task_id": 0})
    add = json.dumps({"memory": [{"event": "ADD", "text": "Ana moved to Lisbon"}]})
    _, rewards, *_ = env.step({"manager": add, "answerer": ""})
    assert rewards == {"manager": 1.0, "answerer": 0.0}  # q0 is linked to D1:1


def test_a_non_dialogue_env_is_refused():
    with pytest.raises(ConfigError, match="wraps a DialogueMemoryEnv"):
        memory_bank_aec_env("MemAgent-Synthetic-v0")
