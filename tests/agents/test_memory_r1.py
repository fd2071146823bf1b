"""Memory-R1: the extractor's facts reach the manager, the manager's JSON reaches the bank as
written (ADD, UPDATE, DELETE), the answer after **Answer:** is the action, the Turns carry the
component names and trainable flags, per-component backends, and parsing of every output format."""

import json
import sys
from pathlib import Path

import gymnasium as gym
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "envs"))
from dialogue_helpers import tiny_conversation

import memgym  # noqa: F401
from memgym.agents.episode import run_episode, run_sync
from memgym.agents.memory_r1 import (
    EMPTY_WRITE,
    MemoryR1Agent,
    dialogue_lines,
    extract_answer,
    parse_facts,
)
from memgym.agents.recipe import load_agent
from memgym.envs.dialogue import DialogueMemoryEnv
from memgym.errors import ConfigError
from memgym.llm.base import Completion
from memgym.llm.scripted import ScriptedBackend
from memgym.rewards.rubric import EPISODE_RESULT_KEY

RECIPE = Path(__file__).parents[2] / "agents" / "memory_r1.yaml"


def play(env, agent, task_id=0):
    return run_sync(run_episode(env, agent, seed=0, task_id=task_id))


def prompt_of(request):
    return request.messages[-1]["content"]


def teacher(request):
    """A scripted Memory-R1: facts = the message; ADD, except Ben's cat fact UPDATEs the Miso
    memory and Ana's violin fact DELETEs the Lisbon one; answers read the memories shown."""
    prompt = prompt_of(request)
    if "Personal Information Organizer" in prompt:
        message = prompt.rsplit("Message: ", 1)[1].rsplit("\nOutput:", 1)[0]
        return f'```json\n{{"facts": [{json.dumps(message)}]}}\n```'
    if "smart memory manager" in prompt:
        old = json.loads(prompt.split("```\n", 2)[1].split("\n```", 1)[0])
        facts = json.loads(prompt.rsplit("```", 2)[-2])
        ops = []
        for fact in facts:
            miso = [m for m in old if "Miso" in m["text"]]
            lisbon = [m for m in old if "Lisbon" in m["text"]]
            if "Miso now" in fact and miso:
                ops.append({"id": miso[0]["id"], "text": fact, "event": "UPDATE",
                            "old_memory": miso[0]["text"]})
            elif "violin." in fact and lisbon:
                ops.append({"id": lisbon[0]["id"], "text": lisbon[0]["text"], "event": "DELETE"})
                ops.append({"id": "new", "text": fact, "event": "ADD"})
            else:
                ops.append({"id": "new", "text": fact, "event": "ADD"})
        return "Here are the operations:\n" + json.dumps({"memory": ops})
    if "**Answer:**" in prompt:
        question = prompt.rsplit("Question: ", 1)[1]
        answer = "the violin" if "learning" in question else "on the violin case"
        return f"Selected memories:\n- Ana: I started learning the violin.\n\n**Answer:** {answer}"
    raise AssertionError(f"unexpected prompt {prompt[:80]!r}")


def tiny_env(**kwargs):
    return DialogueMemoryEnv([tiny_conversation()], **kwargs)


def test_the_managers_json_reaches_the_bank_as_written():
    env = tiny_env()
    episode = play(env, load_agent(RECIPE, ScriptedBackend(teacher)))
    bank = env.bank
    texts = sorted(e.text for e in bank)
    # D1:1 ADD, D1:2 ADD, D2:1 DELETE Lisbon + ADD, D2:2 UPDATE Miso
    assert texts == ["Ana: I started learning the violin.", "Ben: Miso now sleeps on my violin case."]
    updated = next(e for e in bank if "Miso" in e.text)
    assert updated.history == ("Ben: I adopted a cat called Miso.",)
    counts = episode.info[EPISODE_RESULT_KEY]["op_counts"]
    assert (counts["ADD/applied"], counts["UPDATE/applied"], counts["DELETE/applied"]) == (3, 1, 1)
    assert episode.info[EPISODE_RESULT_KEY]["reward_components"]["op_validity"] == 1.0
    # the write action is the manager's completion itself (what the trainer trains on)
    managers = [t for t in episode.turns if t.component == "manager"]
    assert [t.completion for t in managers] == episode.actions[:4]


