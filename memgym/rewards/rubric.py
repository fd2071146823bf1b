"""Rubrics: named, weighted reward components whose weighted sum is the scalar reward."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from memgym.errors import ConfigError, did_you_mean

__all__ = ["EPISODE_RESULT_KEY", "Rubric"]

EPISODE_RESULT_KEY = "episode_result"
"""The info key under which an env's terminating step reports the episode's result
(`Rubric.episode_result`'s dict), the one result eval, the trainer and logs read. Not
"episode": that is the default key of Gymnasium's `RecordEpisodeStatistics`, which asserts
it is free."""


@dataclass(frozen=True)
class Rubric:
    """An ordered set of reward components with weights.

    The env computes each component's value in [0, 1] and reports the ones a step scores in
    `info["reward_components"]`; `step()` returns `total(values)`, the weighted sum. A component
    with weight 0 is still measured and logged, it just does not move the scalar reward. A
    component a step does not score (MemAgent's `memory_budget` before the answer, a dialogue
    env's `f1` at a write step) is absent from that step's values, not 0: it adds nothing to
    the total and does not read as a failure.
    """

    weights: tuple[tuple[str, float], ...]

    @classmethod
    def from_weights(cls, defaults: Mapping[str, float], overrides: Mapping[str, float] | None = None
                     ) -> "Rubric":
        """Start from `defaults` and apply `overrides`; unknown component names are errors."""
        merged = dict(defaults)
        for name, weight in (overrides or {}).items():
            if name not in merged:
                raise ConfigError(
                    f"reward_weights has unknown component {name!r}.{did_you_mean(name, merged)} "
                    f"This env's components: {', '.join(merged)}"
                )
            merged[name] = float(weight)
        return cls(tuple(merged.items()))

    @property
    def names(self) -> tuple[str, ...]:
        """Component names in order."""
        return tuple(name for name, _ in self.weights)

    def weighted(self, values: Mapping[str, float]) -> dict[str, float]:
        """Each scored component's contribution `weight * value`; these add up to
        `total(values)`. Components absent from `values` (not scored) contribute nothing."""
        unknown = set(values) - set(self.names)
        if unknown:
            raise ConfigError(f"reward components {sorted(unknown)} are not in the rubric "
                              f"({', '.join(self.names)})")
        return {name: w * float(values[name]) for name, w in self.weights if name in values}

    def total(self, values: Mapping[str, float]) -> float:
        """The scalar reward: the weighted sum of the component values."""
        return float(sum(self.weighted(values).values()))

    def episode_result(self, values: Mapping[str, float]) -> dict[str, Any]:
        """The `info[EPISODE_RESULT_KEY]` (`info["episode_result"]`) entry of a terminating
        step: the episode's reward components and their weighted sum, the one result eval,
        trainer and logs read (see `memgym.agents.episode.run_episode`)."""
        components = {name: float(values[name]) for name in self.names if name in values}
        return {"reward": self.total(components), "reward_components": components}

    def vector(self, values: Mapping[str, float]) -> np.ndarray:
        """Component values (unweighted) as a float32 vector in `names` order."""
        return np.array([float(values[name]) for name in self.names], dtype=np.float32)
