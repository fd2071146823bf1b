"""The MemoryAgentBench loader (memgym.data.memoryagentbench) on hand-written rows in the hub's
schema: one Conversation per row, the context cut losslessly into token-bounded chunk turns
(memgym's token counters), questions with their answer lists and metadata, the four
competencies, every accepted source (folder, JSONL, parquet, save_to_disk, rows, the hub id
through datasets.load_dataset monkeypatched to local rows) and errors that name the row and
field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import memgym.data
from memgym.data.memoryagentbench import (
    MEMORYAGENTBENCH_COMPETENCIES,
    MEMORYAGENTBENCH_HUB_ID,
    load_memoryagentbench,
)
from memgym.errors import DataError, UnknownNameError
from memgym.tokenizers import WordTokenCounter

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "memoryagentbench"


def rows_of(competency: str) -> list[dict]:
    path = FOLDER / f"{competency}-00000-of-00001.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_load_memoryagentbench_is_exported_from_memgym_data():
    assert memgym.data.load_memoryagentbench is load_memoryagentbench


@pytest.mark.parametrize("competency", MEMORYAGENTBENCH_COMPETENCIES)
def test_every_competency_loads_from_a_hub_style_folder(competency):
    conversations = load_memoryagentbench(FOLDER, competency=competency)
    rows = rows_of(competency)
    assert len(conversations) == len(rows)
    for i, (conv, row) in enumerate(zip(conversations, rows, strict=True)):
        assert conv.conversation_id == f"{competency}:{i}"
        assert conv.speakers == ("context",)
        assert "".join(t.text for t in conv.turns()) == row["context"]  # lossless chunks
        assert [q.question for q in conv.questions] == row["questions"]
        assert [list(q.answers) for q in conv.questions] == row["answers"]
        assert {q.category for q in conv.questions} == {competency}
        assert all(q.answer_after is None and q.evidence == () for q in conv.questions)
        assert conv.metadata["competency"] == competency
        assert conv.metadata["source"] == row["metadata"]["source"]


def test_chunks_hold_at_most_chunk_tokens_and_group_into_sessions():
    counter = WordTokenCounter()
    conv = load_memoryagentbench(FOLDER, competency="Accurate_Retrieval", chunk_tokens=50,
                                 chunks_per_session=3)[0]
    turns = list(conv.turns())
    assert len(turns) == conv.metadata["num_chunks"] > 6
    assert all(counter.count(t.text) <= 50 for t in turns)
    assert all(t.metadata["tokens"] == counter.count(t.text) for t in turns)
    assert [t.metadata["chunk"] for t in turns] == list(range(len(turns)))
    assert [len(s.turns) for s in conv.sessions[:-1]] == [3] * (len(conv.sessions) - 1)
    assert turns[3].dia_id == "s2:1" and turns[3].session == 2
    assert conv.metadata["chunk_tokens"] == 50 and conv.metadata["tokenizer"] == "words"
    one = load_memoryagentbench(FOLDER, competency="Accurate_Retrieval", chunk_tokens=10_000)[0]
    assert one.num_turns == 1 and len(one.sessions) == 1


def test_custom_token_counter_is_used():
    class CharCounter(WordTokenCounter):
        name = "chars"

        def count(self, text):
            return len(text)

        def split(self, text, max_tokens):
            return text[:max_tokens], text[max_tokens:]

    conv = load_memoryagentbench(FOLDER, competency="Conflict_Resolution", chunk_tokens=40,
                                 tokenizer=CharCounter())[0]
    assert all(len(t.text) <= 40 for t in conv.turns())
    assert conv.metadata["tokenizer"] == "chars"


def test_question_metadata_and_dates_come_from_the_parallel_lists():
    first, second = load_memoryagentbench(FOLDER, competency="Accurate_Retrieval")
    q = first.questions[0]
    assert q.question_id == "Accurate_Retrieval:0:q0"
    assert q.metadata == {"source_question_id": "1", "qa_pair_id": "rq-1", "question_type": None}
    assert first.questions[1].answers == ("a brass key", "brass key")
    lme = second.questions[0]
    assert lme.question_date == "2023/05/30 (Tue) 23:40"
    assert lme.metadata["question_type"] == "single-session-user"
    lru = load_memoryagentbench(FOLDER, competency="Long_Range_Understanding")[0]
    assert lru.metadata["keypoints"] == ["shipwreck", "island", "return"]


def test_sources_filter_and_limit():
    only = load_memoryagentbench(FOLDER, competency="Accurate_Retrieval",
                                 sources=["longmemeval_s*"])
    assert [c.conversation_id for c in only] == ["Accurate_Retrieval:1"]  # ids keep row index
    assert len(load_memoryagentbench(FOLDER, competency="Accurate_Retrieval", limit=1)) == 1


def test_file_parquet_rows_and_save_to_disk_sources(tmp_path):
    import datasets

    jsonl = FOLDER / "Test_Time_Learning-00000-of-00001.jsonl"
    from_file = load_memoryagentbench(jsonl)  # competency inferred from the file name
    assert from_file[0].metadata["competency"] == "Test_Time_Learning"
    rows = rows_of("Conflict_Resolution")
    parquet = tmp_path / "cr.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(parquet))
    from_parquet = load_memoryagentbench(parquet, competency="Conflict_Resolution")
    from_rows = load_memoryagentbench(rows, competency="Conflict_Resolution")
    assert from_parquet[0].sessions == from_rows[0].sessions
    assert from_parquet[0].questions == from_rows[0].questions
    saved = tmp_path / "saved"
    datasets.DatasetDict({c: datasets.Dataset.from_list(rows_of(c))
                          for c in MEMORYAGENTBENCH_COMPETENCIES}).save_to_disk(str(saved))
    from_disk = load_memoryagentbench(saved, competency="Long_Range_Understanding")
    assert from_disk[0].questions[0].question == "Summarize the story."


def test_hub_id_goes_through_datasets_load_dataset_with_the_competency_split(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(hub_id, config=None, split=None):
        calls.append((hub_id, config, split))
        return datasets.Dataset.from_list(rows_of(split))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = load_memoryagentbench(competency="Test_Time_Learning")
    assert calls == [(MEMORYAGENTBENCH_HUB_ID, None, "Test_Time_Learning")]
    assert loaded[0].questions[1].answers == ("7",)
    assert loaded[0].source == f"{MEMORYAGENTBENCH_HUB_ID} [Test_Time_Learning]"


def test_bad_arguments_are_named():
    with pytest.raises(UnknownNameError, match="Did you mean 'Conflict_Resolution'"):
        load_memoryagentbench(FOLDER, competency="conflict_resolution")
    with pytest.raises(DataError, match="pass competency="):
        load_memoryagentbench(FOLDER)
    with pytest.raises(DataError, match="chunk_tokens=0"):
        load_memoryagentbench(FOLDER, competency="Accurate_Retrieval", chunk_tokens=0)
    with pytest.raises(DataError, match="named for 'Test_Time_Learning'"):
        load_memoryagentbench(FOLDER / "Test_Time_Learning-00000-of-00001.jsonl",
                              competency="Accurate_Retrieval")
    with pytest.raises(DataError, match="does not exist"):
        load_memoryagentbench("./missing.parquet", competency="Accurate_Retrieval")


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r.update(context=""), r"jsonl line 1: field 'context'"),
    (lambda r: r.update(questions="one question"), r"field 'questions' must be a list"),
    (lambda r: r.update(answers=[["a"], ["b"]]), r"field 'answers' must be a list of 1"),
    (lambda r: r.update(answers=[[]]), r"answers\[0\] must be a non-empty list"),
    (lambda r: r.update(metadata=["x"]), r"field 'metadata' must be an object"),
    (lambda r: r["metadata"].update(question_ids=["a", "b"]), r"'question_ids' must be a list "
     r"parallel to the 1 questions"),
])
def test_malformed_row_names_row_and_field(tmp_path, mutate, expected):
    rows = rows_of("Conflict_Resolution")
    mutate(rows[0])
    path = tmp_path / "Conflict_Resolution-bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=expected) as info:
        load_memoryagentbench(path)
    assert str(path) in str(info.value)
