"""The dialogue oracle: scores 1.0 on the synthetic task through the episode runner, maps fact
keys to bank ids, and answers only from what the env shows (its privilege is the task alone)."""

from pathlib import Path

import gymnasium as gym
import pytest

import memgym  # noqa: F401
from memgym.agents.bank_oracle import BankOracleAgent
from memgym.agents.base import EpisodeContext
from memgym.agents.episode import run_episode, run_sync
from memgym.agents.recipe import load_agent
from memgym.errors import DataError
from memgym.rewards.rubric import EPISODE_RESULT_KEY

RECIPE = Path(__file__).parents[2] / "agents" / "bank_oracle.yaml"


def play(env, agent, task_id):
    return run_sync(run_episode(env, agent, seed=0, task_id=task_id))


def test_the_oracle_scores_one_on_every_question_with_every_operation_valid():
    env = gym.make("MemoryBank-Synthetic-v0", num_conversations=4)
    agent = load_agent(RECIPE, None)
    for task_id in range(4):
        episode = play(env, agent, task_id)
        summary = episode.info[EPISODE_RESULT_KEY]
        assert summary["reward_components"]["f1"] == 1.0
        assert summary["reward_components"]["em"] == 1.0
        assert summary["reward_components"]["op_validity"] == 1.0
        assert summary["op_counts"]["UPDATE/applied"] + summary["op_counts"]["DELETE/applied"] > 0
        categories = {q["category"] for q in summary["questions"]}
        assert {"single-hop", "temporal", "unanswerable"} <= categories


def test_the_oracle_says_unknown_when_the_env_does_not_show_the_memory():
    # one memory shown per question: questions needing a fact the retriever missed fail
    env = gym.make("MemoryBank-Synthetic-v0", num_conversations=4, top_k=1, per_speaker_k=0)
    scores = [play(env, BankOracleAgent(), t).info[EPISODE_RESULT_KEY]["reward_components"]["f1"]
              for t in range(4)]
    assert min(scores) < 1.0


def test_the_oracle_needs_the_task():
    obs = {"phase": "write", "action_format": "memory_r1", "dialogue": ""}
    with pytest.raises(DataError, match="needs ctx.task"):
        run_sync(BankOracleAgent().act(obs, EpisodeContext()))
