"""The synthetic multi-session dialogue generator (memgym.data.synthetic_dialogue): determinism,
structure (speakers, dated sessions, dia_ids, the oracle-op format of DIALOGUE_API.md), and, with
hypothesis over seeds and knobs, that replaying the oracle ops up to a question's answer_after
determines its gold answer, that retracted facts make questions unanswerable, and that UPDATE
and DELETE both occur; plus bad knobs."""

from __future__ import annotations

import pickle
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memgym.data
from memgym.data.synthetic_dialogue import (
    SYNTHETIC_ATTRIBUTES,
    SYNTHETIC_CATEGORIES,
    UNKNOWN_ANSWER,
    generate_dialogues,
    replay_oracle_ops,
)
from memgym.errors import ConfigError, UnknownNameError

DIA_ID = re.compile(r"D(\d+):(\d+)")
DATE_TIME = re.compile(r"\d{1,2}:\d\d [ap]m on (\d{1,2} \w+), (\d{4})")

knobs = st.fixed_dictionaries({
    "num_sessions": st.integers(2, 6),
    "num_speakers": st.integers(2, 4),
    "events_per_session": st.integers(1, 5),
    "chat_per_session": st.integers(0, 2),
    "questions_per_category": st.integers(1, 4),
    "attributes": st.sampled_from([None, ["city"], ["job", "pet"], ["hobby", "city", "pet"]]),
})


def day_of(date_time: str) -> str:
    """The answer form of a session date-time: '1:56 pm on 8 May, 2023' -> '8 May 2023'."""
    match = DATE_TIME.fullmatch(date_time)
    assert match, date_time
    return f"{match[1]} {match[2]}"


def fact_text(conversation, key: str, value: str) -> str:
    person = next(p for p in conversation.speakers if p.lower() == key.split(".")[0])
    return SYNTHETIC_ATTRIBUTES[key.split(".")[1]].fact.format(p=person, v=value)


def session_date_of(conversation, dia_id: str) -> str:
    return conversation.sessions[int(DIA_ID.fullmatch(dia_id)[1]) - 1].date_time


def check_answer_from_replay(conversation, q) -> None:
    """The gold answer follows from the oracle ops replayed up to answer_after (and, for the
    latest-state kinds, nothing after it changes the facts)."""
    meta, keys = q.metadata, q.metadata["fact_keys"]
    final = replay_oracle_ops(conversation)
    if meta["kind"] == "never":
        ops = [op for t in conversation.turns() for op in t.metadata["oracle_ops"]]
        assert q.answer_after is None and all(op["id"] not in keys for op in ops)
        return
    state = replay_oracle_ops(conversation, until=q.answer_after)
    if meta["kind"] == "retracted":
        assert keys[0] not in state and keys[0] not in final
    elif meta["kind"] == "current":
        assert state[keys[0]][0] == fact_text(conversation, keys[0], q.answers[0])
        assert final[keys[0]] == state[keys[0]]
    elif meta["kind"] == "multi":
        via, target = keys
        assert meta["via"] == via and via.split(".")[0] == target.split(".")[0]
        assert state[target][0] == fact_text(conversation, target, q.answers[0])
        assert final[target] == state[target] and final[via] == state[via]
        # the identifying fact picks one person: no one else ever held that value
        value = next(v for v in SYNTHETIC_ATTRIBUTES[via.split(".")[1]].values
                     if state[via][0] == fact_text(conversation, via, v))
        assert value in q.question
        holders = {op["id"] for t in conversation.turns() for op in t.metadata["oracle_ops"]
                   if op["id"].split(".")[1] == via.split(".")[1]
                   and op["text"] == fact_text(conversation, op["id"], value)}
        assert holders == {via}
    elif meta["kind"] == "when":
        text, date_time = state[keys[0]]
        assert text == fact_text(conversation, keys[0], meta["value"])
        assert q.answers == (day_of(date_time),)
        assert date_time == session_date_of(conversation, q.answer_after)
    elif meta["kind"] == "before":
        text, _ = state[keys[0]]
        assert text == fact_text(conversation, keys[0], q.answers[0])
        # the next change of the key is an UPDATE in the session dated before_date
        turns = list(conversation.turns())
        start = next(i for i, t in enumerate(turns) if t.dia_id == q.answer_after) + 1
        nxt = next((t, op) for t in turns[start:] for op in t.metadata["oracle_ops"]
                   if op["id"] == keys[0] and op["event"] != "NOOP")
        assert nxt[1]["event"] == "UPDATE"
        assert day_of(session_date_of(conversation, nxt[0].dia_id)) == meta["before_date"]
    else:
        raise AssertionError(f"unknown kind {meta['kind']!r}")


def test_generate_dialogues_is_exported_from_memgym_data():
    assert memgym.data.generate_dialogues is generate_dialogues


def test_same_seed_same_dialogues_and_conversations_independent_of_count():
    a, b = generate_dialogues(4, seed=7), generate_dialogues(4, seed=7)
    assert a == b
    assert generate_dialogues(2, seed=7) == a[:2]
    assert generate_dialogues(4, seed=8) != a
    assert pickle.loads(pickle.dumps(a)) == a


