"""Recipe loading: YAML errors with locations, overrides, strict dataclass validation."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from memgym.config import from_dict, load_yaml, merge, parse_overrides
from memgym.errors import ConfigError


@dataclass
class Inner:
    size: int = 1


@dataclass
class Recipe:
    learning_rate: float = 1e-6
    loss_type: Literal["grpo", "dr_grpo"] = "grpo"
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    model: str | None = None


def test_yaml_and_overrides_merge_into_typed_dataclass(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("learning_rate: 1\ninner:\n  size: 2\ntags: [a]\n")
    data = merge(load_yaml(path), parse_overrides(["inner.size=5", "loss_type=dr_grpo", "model=x"]))
    recipe = from_dict(Recipe, data)
    assert recipe == Recipe(1.0, "dr_grpo", ["a"], Inner(5), "x")
    assert isinstance(recipe.learning_rate, float)


def test_unknown_key_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="learning_rat: unknown key. Did you mean 'learning_rate'"):
        from_dict(Recipe, {"learning_rat": 1e-5})
    with pytest.raises(ConfigError, match="inner.sise: unknown key. Did you mean 'size'"):
        from_dict(Recipe, {"inner": {"sise": 2}})


def test_wrong_types_and_literals_are_named():
    with pytest.raises(ConfigError, match="loss_type='ppo' is not allowed"):
        from_dict(Recipe, {"loss_type": "ppo"})
    with pytest.raises(ConfigError, match="inner.size='big': expected int"):
        from_dict(Recipe, {"inner": {"size": "big"}})


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+:\d+"):
        load_yaml(path)


def test_malformed_override_is_rejected():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["no_equals_sign"])


def test_float_fields_accept_yaml_exponent_strings():
    # PyYAML parses "1e-5" (no dot) as a string; a float field still takes it.
    assert from_dict(Recipe, parse_overrides(["learning_rate=1e-5"])).learning_rate == 1e-5
    with pytest.raises(ConfigError, match="expected a number"):
        from_dict(Recipe, {"learning_rate": "fast"})
