"""`check_memgym_env`: Gymnasium's checker plus memgym's own contract for memory environments."""

from __future__ import annotations

import math
import pickle
from typing import Any

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from memgym.rewards.rubric import EPISODE_RESULT_KEY

__all__ = ["check_memgym_env", "NASTY_ACTIONS"]

NASTY_ACTIONS: tuple[str, ...] = (
    "",
    " ",
    "\\boxed{",
    "}}}{{{\\boxed{}}",
    "\\boxed{\\boxed{x}",
    "ünïcødé 中文 🙂 \x00 \u200b \ud7ff",
    "word " * 20000,
    "x" * 1_000_000,
)
"""Actions every memgym env must accept without raising: empty, unbalanced braces, odd Unicode,
very long (100K tokens; 1 MB without spaces)."""


def _play(env: gym.Env, seed: int, task_id: int, actions: list[str]) -> list[tuple[Any, ...]]:
    """Reset and step through `actions` (cycled) until the episode ends; return the transcript."""
    obs, _ = env.reset(seed=seed, options={"task_id": task_id})
    transcript: list[tuple[Any, ...]] = [(obs,)]
    for i in range(10_000):
        obs, reward, terminated, truncated, info = env.step(actions[i % len(actions)])
        transcript.append((obs, reward, terminated, truncated, info.get("reward_components")))
        if terminated or truncated:
            return transcript
    raise AssertionError("episode did not end within 10,000 steps")


def _check_reward_components(env: gym.Env, seed: int) -> None:
    env.reset(seed=seed, options={"task_id": 0})
    for i in range(10_000):
        _, reward, terminated, truncated, info = env.step(NASTY_ACTIONS[i % len(NASTY_ACTIONS)])
        components, weights = info.get("reward_components"), info.get("reward_weights")
        assert isinstance(components, dict) and isinstance(weights, dict), (
            "info must carry reward_components and reward_weights at every step")
        _check_weighted_sum(reward, components, weights, "step")
        if terminated or truncated:
            _check_episode_result(info, weights)
            return


def _check_weighted_sum(reward: float, components: dict, weights: dict, what: str) -> None:
    """Scored components are the rubric's, lie in [0, 1], and their weighted sum is the reward
    (a component a step does not score is absent, not 0)."""
    assert set(components) <= set(weights), (
        f"{what} reward_components {sorted(set(components) - set(weights))} have no weight")
    total = sum(weights[k] * components[k] for k in components)
    assert math.isclose(total, reward, abs_tol=1e-6), (
        f"{what} reward {reward} != weighted sum of components {total} ({components}, {weights})")
    assert all(0.0 <= v <= 1.0 for v in components.values()), (
        f"{what} component out of [0,1]: {components}")


def _check_episode_result(info: dict, weights: dict) -> None:
    """The episode contract: the terminating step's info["episode_result"] holds the
    episode's reward and components (what eval and the trainer read), the reward their
    weighted sum."""
    result = info.get(EPISODE_RESULT_KEY)
    assert isinstance(result, dict) and isinstance(result.get("reward_components"), dict), (
        f"the terminating step's info must hold {EPISODE_RESULT_KEY} = {{'reward': float, "
        "'reward_components': {name: float}}: the episode's result")
    _check_weighted_sum(result["reward"], result["reward_components"], weights, "episode")


def check_memgym_env(env: gym.Env, *, seed: int = 0, skip_render_check: bool = True) -> None:
    """Run every check a memgym environment must pass; raise AssertionError on the first failure.

    Checks: Gymnasium's `check_env`; the reward components a step scores, weighted by
    `reward_weights`, sum to the reward and lie in [0, 1]; at termination `info["episode_result"]`
    holds the episode's result (reward and components, the reward their weighted sum); same seed and task id give identical episodes; the env pickles
    mid-episode and the copy continues identically; the nasty actions never raise and keep the
    observation inside `observation_space` (honest, finite text bounds); `num_tasks` is exposed.
    """
    check_env(env.unwrapped, skip_render_check=skip_render_check)
    base = env.unwrapped
    assert isinstance(getattr(base, "num_tasks", None), int) and base.num_tasks > 0, (
        "env.unwrapped.num_tasks must be a positive int")

    _check_reward_components(env, seed)

    actions = ["memory: first", "memory: second \\boxed{x}", "The answer is \\boxed{42}"]
    first = _play(env, seed, 0, actions)
    second = _play(env, seed, 0, actions)
    assert repr(first) == repr(second), "same seed and task_id must give identical episodes"

    env.reset(seed=seed, options={"task_id": 0})
    env.step(actions[0])
    clone = pickle.loads(pickle.dumps(base))
    for step in range(3):
        a = base.step(actions[step % len(actions)])
        b = clone.step(actions[step % len(actions)])
        assert repr(a) == repr(b), "a pickled copy must continue exactly like the original"
        if a[2] or a[3]:
            break

    space = base.observation_space
    for action in NASTY_ACTIONS:
        obs, _ = env.reset(seed=seed, options={"task_id": 0})
        for _ in range(10_000):
            obs, *_, terminated, truncated, _info = env.step(action)
            assert space.contains(obs), (
                f"after the action {action[:40]!r}... the observation is outside "
                f"observation_space (its bounds must hold for any action)")
            if terminated or truncated:
                break
