"""DialogueMemoryEnv: write steps through the bank, question steps, rewards (LoCoMo metrics,
validity, citations, bank size, frozen reader by hand, judge), the episode summary, question
subsets, determinism, no bank leak across episodes, RMM's session stream, and fuzzed actions."""

import json
import pickle

import pytest
from dialogue_helpers import tiny_conversation
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memgym.envs.dialogue import DialogueMemoryEnv, parse_citations
from memgym.errors import ConfigError
from memgym.rewards.rubric import EPISODE_RESULT_KEY
from memgym.testing import check_memgym_env


def ops(*items):
    return json.dumps({"memory": [dict(zip(("event", "id", "text"), item)) for item in items]})


def add(text):
    return ops(("ADD", None, text))


def make(**kwargs):
    return DialogueMemoryEnv([tiny_conversation(), tiny_conversation("tiny2")], **kwargs)


def play_writes(env, actions, task_id=0, seed=0):
    """Reset, then step each action; returns the infos."""
    env.reset(seed=seed, options={"task_id": task_id})
    return [env.step(a)[-1] for a in actions]


def test_write_step_shows_the_turn_with_speaker_and_date_then_the_memories_retrieved():
    env = make()
    obs, info = env.reset(seed=0, options={"task_id": 0})
    assert obs["phase"] == "write" and obs["action_format"] == "memory_r1"
    assert obs["dialogue"] == "Session 1 (1:00 pm on 8 May, 2023)\n[D1:1] Ana: I just moved to Lisbon."
    assert obs["date"] == "1:00 pm on 8 May, 2023" and obs["memories"] == "(no memories)"
    assert info["num_write_steps"] == 4 and info["num_questions"] == 3
    obs, reward, terminated, _, info = env.step(add("Ana moved to Lisbon"))
    assert info["operations"] == [{"event": "ADD", "id": None, "applied": True, "reason": "",
                                   "entry_id": "0"}]
    assert info["reward_components"]["op_validity"] == 1.0 and not terminated
    assert obs["dialogue"].endswith("[D1:2] Ben: I adopted a cat called Miso.")
    # the new entry carries the turn's speaker, session, date and dia_id, shown with its id
    assert obs["memories"] == "[0] (Ana; session 1; 1:00 pm on 8 May, 2023) Ana moved to Lisbon"
    entry = env.unwrapped.bank.get("0")
    assert (entry.speaker, entry.session, entry.source_ids) == ("Ana", 1, ("D1:1",))


def test_update_keeps_the_id_and_shows_when_it_changed():
    env = make()
    play_writes(env, [add("Ana moved to Lisbon"), "[]", ops(("UPDATE", "0", "Ana lives in Lisbon"))])
    entry = env.bank.get("0")
    assert entry.text == "Ana lives in Lisbon" and entry.history == ("Ana moved to Lisbon",)
    obs = env._observe()
    assert obs["memories"] == ("[0] (Ana; session 1; 1:00 pm on 8 May, 2023; updated 2:00 pm on "
                               "9 June, 2023) Ana lives in Lisbon\n    (before: Ana moved to Lisbon)")


def test_each_operation_is_validated_on_its_own_and_the_reasons_are_in_info():
    env = make(max_entry_chars=50)
    info = play_writes(env, [
        ops(("ADD", None, "Ana moved to Lisbon"), ("ADD", None, "Ana moved to Lisbon"),
            ("UPDATE", "7", "x"), ("ADD", None, "y" * 51), ("DELETE", "0", None)),
    ])[0]
    assert [r["applied"] for r in info["operations"]] == [True, False, False, False, True]
    assert info["reward_components"]["op_validity"] == 0.4
    reasons = " | ".join(info["op_errors"])
    assert "duplicate ADD" in reasons and "unknown id '7'" in reasons
    assert "over max_entry_chars=50" in reasons
    assert len(env.bank) == 0


@pytest.mark.parametrize("action", ["", "not json at all", "{\"memory\": [", "NOOP"])
def test_an_unreadable_action_scores_validity_zero_with_the_reason(action):
    info = play_writes(make(), [action])[0]
    assert info["reward_components"]["op_validity"] == 0.0
    assert info["op_errors"] and "malformed" in info["op_errors"][0]


def test_an_empty_operation_list_is_valid():
    info = play_writes(make(), ['{"memory": []}'])[0]
    assert info["reward_components"]["op_validity"] == 1.0 and info["op_errors"] == []


