"""The LongMemEval loader (memgym.data.longmemeval) on a hand-written fixture in the release's
schema: one Conversation per question, dated haystack sessions with their ids, has_answer turns as
evidence, answer_after, abstention from `_abs`, filters, JSONL/parquet/rows input, the hub path
(hf_hub_download, monkeypatched to a local file) and errors naming the question, session and
turn at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import memgym.data
from memgym.data.longmemeval import load_longmemeval
from memgym.errors import DataError, UnknownNameError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "longmemeval_mini.json"


@pytest.fixture(scope="module")
def conversations():
    return load_longmemeval(FIXTURE)


@pytest.fixture()
def rows():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_load_longmemeval_is_exported_from_memgym_data():
    assert memgym.data.load_longmemeval is load_longmemeval


def test_one_conversation_per_question_with_its_haystack(conversations):
    assert [c.conversation_id for c in conversations] == ["q_city_1", "q_days_2", "q_pet_3_abs"]
    city = conversations[0]
    assert len(city.questions) == 1
    # the empty third session is skipped; indexes stay haystack positions
    assert [s.index for s in city.sessions] == [1, 2, 4]
    assert [s.session_id for s in city.sessions] == ["noise_1", "answer_a1", "answer_a2"]
    assert city.sessions[2].date_time == "2023/06/01 (Thu) 08:15"
    assert [t.dia_id for t in city.sessions[2].turns] == ["s4:1", "s4:2", "s4:3", "s4:4"]
    assert city.speakers == ("user", "assistant")
    assert conversations[1].speakers == ("user", "assistant")
    assert city.metadata["num_haystack_sessions"] == 4


def test_question_fields_follow_the_release(conversations):
    q = conversations[0].questions[0]
    assert q.category == "knowledge-update"
    assert q.question_date == "2023/06/20 (Tue) 10:00"
    assert q.evidence_sessions == ("answer_a1", "answer_a2")
    assert q.evidence == ("s2:1", "s4:3")  # the has_answer turns
    assert q.answer_after == "s4:3"  # the last has_answer turn, not the session's last turn
    assert not q.abstention
    turn = conversations[0].sessions[2].turns[2]
    assert turn.metadata == {"has_answer": True} and turn.speaker == "user"
    assert conversations[0].sessions[0].turns[0].metadata == {"has_answer": False}


def test_int_answer_is_stringified_and_unmarked_session_ends_at_its_last_turn(conversations):
    q = conversations[1].questions[0]
    assert q.answers == ("5",)
    assert q.evidence == () and q.answer_after == "s1:2"
    assert conversations[1].sessions[1].turns[0].speaker == "assistant"


def test_abs_ids_are_abstention_and_missing_answer_sessions_are_kept_visible(conversations):
    q = conversations[2].questions[0]
    assert q.abstention
    assert q.evidence_sessions == ("answer_c1", "answer_c9")
    assert q.metadata["missing_answer_sessions"] == ("answer_c9",)
    assert q.answer_after == "s1:2"


def test_filters_and_limit():
    assert [c.conversation_id for c in load_longmemeval(FIXTURE, include_abstention=False)] == [
        "q_city_1", "q_days_2"]
    only = load_longmemeval(FIXTURE, question_types=["temporal-reasoning"])
    assert [c.conversation_id for c in only] == ["q_days_2"]
    assert len(load_longmemeval(FIXTURE, limit=2)) == 2
    with pytest.raises(UnknownNameError, match="Did you mean 'multi-session'"):
        load_longmemeval(FIXTURE, question_types=["multi-sesion"])


def test_jsonl_parquet_and_rows_load_the_same(tmp_path, rows, conversations):
    jsonl = tmp_path / "lme.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert [c.sessions for c in load_longmemeval(jsonl)] == [c.sessions for c in conversations]
    import pyarrow as pa
    import pyarrow.parquet as pq

    for r in rows:
        r["answer"] = str(r["answer"])  # parquet columns hold one type
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "lme.parquet")
    from_parquet = load_longmemeval(tmp_path / "lme.parquet")
    assert [c.questions[0].evidence for c in from_parquet] == [
        c.questions[0].evidence for c in conversations]
    assert load_longmemeval(rows)[0].questions == conversations[0].questions


def test_hub_id_downloads_the_variant_file_and_parses_it_locally(monkeypatch, tmp_path, rows):
    import huggingface_hub

    suffixless = tmp_path / "longmemeval_oracle"  # the original release names have no suffix
    suffixless.write_text(json.dumps(rows), encoding="utf-8")
    calls = []

    def fake_download(repo_id, filename, repo_type):
        calls.append((repo_id, filename, repo_type))
        return str(suffixless)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    loaded = load_longmemeval("xiaowu0162/longmemeval", variant="oracle")
    assert calls == [("xiaowu0162/longmemeval", "longmemeval_oracle", "dataset")]
    assert len(loaded) == 3 and loaded[0].source == "xiaowu0162/longmemeval/longmemeval_oracle"
    load_longmemeval("xiaowu0162/longmemeval-cleaned", variant="s")
    assert calls[-1][1] == "longmemeval_s_cleaned.json"
    load_longmemeval("someone/lme-copy", hub_file="data.json")
    assert calls[-1] == ("someone/lme-copy", "data.json", "dataset")
    with pytest.raises(DataError, match="pass hub_file="):
        load_longmemeval("someone/lme-copy")
    with pytest.raises(UnknownNameError, match="variant"):
        load_longmemeval("xiaowu0162/longmemeval-cleaned", variant="xl")


def test_hub_failure_is_a_data_error_that_says_to_pass_a_path(monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(DataError, match="network is unreachable.*pass its path"):
        load_longmemeval("xiaowu0162/longmemeval-cleaned")


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_longmemeval(tmp_path / "longmemeval_s_cleaned.json")


def write(tmp_path, rows) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r[0]["haystack_sessions"][3][2].pop("content"),
     r"index 0 \(question_id 'q_city_1'\) session 4 \(session_id 'answer_a2'\) turn 2: "
     r"field 'content'"),
    (lambda r: r[1]["haystack_sessions"][0][1].update(has_answer="yes"),
     r"question_id 'q_days_2'\) session 1 \(session_id 'answer_b1'\) turn 1: field 'has_answer'"),
    (lambda r: r[1]["haystack_sessions"][1].__setitem__(0, "hi"),
     r"session 2 \(session_id 'noise_3'\) turn 0: must be an object"),
    (lambda r: r[0]["haystack_dates"].pop(), r"q_city_1'\): fields .* equal length"),
    (lambda r: r[2].pop("question_id"), r"index 2: field 'question_id'"),
    (lambda r: r[2].update(answer=None), r"q_pet_3_abs'\): field 'answer'"),
    (lambda r: r[0].update(haystack_sessions="text"), r"field 'haystack_sessions' must be a list"),
    (lambda r: r[0]["haystack_session_ids"].__setitem__(1, 7), r"session 2: haystack_session_ids"),
    (lambda r: r[1].update(answer_session_ids="answer_b1"), r"field 'answer_session_ids'"),
])
def test_malformed_row_names_question_session_and_turn(tmp_path, rows, mutate, expected):
    mutate(rows)
    with pytest.raises(DataError, match=expected):
        load_longmemeval(write(tmp_path, rows))
