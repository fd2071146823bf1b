"""Rubrics: weighted sums, vectors, and unknown component names."""

import numpy as np
import pytest

from memgym.errors import ConfigError
from memgym.rewards import Rubric


def test_total_is_weighted_sum_and_vector_is_unweighted():
    rubric = Rubric.from_weights({"accuracy": 1.0, "format": 0.0}, {"format": 0.5})
    values = {"accuracy": 0.5, "format": 1.0}
    assert rubric.total(values) == pytest.approx(1.0)
    assert rubric.weighted(values) == {"accuracy": 0.5, "format": 0.5}
    np.testing.assert_allclose(rubric.vector(values), [0.5, 1.0])


def test_unknown_component_is_an_error_with_suggestion():
    with pytest.raises(ConfigError, match="Did you mean 'format'"):
        Rubric.from_weights({"accuracy": 1.0, "format": 0.0}, {"formt": 1.0})


def test_a_component_a_step_did_not_score_adds_nothing_and_is_not_made_zero():
    r = Rubric.from_weights({"accuracy": 1.0, "memory_budget": 0.5})
    assert r.total({}) == 0.0
    assert r.weighted({"memory_budget": 1.0}) == {"memory_budget": 0.5}
    assert r.episode_result({"accuracy": 1.0}) == {"reward": 1.0,
                                                   "reward_components": {"accuracy": 1.0}}
    with pytest.raises(ConfigError, match="not in the rubric"):
        r.total({"acuracy": 1.0})
