"""memgym.envs.validation: env ids and kwargs checked offline, the answer format aligned."""

from pathlib import Path

import pytest

from memgym.agents.recipe import load_recipe
from memgym.envs.validation import align_answer_format, env_accepts, validate_env
from memgym.errors import ConfigError

AGENTS = Path(__file__).resolve().parents[2] / "agents"


def test_a_misspelt_id_names_the_nearest_registered_one():
    with pytest.raises(ConfigError, match="Did you mean 'MemAgent-HotpotQA-v0'"):
        validate_env("MemAgent-HotpotQA-v1x", {})


def test_a_misspelt_kwarg_names_the_nearest_argument_and_where_it_came_from():
    with pytest.raises(ConfigError, match=r"^env_kwargs num_kyes=.*Did you mean 'num_keys'"):
        validate_env("MemAgent-Synthetic-v0", {"num_kyes": 3}, kwargs_field="env_kwargs")


def test_kwargs_a_registration_fixes_are_not_offered():
    # a RULER env's task is fixed by its id; gym.make's own arguments are accepted
    assert not env_accepts("MemAgent-RULER-VT-v0", "task")
    assert env_accepts("MemAgent-RULER-VT-v0", "max_episode_steps")
    validate_env("MemAgent-RULER-VT-v0", {"target_tokens": 2048, "max_episode_steps": 9})


def test_align_answer_format_leaves_envs_without_the_argument_alone():
    recipe = load_recipe(AGENTS / "memagent_eval.yaml")
    kwargs: dict = {}
    align_answer_format("NoSuchEnv-v0", kwargs, recipe.config)
    assert kwargs == {}
    align_answer_format("MemAgent-HotpotQA-v0", kwargs, recipe.config)
    assert kwargs == {"answer_format": "answer_is"}