def test_only_the_text_after_the_answer_marker_is_the_action():
    env = tiny_env()
    episode = play(env, load_agent(RECIPE, ScriptedBackend(teacher)))
    answers = episode.actions[4:]
    assert answers == ["on the violin case", "the violin", "on the violin case"]
    questions = episode.info[EPISODE_RESULT_KEY]["questions"]
    assert [q["f1"] for q in questions][1:] == [1.0, 1.0]
    answerer = [t for t in episode.turns if t.component == "answerer"]
    assert all("Selected memories" in t.completion for t in answerer)


def test_turns_carry_component_names_and_trainable_flags():
    episode = play(tiny_env(), load_agent(RECIPE, ScriptedBackend(teacher)))
    flags = {(t.component, t.trainable) for t in episode.turns}
    assert flags == {("extractor", False), ("manager", True), ("answerer", True)}
    per_step = [t.component for t in episode.turns if t.step == 0]
    assert per_step == ["extractor", "manager"]


def test_the_answerer_sees_memories_per_speaker_with_timestamps():
    backend = ScriptedBackend(teacher)
    play(tiny_env(), load_agent(RECIPE, backend))
    prompt = prompt_of([r for r in backend.requests if "**Answer:**" in prompt_of(r)][-1])
    assert "Memories for user Ana:\n- 2:00 pm on 9 June, 2023: Ana: I started learning the violin." \
        in prompt
    assert "Memories for user Ben:" in prompt


def test_a_turn_without_facts_stores_nothing_and_skips_the_manager():
    def model(request):
        prompt = prompt_of(request)
        if "Personal Information Organizer" in prompt:
            return '{"facts": []}'
        return "**Answer:** unknown"

    episode = play(tiny_env(), load_agent(RECIPE, ScriptedBackend(model)))
    assert episode.actions[:4] == [EMPTY_WRITE] * 4
    assert {t.component for t in episode.turns} == {"extractor", "answerer"}
    assert episode.info[EPISODE_RESULT_KEY]["bank_size"] == 0


def test_fact_fallback_turn_stores_the_turn_when_extraction_is_not_json():
    def model(request):
        prompt = prompt_of(request)
        if "Personal Information Organizer" in prompt:
            return "I cannot do JSON"
        if "smart memory manager" in prompt:
            facts = json.loads(prompt.rsplit("```", 2)[-2])
            return json.dumps({"memory": [{"text": f, "event": "ADD"} for f in facts]})
        return "**Answer:** x"

    none = play(tiny_env(), load_agent(RECIPE, ScriptedBackend(model)))
    assert none.info[EPISODE_RESULT_KEY]["bank_size"] == 0
    fallback = play(tiny_env(), load_agent(RECIPE, ScriptedBackend(model),
                                           ["fact_fallback=turn"]))
    assert fallback.info[EPISODE_RESULT_KEY]["bank_size"] == 4


def test_a_failed_manager_call_stores_nothing_and_is_not_trainable():
    def model(request):
        prompt = prompt_of(request)
        if "Personal Information Organizer" in prompt:
            return '{"facts": ["Ana moved"]}'
        if "smart memory manager" in prompt:
            return Completion("", finish_reason="error", error="boom")
        return "**Answer:** x"

    episode = play(tiny_env(), load_agent(RECIPE, ScriptedBackend(model)))
    assert episode.actions[:4] == [EMPTY_WRITE] * 4
    assert all(not t.trainable for t in episode.turns if t.component == "manager")


def extractor_model(request):
    """The extractor's own scripted backend (named by import path in the recipe)."""
    return '{"facts": ["Ana likes tea"]}'


def test_each_component_can_have_its_own_backend():
    main = ScriptedBackend(teacher)
    spec = {"backend": "scripted", "model": f"{__name__}:extractor_model"}
    agent = load_agent(RECIPE, main, {"extractor": {"backend": spec}})
    assert agent.extractor.backend is not main and agent.manager.backend is main
    env = tiny_env()
    play(env, agent)
    assert all("Personal Information Organizer" not in prompt_of(r) for r in main.requests)
    assert {e.text for e in env.bank} == {"Ana likes tea"}


