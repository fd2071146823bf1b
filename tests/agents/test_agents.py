"""Agents playing episodes: MemAgent on hand-made tasks (prompts, memory trace, boxed answer,
failures), MEM1-style, the full-context / BM25 / oracle baselines, the scripted-policy agent, and
every recipe in agents/ on a registered env; the synthetic task's oracle policy scores 1.0."""

import asyncio
import importlib.util
from pathlib import Path

import gymnasium as gym
import pytest
from agent_helpers import NEEDLE, failing_on, make_env, reader, reader_backend

import memgym  # noqa: F401  (registers the env ids)
from memgym.agents import (
    FullContextAgent,
    OracleAgent,
    ScriptedPolicyAgent,
    load_agent,
    make_mem1,
    make_memagent,
    run_episode,
)
from memgym.agents.baselines import ContextAnswerer
from memgym.errors import ConfigError, DataError
from memgym.llm import Completion, SamplingParams, ScriptedBackend
from memgym.testing.models import recipe_params
from memgym.tokenizers import WordTokenCounter

RECIPES = sorted((Path(__file__).parents[2] / "agents").glob("*.yaml"))


def play(agent, env=None, task_id=0, **kwargs):
    return asyncio.run(run_episode(env or make_env(), agent, seed=0, task_id=task_id, **kwargs))


def test_memagent_prompts_memory_trace_and_boxed_answer():
    backend = reader_backend()
    episode = play(make_memagent(backend, temperature=0.0))
    n_chunks = episode.num_steps - 1
    assert n_chunks >= 4 and len(episode.turns) == n_chunks + 1
    updates, answer = episode.turns[:-1], episode.turns[-1]
    assert all(t.component == "memory_update" and t.trainable for t in updates)
    assert [t.step for t in episode.turns] == list(range(episode.num_steps))
    first = backend.requests[0].messages[-1]["content"]
    assert "<problem> \nWhere does the cat Luna live?\n</problem>" in first
    assert "<memory>\nNo previous memory\n</memory>" in first
    assert "<section>\nDocument 0:\nTitle 0\n" in first
    assert all(r.sampling.max_new_tokens == 1024 for r in backend.requests)
    # the memory after each step is in the trace, and each update prompt shows the previous one
    needle_step = next(i for i, t in enumerate(updates) if "The cat Luna lives in Paris" in t.prompt)
    assert episode.trace[:needle_step] == ["No previous memory"] * needle_step
    assert episode.trace[needle_step] == "The cat Luna lives in Paris with her owner."
    assert episode.trace[-1] == episode.trace[-2] == episode.trace[needle_step]
    later = backend.requests[needle_step + 1].messages[-1]["content"]
    assert "<memory>\nThe cat Luna lives in Paris with her owner.\n</memory>" in later
    assert "Updated memory:" not in answer.prompt and "Your answer:" in answer.prompt
    assert episode.actions[-1] == "The answer is \\boxed{Paris}."
    assert episode.info["answer"] == "Paris" and episode.reward == 1.0
    assert episode.reward_components == {"accuracy": 1.0, "format": 1.0, "memory_budget": 1.0}


def test_memagent_keeps_its_memory_when_a_call_fails_and_answers_empty_on_failure():
    def policy(request):
        text = request.messages[-1]["content"]
        if "Document 7" in text or "Your answer:" in text:
            raise ConnectionError("server went away")
        if "Document 9" in text:
            return ""  # empty text: keep the previous memory too
        return reader(request)

    episode = play(make_memagent(ScriptedBackend(policy)))
    errors = [t for t in episode.turns if t.finish_reason == "error"]
    assert len(errors) == 2 and all("server went away" in t.error for t in errors)
    assert episode.trace[-2] == "The cat Luna lives in Paris with her owner."
    assert episode.actions[-1] == "" and episode.reward == 0.0
    assert episode.info["format_errors"]


def test_memory_cap_and_overflowing_memory_is_scored_not_crashed():
    backend = ScriptedBackend(lambda r: "word " * 500 if "Updated memory" in
                              r.messages[-1]["content"] else "\\boxed{Paris")
    episode = play(make_memagent(backend, memory_max_new_tokens=300))
    assert all(t.finish_reason == "length" for t in episode.turns[:-1])
    assert all(len(t.completion_ids) == 300 for t in episode.turns[:-1])
    assert episode.info["memory_tokens"] <= 40  # the env truncates to its budget
    assert episode.reward_components["memory_budget"] == 0.0
    assert episode.reward_components["format"] == 0.0  # \boxed{ never closed


def test_sampling_seed_reaches_the_backend_and_differs_between_calls():
    backend = reader_backend()
    play(make_memagent(backend), sampling_seed=5)
    seeds = [r.sampling.seed for r in backend.requests]
    assert None not in seeds and len(set(seeds)) == len(seeds)
    again = reader_backend()
    play(make_memagent(again), sampling_seed=5)
    assert [r.sampling.seed for r in again.requests] == seeds


def test_mem1_rewrites_one_internal_state_and_answers_from_it():
    backend = reader_backend()
    episode = play(make_mem1(backend))
    assert "<IS>\nNo previous memory\n</IS>" in backend.requests[0].messages[-1]["content"]
    assert episode.trace[-1] == "The cat Luna lives in Paris with her owner."
    assert "<IS>\nThe cat Luna lives in Paris" in episode.turns[-1].prompt
    assert episode.actions[-1] == "\\boxed{Paris}" and episode.reward == 1.0
    assert all(r.sampling.temperature == 0.01 for r in backend.requests)