def test_structure_speakers_dates_dia_ids_and_op_format():
    for conv in generate_dialogues(5, seed=1):
        assert len(conv.speakers) == 2 and conv.source == "synthetic"
        assert len(conv.sessions) == 4
        dates = [s.date_time for s in conv.sessions]
        assert all(DATE_TIME.fullmatch(d) for d in dates) and len(set(dates)) == 4
        for s in conv.sessions:
            assert s.session_id == f"session_{s.index}"
            for t, turn in enumerate(s.turns, 1):
                assert turn.dia_id == f"D{s.index}:{t}" and turn.session == s.index
                assert turn.speaker in conv.speakers and turn.text.strip()
                for op in turn.metadata["oracle_ops"]:
                    assert set(op) == {"event", "id", "text"}
                    assert op["event"] in ("ADD", "UPDATE", "DELETE", "NOOP")
                    assert op["id"].split(".")[0] == turn.speaker.lower()  # facts about oneself
                    assert op["id"].split(".")[1] in SYNTHETIC_ATTRIBUTES
        ids = [q.question_id for q in conv.questions]
        assert len(set(ids)) == len(ids)
        texts = [q.question for q in conv.questions]  # the oracle agent finds questions by text
        assert len(set(texts)) == len(texts)
        assert {q.category for q in conv.questions} <= set(SYNTHETIC_CATEGORIES)


def test_defaults_cover_every_category_and_every_operation():
    conversations = generate_dialogues(100, seed=3)
    categories = Counter(q.category for c in conversations for q in c.questions)
    assert set(categories) == set(SYNTHETIC_CATEGORIES)
    events = Counter(op["event"] for c in conversations for t in c.turns()
                     for op in t.metadata["oracle_ops"])
    assert set(events) == {"ADD", "UPDATE", "DELETE", "NOOP"}
    kinds = Counter(q.metadata["kind"] for c in conversations for q in c.questions)
    assert set(kinds) == {"current", "multi", "when", "before", "retracted", "never"}
    for conv in conversations:  # forced: an update, and a retraction that stays to the end
        ops = {op["event"] for t in conv.turns() for op in t.metadata["oracle_ops"]}
        assert {"UPDATE", "DELETE"} <= ops
        assert {"single-hop", "temporal", "unanswerable"} <= {q.category for q in conv.questions}


def test_a_contradiction_is_an_update_of_the_same_key():
    corrections = [(t, op) for c in generate_dialogues(20, seed=5) for t in c.turns()
                   if t.metadata["event"] == "correct" for op in t.metadata["oracle_ops"]]
    assert corrections
    assert all(op["event"] == "UPDATE" for _, op in corrections)
    assert any("misspoke" in t.text or "orrection" in t.text or "meant" in t.text
               or "mixed" in t.text or "Oops" in t.text or "said" in t.text
               for t, _ in corrections)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), config=knobs)
def test_every_answer_is_determined_by_the_oracle_ops_up_to_answer_after(seed, config):
    for conv in generate_dialogues(2, seed, **config):
        for q in conv.questions:
            check_answer_from_replay(conv, q)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), config=knobs)
def test_retracted_facts_make_questions_unanswerable(seed, config):
    for conv in generate_dialogues(2, seed, **config):
        final = replay_oracle_ops(conv)
        deleted = {op["id"] for t in conv.turns() for op in t.metadata["oracle_ops"]
                   if op["event"] == "DELETE"} - set(final)
        for q in conv.questions:
            latest_state = q.metadata["kind"] in ("current", "multi", "retracted", "never")
            if latest_state and set(q.metadata["fact_keys"]) & deleted:
                assert q.abstention and q.answers == (UNKNOWN_ANSWER,)
                assert q.category == "unanswerable"
            if q.abstention:
                assert not set(q.metadata["fact_keys"]) & set(final)
                assert q.answers == (UNKNOWN_ANSWER,)
            else:
                assert q.answers[0] != UNKNOWN_ANSWER


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), config=knobs)
def test_answer_after_is_the_last_change_of_a_fact_the_question_uses(seed, config):
    for conv in generate_dialogues(1, seed, **config):
        changes = {}  # key -> dia_ids of the turns that changed it, in order
        for t in conv.turns():
            for op in t.metadata["oracle_ops"]:
                if op["event"] != "NOOP":
                    changes.setdefault(op["id"], []).append(t.dia_id)
        order = {t.dia_id: i for i, t in enumerate(conv.turns())}
        for q in conv.questions:
            if q.metadata["kind"] in ("current", "multi", "retracted"):
                last = max((changes[k][-1] for k in q.metadata["fact_keys"]), key=order.get)
                assert q.answer_after == last
            if q.answer_after is not None:
                assert q.answer_after in q.evidence
                assert q.evidence_sessions == tuple(dict.fromkeys(
                    f"session_{DIA_ID.fullmatch(e)[1]}" for e in q.evidence))


@pytest.mark.parametrize("kwargs, match", [
    ({"num_conversations": -1}, "num_conversations=-1"),
    ({"num_sessions": 1}, "num_sessions=1 must be an integer >= 2"),
    ({"num_speakers": 9}, "num_speakers=9 must be an integer between 2 and 8"),
    ({"events_per_session": 0}, "events_per_session=0"),
    ({"seed": "x"}, "seed='x'"),
    ({"questions_per_category": True}, "questions_per_category=True"),
    ({"attributes": []}, "at least one"),
])
def test_bad_knobs_are_config_errors(kwargs, match):
    args = {"num_conversations": 1, "seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=match):
        generate_dialogues(**args)


def test_unknown_attribute_suggests_the_nearest():
    with pytest.raises(UnknownNameError, match="Did you mean 'city'"):
        generate_dialogues(1, 0, attributes=["citty"])