def test_a_component_with_its_own_backend_cannot_be_trainable():
    spec = {"backend": "scripted", "model": f"{__name__}:extractor_model"}
    with pytest.raises(ConfigError, match="manager.trainable=false"):
        load_agent(RECIPE, ScriptedBackend(teacher), {"manager": {"backend": spec}})
    agent = load_agent(RECIPE, ScriptedBackend(teacher),
                       {"manager": {"backend": spec, "trainable": False}})
    assert not agent.manager.trainable


def test_memory_r1_refuses_the_rmm_protocol():
    env = tiny_env(protocol="rmm")
    with pytest.raises(ConfigError, match="protocol='memory_r1'"):
        play(env, load_agent(RECIPE, ScriptedBackend(teacher)))


def test_memory_r1_plays_the_synthetic_task_end_to_end():
    env = gym.make("MemoryBank-Synthetic-v0", num_conversations=1)
    episode = play(env, load_agent(RECIPE, ScriptedBackend(teacher)))
    summary = episode.info[EPISODE_RESULT_KEY]
    writes = summary["num_write_steps"]
    assert sum(t.component == "extractor" for t in episode.turns) == writes
    assert sum(t.component == "answerer" for t in episode.turns) == summary["num_questions"] > 0
    assert summary["op_counts"]["ADD/applied"] > 0 and summary["bank_size"] > 0
    assert summary["op_counts"]["MALFORMED/refused"] == 0


# -- parsing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, facts", [
    ('{"facts": ["Ana moved to Lisbon"]}', ["Ana moved to Lisbon"]),
    ('Sure!\n```json\n{"facts": ["a", "b"]}\n```', ["a", "b"]),
    ('["a", " ", 3]', ["a", "3"]),
    ('{"facts": [{"text": "a"}, {"fact": "b"}, null, true]}', ["a", "b"]),
    ('{"facts": []}', []),
    ('{"other": 1} then {"facts": ["late"]}', ["late"]),
    ("no json here", None),
    ('{"facts": "not a list"', None),
    ("", None),
])
def test_facts_parse_from_every_format(text, facts):
    assert parse_facts(text) == facts


@pytest.mark.parametrize("text, answer", [
    ("Selected:\n- m1\n**Answer:** Lisbon", "Lisbon"),
    ("**Answer**: 7 May 2023\nextra line", "7 May 2023"),
    ("**answer:**\n\n  the violin  ", "the violin"),
    ("**Answer:** first\nthen **Answer:** second", "second"),
    ("memories...\nAnswer: Paris", "Paris"),
    ("just a line\nlast line", "last line"),
    ('**Answer:** "quoted"', "quoted"),
    ("**Answer:**\n1. Kickboxing", "Kickboxing"),
    ("**Answer:** - 2022", "2022"),
    ("**Answer:** 2022. It was May.", "2022. It was May."),
    ("", ""),
])
def test_the_answer_is_read_after_the_marker(text, answer):
    assert extract_answer(text) == answer


def test_plain_answers_take_the_first_line():
    assert extract_answer("Lisbon\nbecause ...", "plain") == "Lisbon"
    assert extract_answer("Answer: Lisbon", "plain") == "Lisbon"
    assert extract_answer("1. Kickboxing\n2. Judo", "plain") == "Kickboxing"


def test_dialogue_lines_drop_the_session_header_and_ids():
    assert dialogue_lines("Session 1 (8 May)\n[D1:1] Ana: hi\n[shares an image: x]") == \
        "Ana: hi\n[shares an image: x]"


def test_bad_agent_settings_are_config_errors():
    agent = load_agent(RECIPE, ScriptedBackend(teacher))
    with pytest.raises(ConfigError, match="answer_format"):
        MemoryR1Agent(agent.extractor, agent.manager, agent.answerer, answer_format="boxed")
    with pytest.raises(ConfigError, match="fact_fallback"):
        load_agent(RECIPE, ScriptedBackend(teacher), ["fact_fallback=maybe"])
    with pytest.raises(ConfigError, match="manager.max_new_tokens"):
        load_agent(RECIPE, ScriptedBackend(teacher), ["manager.max_new_tokens=many"])
