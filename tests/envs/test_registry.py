"""Every registered id: constructs offline with defaults (the dialogue ids that need data: with
the small fixtures of tests/fixtures), passes the checkers, vectorises."""

import gymnasium as gym
import pytest
from dialogue_helpers import DATA_KWARGS

import memgym  # noqa: F401  (registers the ids)
from memgym.envs.registration import ENV_DESCRIPTIONS
from memgym.errors import ConfigError
from memgym.testing import check_memgym_env

ENV_IDS = sorted(ENV_DESCRIPTIONS)
# DATA_KWARGS: the fixtures; with real data, tests/envs/test_dialogue_registration.py runs LoCoMo


def test_every_description_is_registered_and_vice_versa():
    registered = {k for k, spec in gym.registry.items() if str(spec.entry_point).startswith("memgym.")}
    assert registered == set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registered_env_passes_checkers(env_id):
    env = gym.make(env_id, **DATA_KWARGS.get(env_id, {}))
    check_memgym_env(env)
    env.close()


@pytest.mark.parametrize("env_id", ["MemAgent-HotpotQA-v0", "MemAgent-Synthetic-v0"])
def test_make_vec_sync(env_id):
    envs = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync")
    obs, info = envs.reset(seed=0, options={"task_id": 0})
    assert list(obs["question"]) and obs["question"][0] == obs["question"][1]
    obs, reward, terminated, truncated, info = envs.step(["memory", "memory"])
    assert reward.shape == (2,)
    envs.close()


def test_make_vec_async_resets_and_steps_in_bounded_memory():
    """Shared memory follows the honest text bounds (it once reserved 21 GB and hung)."""
    envs = gym.make_vec("MemAgent-HotpotQA-v0", num_envs=2, vectorization_mode="async")
    try:
        space = envs.single_observation_space
        reserved = 2 * 4 * sum(space[k].max_length for k in space.spaces)  # int32 per char
        assert reserved < 2**20  # under 1 MiB for two envs (chunk 80,000 chars = 320 KB each)
        obs, info = envs.reset(seed=0, options={"task_id": 0})
        assert obs["question"][0] == obs["question"][1] and obs["chunk"][0]
        assert obs["answer_format"] == ("boxed", "boxed")
        unicode_memory = "Mémoire: 中文 “quoted” – ok"
        obs, reward, terminated, truncated, info = envs.step([unicode_memory, unicode_memory])
        assert reward.shape == (2,) and obs["memory"][0] == unicode_memory  # survives shared memory
    finally:
        envs.close()


def test_bad_kwargs_name_the_problem():
    with pytest.raises(ConfigError, match="chunk_tokens"):
        gym.make("MemAgent-Synthetic-v0", chunk_tokens=0)
    with pytest.raises(ConfigError, match="Did you mean"):
        gym.make("MemAgent-Synthetic-v0", reward_weights={"acuracy": 1.0})
