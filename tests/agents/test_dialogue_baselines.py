"""Dialogue baselines: mem0-style (mem0's update step with NONE items), RAG over raw turns (each
turn ADDed verbatim, bm25 and dense retrieval by the env), full context (truncated, and saying
so), the evidence oracle (privileged: the question's evidence turns only)."""

import json
import re
import sys
from pathlib import Path

import gymnasium as gym
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "envs"))
from dialogue_helpers import tiny_conversation

import memgym  # noqa: F401
from memgym.agents.base import EpisodeContext
from memgym.agents.dialogue_baselines import (
    TRUNCATION_NOTE,
    DialogueOracleAgent,
    evidence_context,
)
from memgym.agents.episode import run_episode, run_sync
from memgym.agents.memory_r1 import EMPTY_WRITE
from memgym.agents.recipe import load_agent
from memgym.envs.dialogue import DialogueMemoryEnv
from memgym.errors import ConfigError, DataError
from memgym.llm.scripted import ScriptedBackend
from memgym.rewards.rubric import EPISODE_RESULT_KEY
from memgym.testing.models import needs_models

AGENTS = Path(__file__).parents[2] / "agents"


def play(env, agent, task_id=0):
    return run_sync(run_episode(env, agent, seed=0, task_id=task_id))


def prompt_of(request):
    return request.messages[-1]["content"]


def tiny_env(**kwargs):
    return DialogueMemoryEnv([tiny_conversation()], **kwargs)


def reader(request):
    """Answers from whatever the prompt holds: Lisbon, the violin, the case."""
    prompt = prompt_of(request)
    question = prompt.rsplit("Question: ", 1)[1]
    before = prompt.rsplit("Question: ", 1)[0]
    if "move" in question:
        return "Lisbon\n(more text)" if "Lisbon" in before else "unknown"
    if "learning" in question:
        return "the violin" if "violin" in before else "unknown"
    return "on the violin case" if "violin case" in before else "unknown"


def test_mem0_style_returns_the_whole_memory_with_none_items():
    def model(request):
        prompt = prompt_of(request)
        if "Personal Information Organizer" in prompt:
            message = prompt.rsplit("Message: ", 1)[1].rsplit("\nOutput:", 1)[0]
            return json.dumps({"facts": [message]})
        if "smart memory manager" in prompt:
            assert "NONE when unchanged" in prompt and "NOOP" not in prompt
            old = json.loads(prompt.split("```\n", 2)[1].split("\n```", 1)[0])
            facts = json.loads(prompt.rsplit("```", 2)[-2])
            items = [{"id": m["id"], "text": m["text"], "event": "NONE"} for m in old]
            items += [{"id": str(len(old) + i), "text": f, "event": "ADD"}
                      for i, f in enumerate(facts)]
            return json.dumps({"memory": items})
        assert "**Answer:**" not in prompt  # mem0's plain answer step
        return reader(request)

    env = tiny_env()
    episode = play(env, load_agent(AGENTS / "mem0_style.yaml", ScriptedBackend(model)))
    counts = episode.info[EPISODE_RESULT_KEY]["op_counts"]
    assert counts["ADD/applied"] == 4 and counts["NOOP/applied"] > 0
    assert episode.actions[4:] == ["Lisbon", "the violin", "on the violin case"]
    assert episode.info[EPISODE_RESULT_KEY]["reward_components"]["f1"] == 1.0
    assert {(t.component, t.trainable) for t in episode.turns} == {
        ("extractor", False), ("manager", False), ("answerer", False)}


@pytest.mark.parametrize("retrieval", ["bm25", pytest.param("dense", marks=[pytest.mark.slow, needs_models("all-minilm-l6-v2")])])
def test_rag_turns_adds_every_turn_verbatim_and_answers_from_the_envs_retrieval(retrieval):
    if retrieval == "dense":
        pytest.importorskip("sentence_transformers")
    env = tiny_env(retrieval=retrieval)
    backend = ScriptedBackend(reader)
    episode = play(env, load_agent(AGENTS / "rag_turns.yaml", backend))
    assert sorted(e.text for e in env.bank) == sorted(
        f"{t.speaker}: {t.text}" for t in tiny_conversation().turns())
    assert [e.speaker for e in env.bank] == ["Ana", "Ben", "Ana", "Ben"]
    assert [t.component for t in episode.turns] == ["answerer"] * 3
    assert episode.actions[4:] == ["Lisbon", "the violin", "on the violin case"]
    assert "Memories for user Ana:\n- 1:00 pm on 8 May, 2023: Ana: I just moved to Lisbon." in \
        prompt_of(backend.requests[0])