def test_answer_steps_score_locomo_f1_em_bleu1_and_citations():
    env = make(reward_weights={"citation": 0.5})
    play_writes(env, [add("Ana moved to Lisbon"), "[]", "[]", "[]"])
    obs = env._observe()
    assert obs["phase"] == "answer" and obs["question"] == "Where did Ana move?"
    assert obs["action_format"] == "answer" and "[0]" in obs["memories"]
    _, reward, _, _, info = env.step("Lisbon [CITE: 0]")
    c = info["reward_components"]
    assert (c["f1"], c["em"], c["bleu1"], c["citation"]) == (1.0, 1.0, 1.0, 1.0)
    assert reward == pytest.approx(1.5) and info["cited_ids"] == ["0"]
    _, _, _, _, info = env.step("violins [CITE: 0, 9]")
    c = info["reward_components"]
    # gold "the violin": LoCoMo's F1 drops the article and stems; its EM does not stem
    assert (c["f1"], c["em"], c["citation"]) == (1.0, 0.0, 0.5)
    _, _, _, _, info = env.step("on the violin case")
    assert info["reward_components"]["citation"] == 0.0  # no tag


def test_citation_tag_parsing():
    assert parse_citations("Lisbon [CITE: 3, 7]") == ("Lisbon", ("3", "7"))
    assert parse_citations("Lisbon [NO_CITE]") == ("Lisbon", ())
    assert parse_citations("Lisbon") == ("Lisbon", None)
    assert parse_citations("[cite: 1 2] Lisbon [CITE:4]") == ("[cite: 1 2] Lisbon", ("4",))
    assert parse_citations("x" * 10_000 + " [CITE: 1]")[1] == ("1",)


def test_last_step_info_holds_the_episode_summary():
    env = make()
    play_writes(env, [add("Ana moved to Lisbon"), "junk", "[]", "[]"])
    env.step("Lisbon [CITE: 0]")
    env.step("unknown")
    _, reward, terminated, truncated, info = env.step("on the violin case [NO_CITE]")
    assert terminated and not truncated
    episode = info[EPISODE_RESULT_KEY]
    assert [q["question_id"] for q in episode["questions"]] == ["tiny:q0", "tiny:q1", "tiny:q2"]
    assert [q["f1"] for q in episode["questions"]] == [1.0, 0.0, 1.0]
    assert episode["reward"] == pytest.approx(2 / 3)
    assert episode["reward_components"]["f1"] == pytest.approx(2 / 3)
    assert episode["reward_components"]["op_validity"] == pytest.approx(3 / 4)
    assert episode["reward_components"]["citation"] == pytest.approx(2 / 3)
    assert episode["bank_size"] == 1 and episode["op_counts"]["ADD/applied"] == 1
    assert episode["op_counts"]["MALFORMED/refused"] == 1
    # recall: q0's evidence session (1) and turn (D1:1) are among the shown memory's
    first = episode["questions"][0]
    assert first["recall_session"] == 1.0 and first["recall_turn"] == 1.0
    assert episode["questions"][2]["recall_turn"] == 0.0


def test_bank_size_component_is_room_left():
    env = make(max_entries=4)
    info = play_writes(env, [ops(("ADD", None, "a"), ("ADD", None, "b"))])[0]
    assert info["reward_components"]["bank_size"] == 0.5
    env = make()  # capacity: the conversation's 4 turns
    info = play_writes(env, [add("a")])[0]
    assert info["reward_components"]["bank_size"] == 0.75


def keyword_reader(question, memories):
    """A frozen reader written by hand: answers only when a memory holds the needle."""
    needle, answer = {"Where did Ana move?": ("Lisbon", "Lisbon"),
                      "What is Ana learning?": ("learning the violin", "the violin"),
                      "Where does Ben's cat sleep?": ("violin case", "on the violin case")}[question]
    return answer if any(needle in m.text for m in memories) else "unknown"


def test_frozen_reader_rewards_each_write_by_its_linked_questions():
    env = make(reader=keyword_reader)
    actions = [add("Ana moved to Lisbon"), "junk", "[]", add("Miso sleeps on the violin case")]
    env.reset(seed=0, options={"task_id": 0})
    rewards, infos = [], []
    for a in actions:
        _, r, _, _, info = env.step(a)
        rewards.append(r)
        infos.append(info)
    # D1:1 links q0 (answered: 1); D1:2 links none (0); D2:1 links q1 (no memory: 0); D2:2 q2 (1)
    assert rewards == [1.0, 0.0, 0.0, 1.0]
    assert [len(i["reader_answers"]) for i in infos] == [1, 0, 1, 1]
    assert infos[2]["reader_answers"] == [{"question_id": "tiny:q1", "answer": "unknown",
                                           "score": 0.0}]
    # write steps score no answer component: f1 is absent there, not a 0 that reads as failure
    assert all("f1" not in i["reward_components"] for i in infos)


def test_frozen_reader_seen_scope_scores_every_question_answerable_so_far():
    env = make(reader=keyword_reader, reader_scope="seen")
    actions = [add("Ana moved to Lisbon"), "junk", "[]", add("Miso sleeps on the violin case")]
    env.reset(seed=0, options={"task_id": 0})
    rewards = [env.step(a)[1] for a in actions]
    assert rewards == [1.0, 1.0, 0.5, pytest.approx(2 / 3)]


