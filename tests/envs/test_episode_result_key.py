"""memgym's episode result key leaves Gymnasium's `info["episode"]` free: its
`RecordEpisodeStatistics` wraps an env of each family with its default key, and the env's own
result is still there under `info["episode_result"]`."""

from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.wrappers import RecordEpisodeStatistics

import memgym  # noqa: F401  (registers the ids)
from memgym.agents.episode import run_episode, run_sync
from memgym.agents.recipe import load_agent
from memgym.envs import EPISODE_RESULT_KEY

AGENTS = Path(__file__).parents[2] / "agents"


def test_the_key_is_not_gymnasiums():
    assert EPISODE_RESULT_KEY == "episode_result"


@pytest.mark.parametrize(("env_id", "recipe"), [
    ("MemAgent-Synthetic-v0", "scripted_oracle.yaml"),  # long-context
    ("MemoryBank-Synthetic-v0", "bank_oracle.yaml"),  # dialogue
])
def test_record_episode_statistics_wraps_the_env_with_its_default_key(env_id, recipe):
    env = RecordEpisodeStatistics(gym.make(env_id))
    episode = run_sync(run_episode(env, load_agent(AGENTS / recipe, None), seed=0, task_id=0))
    stats = episode.info["episode"]  # Gymnasium's, at its default key
    assert stats["r"] == pytest.approx(sum(episode.rewards))
    assert stats["l"] == len(episode.actions)
    result = episode.info["episode_result"]  # memgym's, untouched by the wrapper
    assert episode.reward == result["reward"] == 1.0
    assert episode.reward_components == result["reward_components"]