def test_rag_turns_cuts_long_turns_to_the_entry_limit():
    env = tiny_env()
    play(env, load_agent(AGENTS / "rag_turns.yaml", ScriptedBackend(reader),
                         ["max_entry_chars=8"]))
    assert {len(e.text) for e in env.bank} == {8}


def test_full_context_answers_from_everything_and_stores_nothing():
    backend = ScriptedBackend(reader)
    episode = play(tiny_env(), load_agent(AGENTS / "dialogue_full_context.yaml", backend))
    assert episode.actions[:4] == [EMPTY_WRITE] * 4
    assert episode.info[EPISODE_RESULT_KEY]["bank_size"] == 0
    assert episode.info[EPISODE_RESULT_KEY]["reward_components"]["f1"] == 1.0
    prompt = prompt_of(backend.requests[0])
    assert "Session 1 (1:00 pm on 8 May, 2023)\nAna: I just moved to Lisbon." in prompt
    assert "Session 2 (2:00 pm on 9 June, 2023)\nAna: I started" in prompt
    assert "middle was cut" not in prompt


def test_full_context_and_the_oracle_play_the_session_stream_too():
    for stem in ("dialogue_full_context", "dialogue_oracle"):
        episode = play(tiny_env(protocol="rmm"), load_agent(AGENTS / f"{stem}.yaml",
                                                           ScriptedBackend(reader)))
        assert episode.info[EPISODE_RESULT_KEY]["reward_components"]["f1"] == 1.0, stem


def test_full_context_truncates_the_middle_and_says_so():
    backend = ScriptedBackend(reader)
    agent = load_agent(AGENTS / "dialogue_full_context.yaml", backend, ["tokenizer=words"])
    note = TRUNCATION_NOTE.format(kept=10 ** 9, total=10 ** 9)
    overhead = agent.counter.count(agent.answerer.template.render(
        context=note, question="Where did Ana move?"))
    agent.max_context_tokens = overhead + 44  # 44 of the conversation's 61 word tokens
    episode = play(tiny_env(), agent)
    prompt = prompt_of(backend.requests[0])
    assert prompt.count("middle was cut") == 1
    assert "Lisbon" in prompt and "violin case" in prompt  # the start and the end are kept
    assert "adopted" not in prompt and "Session 2" not in prompt  # the middle is not
    assert episode.actions[4] == "Lisbon"


def test_the_oracle_answers_from_the_evidence_turns_only():
    backend = ScriptedBackend(reader)
    episode = play(tiny_env(), load_agent(AGENTS / "dialogue_oracle.yaml", backend))
    assert episode.info[EPISODE_RESULT_KEY]["reward_components"]["f1"] == 1.0
    prompts = [prompt_of(r) for r in backend.requests]
    assert "Lisbon" in prompts[0] and "violin" not in prompts[0]
    assert "Miso" in prompts[2] and "Lisbon" not in prompts[2]
    assert all(not t.trainable for t in episode.turns)


def test_evidence_falls_back_to_sessions_then_says_none():
    conversation = tiny_conversation()
    q0 = conversation.questions[0]
    from dataclasses import replace
    by_session = replace(q0, evidence=())
    assert evidence_context(conversation, by_session) == (
        "Session 1 (1:00 pm on 8 May, 2023)\nAna: I just moved to Lisbon.\n"
        "Ben: I adopted a cat called Miso.")
    assert evidence_context(conversation, replace(q0, evidence=(), evidence_sessions=())) == \
        "(no evidence turns)"


def test_the_oracle_needs_the_task():
    agent = DialogueOracleAgent(load_agent(AGENTS / "dialogue_oracle.yaml",
                                           ScriptedBackend(reader)).answerer,
                                counter=None, max_context_tokens=10)
    with pytest.raises(DataError, match="needs ctx.task"):
        run_sync(agent.act({"phase": "answer", "question": "q"}, EpisodeContext()))


def test_rag_turns_refuses_the_rmm_protocol():
    with pytest.raises(ConfigError, match="protocol='memory_r1'"):
        play(tiny_env(protocol="rmm"), load_agent(AGENTS / "rag_turns.yaml",
                                                  ScriptedBackend(reader)))