def test_reader_and_judge_weights_need_their_callables():
    with pytest.raises(ConfigError, match="needs an injected reader"):
        make(reward_weights={"reader": 1.0})
    with pytest.raises(ConfigError, match="needs an injected judge"):
        make(reward_weights={"judge": 1.0})


def test_an_injected_judge_is_a_component():
    calls = []

    def judge(question, prediction, golds):
        calls.append((question, prediction, tuple(golds)))
        return 2.0  # clipped to [0, 1]

    env = make(judge=judge, reward_weights={"judge": 1.0, "f1": 0.0})
    play_writes(env, ["[]"] * 4)
    _, reward, _, _, info = env.step("Lisbon [NO_CITE]")
    assert reward == 1.0 and info["reward_components"]["judge"] == 1.0
    assert calls == [("Where did Ana move?", "Lisbon", ("Lisbon",))]


def test_memory_r1_retrieves_30_per_speaker_60_in_all():
    env = make()
    env.reset(seed=0, options={"task_id": 0})
    env.step(ops(*[("ADD", None, f"Ana fact {i}") for i in range(40)]))
    env.step(ops(*[("ADD", None, f"Ben fact {i}") for i in range(40)]))
    env.step("[]")
    obs, *_ = env.step("[]")
    lines = obs["memories"].splitlines()
    assert len(lines) == 60
    assert sum("(Ana;" in line for line in lines) == 30 == sum("(Ben;" in line for line in lines)
    assert env.observation_space.contains(obs)


def test_the_bank_never_leaks_into_the_next_episode():
    env = make()
    play_writes(env, [add("Ana moved to Lisbon")])
    assert len(env.bank) == 1
    obs, _ = env.reset(seed=0, options={"task_id": 0})
    assert len(env.bank) == 0 and obs["memories"] == "(no memories)"
    env.step(add("something else"))
    assert env.bank.get("0").text == "something else"  # ids restart too: a fresh bank


def test_reset_is_deterministic_and_asks_a_question_subset():
    env = make(questions=2)
    _, a = env.reset(seed=5, options={"task_id": 1})
    _, b = env.reset(seed=5, options={"task_id": 1})
    assert a == b and len(a["question_ids"]) == 2
    assert a["question_ids"] == sorted(a["question_ids"])  # kept in conversation order
    _, info = env.reset(seed=0, options={"task_id": 0, "questions": ["tiny:q2", 0]})
    assert info["question_ids"] == ["tiny:q2", "tiny:q0"]
    with pytest.raises(ConfigError, match="no question 'nope'"):
        env.reset(seed=0, options={"task_id": 0, "questions": ["nope"]})
    with pytest.raises(ConfigError, match="out of range"):
        env.reset(seed=0, options={"task_id": 2})


def test_rmm_streams_sessions_and_merges_by_shown_position():
    env = make(protocol="rmm")
    obs, info = env.reset(seed=0, options={"task_id": 0})
    assert info["stream"] == "session" and info["num_write_steps"] == 2
    assert obs["action_format"] == "rmm" and "[D1:1]" in obs["dialogue"] and "[D1:2]" in obs["dialogue"]
    obs, _, _, _, info = env.step("Add(Ana moved to Lisbon)\nAdd(Ben has a cat named Miso)")
    assert [r["applied"] for r in info["operations"]] == [True, True]
    assert env.bank.get("0").speaker is None and env.bank.get("0").session == 1
    assert obs["memories"].startswith("#0 [")
    shown_first = obs["memories"].splitlines()[0].split("]")[0].split("[")[1]
    _, _, _, _, info = env.step("Merge(0, Ben's cat Miso sleeps on his violin case)")
    assert info["operations"][0]["entry_id"] == shown_first and info["operations"][0]["applied"]
    obs = env._observe()
    lines = obs["memories"].splitlines()
    assert obs["phase"] == "answer" and sum(line.startswith("[") for line in lines) == 2
    assert "    (before: " in obs["memories"]  # the merged entry shows what it replaced


def test_rmm_no_trait_stores_nothing_and_is_a_valid_decision():
    env = make(protocol="rmm")
    env.reset(seed=0, options={"task_id": 0})
    _, _, _, _, info = env.step("NO_TRAIT")
    assert info["reward_components"]["op_validity"] == 1.0 and len(env.bank) == 0
    assert info["operations"] == [] and info["memory_trace"] == "(no change)"


def test_env_passes_the_memgym_checker_and_pickles_mid_episode():
    env = make()
    check_memgym_env(env)
    env.reset(seed=0, options={"task_id": 0})
    env.step(add("Ana moved to Lisbon"))
    clone = pickle.loads(pickle.dumps(env))
    assert clone.bank.get("0").text == "Ana moved to Lisbon"
    assert repr(clone.step("[]")) == repr(env.step("[]"))


