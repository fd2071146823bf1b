"""The trainer's sampling settings reach every trainable LLM call of every shipped agent recipe.

Each shipped agent recipe is built the way the GRPO trainer builds its rollout and eval agents
(`trainer_sampling_overrides` over the recipe, nested components included) and plays one episode
on a recording backend: every trainable call must have sampled at the trainer's temperature (the
one the loss divides logits by), top_p and top_k, within max_completion_length; frozen calls keep
the recipe's own settings.
"""

import asyncio
import dataclasses

import gymnasium as gym
import pytest
from agent_helpers import make_env, reader

from memgym.agents import load_agent, load_recipe, run_episode
from memgym.agents.recipe import llm_calls, trainer_sampling_overrides
from memgym.errors import ConfigError
from memgym.llm import ScriptedBackend
from memgym.recipes import shipped_recipes
from memgym.trainer.config import load_config

DIALOGUE = {"memory_r1", "mem0_style", "rag_turns", "dialogue_full_context", "dialogue_oracle",
            "bank_oracle", "rmm"}
TRAINER = load_config({"temperature": 0.37, "top_p": 0.9, "top_k": 7,
                       "max_completion_length": 9, "eval_temperature": 0.0})


class Recorder:
    """A scripted model that remembers the sampling of each request, in call order."""

    def __init__(self):
        self.sampling = []

    def __call__(self, request):
        self.sampling.append(request.sampling)
        text = request.messages[-1]["content"] if request.messages else request.prompt
        if "<section>" in text or "<IS>" in text or "Document" in text:
            return reader(request)
        return ('{"facts": ["Ann likes tea."], "memory": [{"id": "0", "text": "Ann likes tea.", '
                '"event": "ADD"}]}\n**Answer:** tea')


def _episode_calls(name, **trainer):
    """(turn, sampling) of each LLM call of one episode of the recipe, built as the trainer does
    with `trainer`'s settings (temperature, top_p, top_k), or as the recipe says without them."""
    recipe = load_recipe(name)
    overrides = {"encoder": "hash"} if recipe.kind == "rmm" else {}  # offline encoder
    if trainer:
        overrides.update(trainer_sampling_overrides(
            recipe, max_new_tokens=TRAINER.max_completion_length, **trainer))
    recorder = Recorder()
    agent = load_agent(name, ScriptedBackend(recorder), overrides=overrides)
    if recipe.kind in DIALOGUE:
        env = gym.make("MemoryBank-Synthetic-v0", num_conversations=1,
                       **({"protocol": "rmm"} if recipe.kind == "rmm" else {}))
    else:
        env = make_env(answer_format=getattr(recipe.config, "answer_format", "boxed"))
    episode = asyncio.run(run_episode(env, agent, seed=0, task_id=0, sampling_seed=1,
                                      max_steps=2000))
    assert len(episode.turns) == len(recorder.sampling)
    return list(zip(episode.turns, recorder.sampling))


LLM_RECIPES = [n for n in shipped_recipes("agents") if load_recipe(n).needs_backend]


@pytest.mark.parametrize("name", LLM_RECIPES)
def test_every_trainable_call_samples_at_the_trainers_settings(name):
    calls = _episode_calls(name, temperature=TRAINER.temperature, top_p=TRAINER.top_p,
                           top_k=TRAINER.top_k)
    trained = [s for turn, s in calls if turn.trainable]
    declared = [c for _, c in llm_calls(load_recipe(name).config) if c.trainable]
    assert bool(trained) == bool(declared), "a declared trainable call made no trained Turn"
    for sampling in trained:  # the loss divides logits by TRAINER.temperature: the same number
        assert (sampling.temperature, sampling.top_p, sampling.top_k) == (0.37, 0.9, 7)
        assert sampling.max_new_tokens <= TRAINER.max_completion_length


@pytest.mark.parametrize("name", LLM_RECIPES)
def test_frozen_calls_keep_the_recipes_sampling(name):
    calls = _episode_calls(name, temperature=TRAINER.temperature, top_p=TRAINER.top_p,
                           top_k=TRAINER.top_k)
    plain = _episode_calls(name)
    assert len(calls) == len(plain)
    for (turn, s), (_, own) in zip(calls, plain):
        if not turn.trainable:
            assert dataclasses.replace(s, seed=None) == dataclasses.replace(own, seed=None)


def test_in_trainer_eval_samples_at_eval_temperature():
    calls = _episode_calls("memory_r1", temperature=TRAINER.eval_temperature, top_p=1.0, top_k=0)
    trained = [s for turn, s in calls if turn.trainable]
    assert trained and all(s.temperature == 0.0 for s in trained)
    components = {turn.component for turn, _ in calls if turn.trainable}
    assert components == {"manager", "answerer"}  # the nested components, both reached


OPAQUE = """
def opaque_agent(*, backend, name="opaque"):
    \"\"\"An agent that calls `backend` with sampling settings of its own.\"\"\"
    return object()
"""


def test_a_users_kind_that_declares_no_llm_call_is_refused_by_name(tmp_path, monkeypatch):
    (tmp_path / "opaque_kind.py").write_text(OPAQUE)
    monkeypatch.syspath_prepend(str(tmp_path))
    recipe = load_recipe({"kind": "opaque_kind:opaque_agent"})
    with pytest.raises(ConfigError, match="declares no LLM call.*LLMCall"):
        trainer_sampling_overrides(recipe, temperature=1.0, top_p=1.0, top_k=0,
                                   max_new_tokens=8)


def test_a_flat_kind_without_a_trainer_setting_is_refused_unless_it_truncates_nothing():
    # the memory-R1 quickstart's kind has flat temperature/top_p but no top_k: the trainer's
    # top_k was dropped silently, so its manager sampled untruncated beside a top-k trainer
    from memgym.quickstart.memory_r1 import register_tiny_kind

    register_tiny_kind()
    recipe = load_recipe({"kind": "memory_r1_tiny", "temperature": 1.0})
    with pytest.raises(ConfigError, match=r"memory_r1_tiny.*no top_k.*top_k=7"):
        trainer_sampling_overrides(recipe, temperature=0.37, top_p=0.9, top_k=7,
                                   max_new_tokens=9)
    assert trainer_sampling_overrides(recipe, temperature=0.37, top_p=0.9, top_k=0,
                                      max_new_tokens=9) == {"temperature": 0.37, "top_p": 0.9,
                                                            "max_new_tokens": 9}