@pytest.mark.parametrize("stem", ["mem0_style", "rag_turns", "dialogue_full_context",
                                  "dialogue_oracle"])
def test_each_baseline_plays_the_synthetic_task(stem):
    def model(request):
        prompt = prompt_of(request)
        if "Personal Information Organizer" in prompt:
            return '{"facts": ["a fact"]}'
        if "smart memory manager" in prompt:
            return '{"memory": [{"id": "0", "text": "a fact", "event": "ADD"}]}'
        return "unknown"

    env = gym.make("MemoryBank-Synthetic-v0", num_conversations=1)
    episode = play(env, load_agent(AGENTS / f"{stem}.yaml", ScriptedBackend(model)))
    summary = episode.info[EPISODE_RESULT_KEY]
    assert summary["num_questions"] > 0
    assert sum(t.component == "answerer" for t in episode.turns) == summary["num_questions"]
    assert summary["op_counts"]["MALFORMED/refused"] == 0
    # abstention questions are answered "unknown" correctly: the pipeline reaches the scorer
    assert any(q["f1"] == 1.0 for q in summary["questions"] if q["abstention"])


@pytest.mark.parametrize("stem", ["memory_r1", "mem0_style", "rag_turns",
                                  "dialogue_full_context", "dialogue_oracle"])
def test_each_dialogue_recipe_runs_through_memgym_eval_on_the_embedded_model(stem, tmp_path):
    """`memgym eval` with memgym's embedded model (transformers, CPU): one short synthetic
    conversation, two questions, tiny caps; the run writes dialogue metrics and Turns."""
    from memgym.cli import main

    out = tmp_path / stem
    caps = {"memory_r1": ["extractor.max_new_tokens=8", "manager.max_new_tokens=16"],
            "mem0_style": ["extractor.max_new_tokens=8", "manager.max_new_tokens=16"]}
    args = ["eval", "--env", "MemoryBank-Synthetic-v0", "--env-kwargs", "num_conversations=1",
            "num_sessions=2", "events_per_session=1", "chat_per_session=0", "questions=2",
            "--agent", str(AGENTS / f"{stem}.yaml"), "--agent-overrides",
            "answerer.max_new_tokens=8", *caps.get(stem, []), "--backend", "transformers",
            "--model", "embedded", "--threads", "1", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["episodes"] == 1
    assert summary["metrics"]["dialogue"]["questions"] == 2
    row = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    components = {t["component"] for t in row["turns"]}
    assert "answerer" in components and row["failed_calls"] == 0
    if stem in ("memory_r1", "mem0_style"):
        assert "extractor" in components


_REPO = Path(__file__).parents[2]
LOCOMO = next((p for p in (_REPO / ".." / "shared" / "data" / "locomo10.json",  # main checkout
                           _REPO / ".." / ".." / "shared" / "data" / "locomo10.json")  # worktree
               if p.exists()), _REPO / ".." / "shared" / "data" / "locomo10.json")


def first_memory_line(request):
    """A scripted reader for memgym eval: the first retrieved memory's text, after its date."""
    prompt = prompt_of(request)
    for line in prompt.splitlines():
        dated = re.match(r"- .*?\d{4}: (.*)$", line)  # "- 1:00 pm on 8 May, 2023: text"
        if dated:
            return dated.group(1)
    return "unknown"


@pytest.mark.slow  # 419 turns streamed into the bank: about 10-20 s
@pytest.mark.skipif(not LOCOMO.exists(), reason="shared real data not present")
def test_rag_turns_runs_memgym_eval_on_locomo_with_per_category_scores(tmp_path):
    from memgym.cli import main

    out = tmp_path / "locomo"
    args = ["eval", "--env", "MemoryR1-LoCoMo-v0", "--env-kwargs", f"data_path={LOCOMO}",
            "split=train", "questions=6", "--agent", str(AGENTS / "rag_turns.yaml"),
            "--backend", "scripted", "--model", f"{__name__}:first_memory_line",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    dialogue = summary["metrics"]["dialogue"]
    assert dialogue["questions"] == 6 and dialogue["bank_size"]["mean"] == 419
    assert dialogue["recall_at_k"]["k"] == 60
    assert set(dialogue["by_category"]) <= {"multi-hop", "temporal", "open-domain", "single-hop"}
    assert all(0.0 <= block["f1"] <= 1.0 for block in dialogue["by_category"].values())