def test_bad_arguments_name_the_problem():
    with pytest.raises(Exception, match="protocol"):
        make(protocol="mem0")
    with pytest.raises(ConfigError, match="stream"):
        make(stream="chunk")
    with pytest.raises(ConfigError, match="top_k"):
        make(top_k=0)
    with pytest.raises(ConfigError, match="holds none"):
        DialogueMemoryEnv([])
    with pytest.raises(ConfigError, match="must be a str"):
        env = make()
        env.reset(seed=0)
        env.step(None)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "text", "event", "memory", "old_memory", "x"]), inner, max_size=4),
    max_leaves=12)
_ACTIONS = (st.text(max_size=200)
            | _JSONISH.map(json.dumps)
            | st.lists(st.tuples(st.sampled_from(["ADD", "UPDATE", "DELETE", "NONE", "MERGE", "??"]),
                                 st.sampled_from([None, "0", "1", "99", "-1", ""]),
                                 st.text(max_size=30)), max_size=5).map(lambda x: ops(*x)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=_ACTIONS, second=_ACTIONS, answer=st.text(max_size=200))
@example(first="x" * 1_000_000, second=add("z" * 1_000_000), answer="word " * 200_000)
@example(first=add("Ana"), second=add("Ana"), answer="[CITE: \ud7ff, 🙂] [NO_CITE")
@example(first='{"memory": [{"id": "0", "event": "UPDATE", "text": "x"}]}',
         second="```json\n[{\"event\": \"ADD\", \"text\": \"\u200b\x00\"}]\n```",
         answer="\x00\u202e")
def test_any_action_is_scored_never_raised(first, second, answer):
    env = DialogueMemoryEnv([tiny_conversation()], max_entry_chars=64)
    env.reset(seed=0, options={"task_id": 0})
    for action in (first, second, "[]", first, answer, second, answer):
        obs, reward, terminated, _, info = env.step(action)
        components = info["reward_components"]
        assert all(0.0 <= v <= 1.0 for v in components.values())
        assert env.observation_space.contains(obs)
        if info["phase"] == "write" and components["op_validity"] < 1.0:
            assert info["op_errors"]  # every refusal says why
        if terminated:
            break


def test_each_step_reports_only_the_components_it_scores():
    """A write step scores op_validity and bank_size, an answer step the answer's: an f1 of 0
    at a write step read as a failed answer (issue 21 item 6)."""
    env = DialogueMemoryEnv([tiny_conversation()])
    obs, _ = env.reset(seed=0, options={"task_id": 0})
    while obs["phase"] == "write":
        obs, reward, _, _, info = env.step("[]")
        assert set(info["reward_components"]) == {"op_validity", "bank_size"} and reward == 0.0
    obs, reward, _, _, info = env.step("Lisbon")
    assert set(info["reward_components"]) == {"f1", "em", "bleu1", "citation"} and reward == 1.0


def test_session_stream_refuses_a_per_speaker_retrieval_it_could_never_fill():
    """Session entries have no speaker: per_speaker_k > 0 showed "(no memories)" at every
    question."""
    with pytest.raises(ConfigError, match="per_speaker_k=5 needs stream='turn'"):
        DialogueMemoryEnv([tiny_conversation()], stream="session", per_speaker_k=5)
    env = DialogueMemoryEnv([tiny_conversation()], protocol="memory_r1", stream="session")
    assert env.per_speaker_k == 0  # the protocol's default (30) is dropped, not refused


def test_envs_of_a_process_share_one_dense_retriever_per_encoder(monkeypatch):
    """32 pooled envs loaded 32 encoders with 32 embedding caches."""
    import numpy as np

    from memgym.memory import retrieval

    loads = []

    class Encoder:
        def encode(self, texts):
            return np.ones((len(texts), 3), dtype=np.float32)

    def load(name, **kwargs):
        loads.append(name)
        return Encoder()

    monkeypatch.setattr(retrieval, "load_sentence_encoder", load)
    envs = [DialogueMemoryEnv([tiny_conversation()], retrieval="dense",
                              encoder="test-shared-encoder") for _ in range(3)]
    other = DialogueMemoryEnv([tiny_conversation()], retrieval="dense",
                              encoder="test-other-encoder")
    assert envs[0].retriever is envs[1].retriever is envs[2].retriever
    assert other.retriever is not envs[0].retriever
    assert loads == ["test-shared-encoder", "test-other-encoder"]
    bm25 = [DialogueMemoryEnv([tiny_conversation()]) for _ in range(2)]
    assert bm25[0].retriever is not bm25[1].retriever  # no model to share; its index is per bank
