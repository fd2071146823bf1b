"""Wrappers over memgym envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["VectorRewardWrapper"]


class VectorRewardWrapper(gym.Wrapper):
    """Return the reward components as a vector (MO-Gymnasium's convention).

    `step()` returns an `np.ndarray` of the rubric's component values, in `component_names`
    order, instead of the weighted scalar; `reward_space` is a `Box(0, 1)` of that shape. The
    scalar is kept in `info["scalar_reward"]`.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.component_names: tuple[str, ...] = env.unwrapped.rubric.names
        self.reward_space = gym.spaces.Box(0.0, 1.0, shape=(len(self.component_names),),
                                           dtype=np.float32)
        self.reward_dim = len(self.component_names)

    def step(self, action: Any):
        """Step the env and return the component vector as the reward."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        values = info.get("reward_components", {})
        vector = np.array([values.get(n, 0.0) for n in self.component_names], dtype=np.float32)
        info["scalar_reward"] = reward
        return obs, vector, terminated, truncated, info
