"""The LoCoMo loader (memgym.data.locomo): sessions, turns, image captions, questions, categories,
the evidence rule and answer_after, Memory-R1's split, and errors that name the sample, session
and turn at fault; on a hand-written fixture always, and on the real release when
the real locomo10.json is found (counts 10 / 1,986 / 1,540 / 152-81-1,307): in
$MEMGYM_LOCOMO_DIR, memgym's data cache (`memgym data get locomo`), or the project's data folder
beside the checkout."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import memgym.data
from memgym.data import Conversation, load_locomo, render_turn_text
from memgym.data.locomo import LOCOMO_ABSTAIN_ANSWER, resolve_evidence
from memgym.errors import DataError, MemgymError, UnknownNameError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "locomo_mini.json"
_REPO = Path(__file__).resolve().parents[2]

def _real_locomo() -> Path | None:
    import os

    from memgym.data.download import data_dir

    folders = [os.environ.get("MEMGYM_LOCOMO_DIR", ""), str(data_dir()),
               _REPO / ".." / "shared" / "data", _REPO / ".." / ".." / "shared" / "data"]
    return next((Path(f) / "locomo10.json" for f in folders
                 if f and (Path(f) / "locomo10.json").is_file()), None)


REAL = _real_locomo()
needs_real = pytest.mark.skipif(REAL is None, reason="the real locomo10.json is absent: "
                                "`memgym data get locomo` (or set MEMGYM_LOCOMO_DIR)")


@pytest.fixture(scope="module")
def mini() -> list[Conversation]:
    return load_locomo(FIXTURE, include_adversarial=True)


def by_id(conversations, cid):
    return next(c for c in conversations if c.conversation_id == cid)


def test_load_locomo_is_exported_from_memgym_data():
    assert memgym.data.load_locomo is load_locomo


def test_dates_without_turns_are_skipped_and_sessions_keep_their_dates(mini):
    conv = by_id(mini, "conv-26")  # lists session_3/4 dates with no sessions
    assert [s.index for s in conv.sessions] == [1, 2]
    assert [s.date_time for s in conv.sessions] == ["1:56 pm on 8 May, 2023",
                                                   "7:55 pm on 9 June, 2023"]
    assert [s.session_id for s in conv.sessions] == ["session_1", "session_2"]
    assert conv.speakers == ("Ana", "Ben")
    assert conv.num_turns == 8
    assert [t.dia_id for t in conv.turns()][:5] == ["D1:1", "D1:2", "D1:3", "D1:4", "D2:1"]
    assert all(t.session == 2 for t in conv.sessions[1].turns)


def test_image_turn_keeps_caption_in_metadata_and_renders_it_as_a_line(mini):
    turn = by_id(mini, "conv-26").sessions[0].turns[2]
    assert turn.text == "Small but bright. Look at my balcony!"
    assert turn.metadata["blip_caption"] == "a photo of a balcony with plants"
    assert turn.metadata["img_url"] == ["https://example.org/balcony.jpg"]
    assert render_turn_text(turn) == ("Small but bright. Look at my balcony!\n"
                                      "[shares an image: a photo of a balcony with plants]")
    assert render_turn_text(turn, with_speaker=True).startswith("Ana: Small but bright.")
    plain = by_id(mini, "conv-26").sessions[0].turns[0]
    assert render_turn_text(plain) == plain.text and plain.metadata == {}


def test_int_answers_are_stringified_and_categories_named(mini):
    qs = {q.question_id: q for q in by_id(mini, "conv-26").questions}
    assert qs["conv-26:q1"].answers == ("2021",)
    assert qs["conv-26:q1"].category == "temporal"
    assert qs["conv-26:q0"].category == "single-hop"
    assert qs["conv-26:q2"].category == "multi-hop"
    assert qs["conv-26:q3"].category == "open-domain"
    assert qs["conv-26:q0"].metadata["category_number"] == 4


def test_adversarial_questions_are_excluded_by_default():
    default = load_locomo(FIXTURE)
    assert all(q.category != "adversarial" for c in default for q in c.questions)
    assert sum(len(c.questions) for c in default) == 9
    assert [q.question_id for q in by_id(default, "conv-26").questions] == [
        "conv-26:q0", "conv-26:q1", "conv-26:q2", "conv-26:q3"]  # ids keep release positions


def test_adversarial_question_carries_its_distractor_and_abstains(mini):
    qs = {q.question_id: q for q in by_id(mini, "conv-26").questions}
    adv = qs["conv-26:q4"]
    assert adv.category == "adversarial" and adv.adversarial_answer == "Miso"
    assert adv.abstention and adv.answers == (LOCOMO_ABSTAIN_ANSWER,)
    with_answer = qs["conv-26:q5"]  # the release gives "answer" for two category-5 questions
    assert with_answer.answers == ("No",) and not with_answer.abstention
    assert with_answer.adversarial_answer == "Yes"


def test_malformed_evidence_is_repaired_or_dropped_and_counted(mini):
    conv26 = by_id(mini, "conv-26")
    qs = {q.question_id: q for q in conv26.questions}
    assert qs["conv-26:q2"].evidence == ("D2:1", "D2:3")  # "D2:1; D2:3"
    assert qs["conv-26:q3"].evidence == ("D1:3",)  # "D:1:03"
    assert conv26.metadata["evidence_repaired"] == 2
    assert conv26.metadata["evidence_unresolved"] == 0
    conv30 = by_id(mini, "conv-30")
    bike = conv30.questions[1]
    assert bike.evidence == ("D1:3",)
    assert bike.metadata["unresolved_evidence"] == ("D7:7", "D")
    assert bike.metadata["raw_evidence"] == ("D1:3", "D7:7", "D")
    assert conv30.metadata["evidence_unresolved"] == 2


def test_answer_after_is_the_latest_evidence_turn_in_stream_order(mini):
    qs = {q.question_id: q for q in by_id(mini, "conv-99").questions}
    multi = qs["conv-99:q1"]  # evidence listed late-first: D2:1 then D1:1
    assert multi.evidence == ("D2:1", "D1:1") and multi.answer_after == "D2:1"
    assert multi.evidence_sessions == ("session_2", "session_1")
    assert qs["conv-99:q2"].evidence == () and qs["conv-99:q2"].answer_after is None
    assert by_id(mini, "conv-26").questions[2].answer_after == "D2:3"


def test_resolve_evidence_rule_on_each_malformation():
    known = {"D1:1", "D1:3", "D11:26", "D30:5", "D9:1", "D4:4"}
    assert resolve_evidence(["D1:1"], known) == (("D1:1",), 0, ())
    assert resolve_evidence(["D:11:26"], known) == (("D11:26",), 1, ())
    assert resolve_evidence(["D30:05"], known) == (("D30:5",), 1, ())
    assert resolve_evidence(["D9:1 D4:4 D4:6"], known) == (("D9:1", "D4:4"), 1, ("D4:6",))
    assert resolve_evidence(["D1:1; D1:3", "D1:1"], known) == (("D1:1", "D1:3"), 1, ())
    assert resolve_evidence(["D", "D10:19", " "], known) == ((), 0, ("D", "D10:19"))


def test_memory_r1_split_by_conversation():
    names = {s: [c.conversation_id for c in load_locomo(FIXTURE, split=s)]
             for s in ("train", "validation", "test")}
    assert names == {"train": ["conv-26"], "validation": ["conv-30"], "test": ["conv-99"]}
    assert load_locomo(FIXTURE, split="test")[0].metadata["split"] == "test"


def test_unknown_split_suggests_the_nearest():
    with pytest.raises(UnknownNameError, match="Did you mean 'validation'"):
        load_locomo(FIXTURE, split="valid")


# -- malformed files ------------------------------------------------------------------------------

def write(tmp_path, data) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture()
def raw():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_missing_file_and_bad_json_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_locomo(tmp_path / "nope.json")
    bad = tmp_path / "broken.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        load_locomo(bad)
    with pytest.raises(DataError, match="JSON list of samples"):
        load_locomo(write(tmp_path, {"sample_id": "x"}))


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d[0]["conversation"]["session_2"][1].pop("text"),
     r"sample 0 \(sample_id 'conv-26'\) session 2 turn 1 \(dia_id 'D2:2'\): field 'text'"),
    (lambda d: d[1]["conversation"]["session_1"][2].update(speaker="Zed"),
     r"sample_id 'conv-30'\) session 1 turn 2 \(dia_id 'D1:3'\): speaker 'Zed'"),
    (lambda d: d[2]["conversation"]["session_2"].__setitem__(0, "just text"),
     r"sample_id 'conv-99'\) session 2 turn 0: must be an object"),
    (lambda d: d[2]["conversation"]["session_2"][1].update(dia_id="D2:1"),
     r"session 2 turn 1 \(dia_id 'D2:1'\): dia_id 'D2:1' appears twice"),
    (lambda d: d[0]["conversation"].pop("session_2_date_time"),
     r"sample_id 'conv-26'\) session 2: 'session_2_date_time' must be"),
    (lambda d: d[0]["conversation"].__setitem__("session_1", {"a": 1}),
     r"session 1: 'session_1' must be a list"),
    (lambda d: d[1]["conversation"].pop("speaker_b"), r"sample_id 'conv-30'\).*'speaker_b'"),
    (lambda d: d[1].pop("sample_id"), r"sample 1: field 'sample_id'"),
    (lambda d: d[0]["qa"][1].update(category=7), r"conv-26'\) qa 1: field 'category'"),
    (lambda d: d[0]["qa"][0].pop("answer"), r"qa 0: field 'answer' is missing"),
    (lambda d: d[2]["qa"][0].update(answer=["a", "list"]), r"qa 0: field 'answer' must be"),
    (lambda d: d[2]["qa"][0].update(evidence="D1:1"), r"qa 0: field 'evidence' must be a list"),
    (lambda d: d.append(copy.deepcopy(d[0])), r"sample_id 'conv-26' appears twice"),
])
def test_malformed_conversation_names_sample_session_and_turn(tmp_path, raw, mutate, expected):
    mutate(raw)
    with pytest.raises(DataError, match=expected) as info:
        load_locomo(write(tmp_path, raw))
    assert isinstance(info.value, MemgymError)
    assert str(tmp_path / "bad.json") in str(info.value)


def test_a_session_key_with_thousands_of_digits_is_a_data_error_naming_the_field(tmp_path, raw):
    raw[0]["conversation"]["session_" + "7" * 4301] = []
    with pytest.raises(DataError, match=r"sample_id 'conv-26'\): conversation field "
                                        r"'session_777777777777\.\.\.' names a session number "
                                        r"of 4301 digits"):
        load_locomo(write(tmp_path, raw))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_nan_answer_is_refused_naming_the_question_not_read_as_gold_nan(tmp_path, raw, value):
    raw[0]["qa"][1]["answer"] = value
    with pytest.raises(DataError, match=r"conv-26'\) qa 1: field 'answer' is (nan|inf), not an "
                                        r"answer"):
        load_locomo(write(tmp_path, raw))


# -- the real release -----------------------------------------------------------------------------

@needs_real
def test_real_locomo_counts_and_memory_r1_split():
    everything = load_locomo(REAL, include_adversarial=True)
    assert len(everything) == 10
    assert sum(len(c.questions) for c in everything) == 1986
    assert sum(len(c.questions) for c in load_locomo(REAL)) == 1540
    counts = {s: sum(len(c.questions) for c in load_locomo(REAL, split=s))
              for s in ("train", "validation", "test")}
    assert counts == {"train": 152, "validation": 81, "test": 1307}
    assert [c.conversation_id for c in load_locomo(REAL, split="train")] == ["conv-26"]


@needs_real
def test_real_locomo_evidence_repairs_and_answer_after():
    conversations = load_locomo(REAL, include_adversarial=True)
    assert sum(c.metadata["evidence_repaired"] for c in conversations) == 6
    assert sum(c.metadata["evidence_unresolved"] for c in conversations) == 3
    conv26 = conversations[0]
    assert len(conv26.sessions) == 19  # 35 date-times listed, 19 sessions with turns
    questions = {q.question_id: q for c in conversations for q in c.questions}
    assert questions["conv-26:q37"].evidence == ("D8:6", "D9:17")
    assert questions["conv-43:q18"].answer_after == "D26:36"
    assert sum(q.answer_after is None for q in questions.values()) == 4  # no evidence at all
    for conv in conversations:
        order = {t.dia_id: i for i, t in enumerate(conv.turns())}
        for q in conv.questions:
            if q.evidence:
                assert q.answer_after == max(q.evidence, key=order.__getitem__)
    captions = sum("blip_caption" in t.metadata for c in conversations for t in c.turns())
    assert captions == 1226