def test_full_context_answers_once_from_the_whole_context_and_truncates_the_middle():
    backend = reader_backend()
    answerer = ContextAnswerer(backend, sampling=SamplingParams(max_new_tokens=32),
                               counter=WordTokenCounter(), max_context_tokens=100000)
    episode = play(FullContextAgent(answerer))
    assert len(episode.turns) == 1 and episode.reward == 1.0
    assert all(m == "No previous memory" for m in episode.trace)
    assert "\n\n".join(make_env().tasks[0].context) in episode.turns[0].prompt
    small = ContextAnswerer(reader_backend(), sampling=SamplingParams(max_new_tokens=32),
                            counter=WordTokenCounter(), max_context_tokens=150)
    episode = play(FullContextAgent(small))
    prompt = episode.turns[0].prompt
    assert "Document 0:" in prompt and "w9x39" in prompt and "Paris" not in prompt
    assert WordTokenCounter().count(prompt) < 200 and episode.reward == 0.0


def test_bm25_agent_retrieves_the_needle():
    agent = load_agent({"kind": "rag_bm25", "passage_tokens": 30, "top_k": 2}, reader_backend())
    episode = play(agent)
    prompt = episode.turns[0].prompt
    assert "The cat Luna lives in Paris" in prompt and episode.reward == 1.0
    assert WordTokenCounter().count(prompt) < 200


def test_oracle_reads_only_the_gold_context():
    answerer = ContextAnswerer(reader_backend(), sampling=SamplingParams(),
                               counter=WordTokenCounter(), max_context_tokens=1000)
    episode = play(OracleAgent(answerer), task_id=1)
    assert episode.reward == 1.0 and len(episode.turns) == 1
    assert "The red car belongs to Ann Lee." in episode.turns[0].prompt
    assert "Document 0" not in episode.turns[0].prompt
    env = make_env()
    env.tasks = [env.tasks[0].__class__(0, "q", ("a",), ["x"])]  # no gold context recorded
    with pytest.raises(DataError, match="no gold_context"):
        play(OracleAgent(answerer), env=env)


def test_scripted_policy_agent_runs_plain_functions():
    seen = []

    def memory_fn(question, memory, chunk):
        seen.append(chunk)
        return "Paris" if "Paris" in chunk else memory

    agent = ScriptedPolicyAgent(memory_fn, lambda question, memory: memory)
    episode = play(agent)
    assert "".join(seen) == "\n\n".join(make_env().tasks[0].context)
    assert episode.actions[-1] == "\\boxed{Paris}" and episode.reward == 1.0
    assert episode.turns == []


def test_a_backend_error_in_an_answer_is_recorded_not_raised():
    agent = load_agent({"kind": "full_context"}, ScriptedBackend(failing_on("Luna")))
    episode = play(agent)
    assert episode.turns[0].finish_reason == "error" and episode.reward == 0.0
    agent = load_agent({"kind": "oracle"},
                       ScriptedBackend(failing_on("Luna", raise_it=False)))
    assert play(agent).turns[0].error == "server said no"


DIALOGUE_RECIPES = ("bank_oracle", "memory_r1", "mem0_style", "rag_turns",
                    "dialogue_full_context", "dialogue_oracle", "rmm")
"""Agents of the dialogue envs (tests/agents/test_memory_r1.py, test_dialogue_baselines.py,
test_rmm.py): they read the memories an observation shows as data (`memory_entries`), which a
long-context env has none of."""


@pytest.mark.parametrize("recipe", recipe_params(  # the task oracles: their own tests
    p for p in RECIPES if p.stem not in ("scripted_oracle", *DIALOGUE_RECIPES)))
def test_every_recipe_plays_a_registered_env(recipe):
    """Each shipped recipe, on the bundled HotpotQA sample (a gold-answering scripted model)."""
    answer_format = "answer_is" if recipe.stem == "memagent_eval" else "boxed"
    env = gym.make("MemAgent-HotpotQA-v0", chunk_tokens=3000, answer_format=answer_format)
    gold = env.unwrapped.tasks[0].answers[0]

    def model(request):
        text = request.messages[-1]["content"]
        if "Updated memory:" in text or "<section>" in text:
            return "<IS>notes</IS>" if "<IS>" in text else "notes"
        if "Therefore, the answer is" in text:
            return f"Therefore, the answer is {gold}."
        return f"<answer>{gold}</answer>" if "<answer>" in text else f"\\boxed{{{gold}}}"

    agent = load_agent(recipe, ScriptedBackend(model))
    episode = play(agent, env=env)
    assert episode.reward == 1.0 and episode.info["golds"] == [gold]
    assert len(episode.trace) == episode.num_steps >= 2
    assert all(t.finish_reason != "error" for t in episode.turns)


def test_memagent_eval_agent_refuses_an_env_that_extracts_boxed_answers():
    agent = load_agent(RECIPES[0].parent / "memagent_eval.yaml", ScriptedBackend(lambda r: "m"))
    env = gym.make("MemAgent-HotpotQA-v0", chunk_tokens=3000)
    with pytest.raises(ConfigError, match="--env-kwargs answer_format=answer_is"):
        play(agent, env=env)


@pytest.mark.skipif(importlib.util.find_spec("memgym.data.synthetic") is None,
                    reason="memgym.data.synthetic not available yet")
def test_synthetic_oracle_policy_scores_one():
    agent = load_agent(Path(__file__).parents[2] / "agents" / "scripted_oracle.yaml", None)
    env = gym.make("MemAgent-Synthetic-v0", num_tasks=8)
    rewards = [play(agent, env=env, task_id=t).reward for t in range(8)]
    assert rewards == [1.0] * 8


def test_agents_module_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, memgym.agents, memgym.agents.recipe, memgym.eval; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_needle_fixture_is_in_task_zero():
    assert NEEDLE in make_env().tasks[0].context and Completion  # keeps the import honest
