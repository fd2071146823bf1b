"""Tests for memgym.trainer.config: recipes and overrides into GRPOConfig, unknown keys with
suggestions, value validation naming the field and the fix, derived values, and that every
recipe committed in train/ loads."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from memgym.errors import ConfigError
from memgym.trainer.config import GRPOConfig, load_config

TRAIN = Path(__file__).resolve().parents[2] / "train"


def test_defaults_match_trl_where_shared():
    trl = pytest.importorskip("trl")
    ours = GRPOConfig()
    theirs = trl.GRPOConfig.__dataclass_fields__
    for name in ("learning_rate", "num_generations", "beta", "epsilon", "epsilon_high",
                 "loss_type", "scale_rewards", "num_iterations", "max_grad_norm",
                 "temperature", "top_p", "seed", "multi_objective_aggregation",
                 "adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay",
                 "steps_per_generation"):
        assert name in theirs, f"{name} is not a TRL GRPOConfig field"
        default = theirs[name].default
        if name == "steps_per_generation":
            continue  # TRL's default None means "equal to gradient_accumulation_steps"
        assert getattr(ours, name) == default, name


def test_every_field_has_a_docstring():
    import ast
    import inspect

    from memgym.trainer import config as module

    tree = ast.parse(inspect.getsource(module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "GRPOConfig")
    body = cls.body
    documented = {
        stmt.target.id for stmt, nxt in itertools.pairwise(body)
        if isinstance(stmt, ast.AnnAssign) and isinstance(nxt, ast.Expr)
        and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)}
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert fields - documented == set()


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="num_generation: unknown key. Did you mean "
                                          "'num_generations'"):
        load_config(None, ["num_generation=8"])


def test_unknown_key_in_recipe_names_the_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("learning_rat: 1.0e-5\n")
    with pytest.raises(ConfigError, match=r"r\.yaml\.learning_rat: unknown key.*learning_rate"):
        load_config(path)


def test_overrides_win_and_trainer_prefix_is_accepted(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("num_generations: 4\nenv_kwargs: {chunk_tokens: 64, memory_tokens: 32}\n")
    cfg = load_config(path, ["trainer.num_generations=8", "env_kwargs.chunk_tokens=128",
                             "learning_rate=1e-5"])
    assert cfg.num_generations == 8
    assert cfg.env_kwargs == {"chunk_tokens": 128, "memory_tokens": 32}
    assert cfg.learning_rate == 1e-5      # YAML 1.1 reads "1e-5" as a string; accepted


def test_trainer_section_conflicting_with_top_level_is_an_error():
    with pytest.raises(ConfigError, match="both at the top level and under"):
        load_config({"beta": 0.1, "trainer": {"beta": 0.2}})


def test_bad_literal_lists_the_choices():
    with pytest.raises(ConfigError, match="loss_type='ppo' is not allowed; choose one of"):
        load_config(None, ["loss_type=ppo"])


@pytest.mark.parametrize("override,field", [
    ("num_generations=1", "num_generations"),
    ("tasks_per_step=3", "steps_per_generation"),
    ("temperature=0", "temperature"),
    ("tis_cap=0.5", "tis_cap"),
    ("eval_steps=10", "eval_tasks"),
    ("save_steps=3", "save_steps"),
    ("report_to=tensorboard", "report_to"),
    ("epsilon=1.5", "epsilon"),
])
def test_invalid_values_name_the_field(override, field):
    extra = ["steps_per_generation=2"] if field in ("steps_per_generation", "save_steps") else []
    with pytest.raises(ConfigError, match=field):
        load_config(None, [override, *extra])


def test_derived_values():
    cfg = load_config(None, ["tasks_per_step=8", "num_generations=16", "steps_per_generation=4",
                             "epsilon=0.2", "save_steps=8"])
    assert cfg.episodes_per_step == 128
    assert cfg.tasks_per_optimizer_step == 2
    assert cfg.epsilon_high_resolved == 0.2
    assert load_config(None, ["epsilon_high=0.28"]).epsilon_high_resolved == 0.28
    assert load_config(None, ["warmup_ratio=0.1", "max_steps=50"]).num_warmup_steps == 5
    assert "episodes_per_step" not in cfg.to_dict()


@pytest.mark.parametrize("recipe", sorted(p.name for p in TRAIN.glob("*.yaml")))
def test_committed_recipes_load(recipe):
    cfg = load_config(TRAIN / recipe)
    assert cfg.max_steps > 0


def test_memagent_recipe_has_the_published_settings():
    cfg = load_config(TRAIN / "memagent_qwen2.5-7b.yaml")
    assert cfg.num_generations == 16 and cfg.learning_rate == 1e-6
    assert cfg.beta == 0.001 and cfg.epsilon == 0.2 and cfg.epsilon_high_resolved == 0.2
    assert cfg.scale_rewards == "none"
    assert cfg.env_kwargs["chunk_tokens"] == 5000 and cfg.env_kwargs["memory_tokens"] == 1024


def test_vllm_generation_needs_a_loadable_model():
    with pytest.raises(ConfigError, match="generation_backend='vllm' needs model="):
        load_config({"model": "tiny", "generation_backend": "vllm"})
    assert load_config({"model": "Qwen/Qwen2.5-7B-Instruct",
                        "generation_backend": "vllm"}).generation_backend == "vllm"


def test_bnpo_is_refused_because_token_packing_would_change_it():
    from memgym.errors import ConfigError
    with pytest.raises(ConfigError, match="loss_type='bnpo'.*dapo"):
        load_config({"loss_type": "bnpo"})


@pytest.mark.parametrize("truncation", [{"top_p": 0.95}, {"top_k": 20}])
def test_vllm_tis_with_truncated_sampling_is_refused(truncation):
    from memgym.errors import ConfigError
    with pytest.raises(ConfigError, match="tis_cap"):
        load_config({"generation_backend": "vllm", "model": "org/m", **truncation})
    load_config({"generation_backend": "vllm", "model": "org/m", "tis_cap": None, **truncation})


def test_memagent_recipe_uses_memagents_turn_weighting():
    cfg = load_config(Path(__file__).resolve().parents[2] / "train" / "memagent_qwen2.5-7b.yaml")
    assert cfg.normalize_turns_per_episode is False


@pytest.mark.parametrize("bad", [0, "two", True])
def test_torch_threads_must_be_a_positive_number_auto_or_null(bad):
    with pytest.raises(ConfigError, match=r"torch_threads=.*positive number, 'auto'"):
        GRPOConfig(torch_threads=bad)
    assert load_config(None, overrides=["torch_threads=auto"]).torch_threads == "auto"
    assert load_config(None, overrides=["torch_threads=2"]).torch_threads == 2
