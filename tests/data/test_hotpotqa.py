"""HotpotQA loading: both row schemas from files, `datasets` objects and hub ids; DataErrors that
name file, line/index and field; the bundled sample and the shared real sample."""

import json
from pathlib import Path

import datasets
import pytest

from memgym.data.hotpotqa import (
    BUNDLED_HOTPOTQA,
    HotpotQARecord,
    iter_rows,
    load_hotpotqa,
    parse_hotpotqa_row,
)
from memgym.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SHARED_SAMPLE = SHARED_DATA / "hotpotqa_distractor_sample100.jsonl"


def original_rows(n=5):
    with BUNDLED_HOTPOTQA.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f][:n]


def to_datasets_schema(row):
    """The `hotpotqa/hotpot_qa` shape of an original-schema row."""
    return {
        "id": row["_id"], "question": row["question"], "answer": row["answer"],
        "type": row["type"], "level": row["level"],
        "supporting_facts": {"title": [t for t, _ in row["supporting_facts"]],
                             "sent_id": [i for _, i in row["supporting_facts"]]},
        "context": {"title": [t for t, _ in row["context"]],
                    "sentences": [s for _, s in row["context"]]},
    }


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_bundled_sample_is_twenty_valid_distractor_questions():
    records = load_hotpotqa(None)
    assert len(records) == 20
    assert {r.type for r in records} <= {"bridge", "comparison"}
    for r in records:
        assert len(r.paragraphs) == 10
        assert 1 <= len(r.supporting_titles) <= 2
        assert set(r.supporting_titles) <= {d.title for d in r.paragraphs}


def test_paragraph_text_joins_sentences_keeping_their_own_spaces():
    row = original_rows(1)[0]
    record = parse_hotpotqa_row(row)
    title, sentences = row["context"][0]
    assert record.paragraphs[0].title == title
    assert record.paragraphs[0].text == "".join(sentences)
    assert record.id == row["_id"] and record.answer == row["answer"]
    assert record.supporting_facts == tuple((t, i) for t, i in row["supporting_facts"])


def test_json_list_and_jsonl_give_the_same_records(tmp_path):
    rows = original_rows()
    as_list = tmp_path / "dev.json"
    as_list.write_text(json.dumps(rows), encoding="utf-8")
    from_list = load_hotpotqa(as_list)
    assert from_list == load_hotpotqa(write_jsonl(tmp_path / "dev.jsonl", rows))
    assert from_list == load_hotpotqa(None)[:5]
    assert load_hotpotqa(as_list, limit=2) == from_list[:2]


def test_datasets_schema_from_a_dataset_object_and_from_jsonl(tmp_path):
    expected = load_hotpotqa(None)[:5]
    shaped = [to_datasets_schema(r) for r in original_rows()]
    assert load_hotpotqa(datasets.Dataset.from_list(shaped)) == expected
    assert load_hotpotqa(write_jsonl(tmp_path / "ds.jsonl", shaped)) == expected
    saved = tmp_path / "saved"
    datasets.DatasetDict({"validation": datasets.Dataset.from_list(shaped)}).save_to_disk(saved)
    assert load_hotpotqa(saved, split="validation") == expected


def test_hub_id_is_read_with_the_distractor_config(monkeypatch):
    calls = []
    shaped = datasets.Dataset.from_list([to_datasets_schema(r) for r in original_rows(2)])

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return shaped

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    records = load_hotpotqa("hotpotqa/hotpot_qa", split="validation")
    assert calls == [("hotpotqa/hotpot_qa", "distractor", "validation")]
    assert [r.id for r in records] == [r["_id"] for r in original_rows(2)]


def test_unreachable_hub_id_becomes_a_data_error(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="no network.*data_path=None"):
        load_hotpotqa("someone/hotpot")


def test_missing_file_is_not_mistaken_for_a_hub_id(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_hotpotqa(str(tmp_path / "nope.jsonl"))


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.pop("question"), "'question'"),
    (lambda r: r.update(answer=3), "'answer'"),
    (lambda r: r.pop("_id"), "'_id'"),
    (lambda r: r.update(context="text"), "'context'"),
    (lambda r: r.update(context=[["Title only"]]), "'context'"),
    (lambda r: r["context"][0].__setitem__(1, "not a list"), "'context'"),
    (lambda r: r.update(supporting_facts=[["No Such Title", 0]]), "'supporting_facts'"),
    (lambda r: r.update(supporting_facts=[[r["context"][0][0], "zero"]]), "'supporting_facts'"),
])
def test_malformed_jsonl_row_names_file_line_and_field(tmp_path, mutate, field):
    rows = original_rows(3)
    mutate(rows[1])
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_hotpotqa(path)
    message = str(err.value)
    assert str(path) in message and "line 2" in message and field in message


def test_malformed_json_list_row_names_the_index(tmp_path):
    rows = original_rows(3)
    rows[2]["context"] = {"title": ["a", "b"], "sentences": [["x"]]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json index 2: field 'context'"):
        load_hotpotqa(path)


def test_invalid_json_line_names_the_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(original_rows(1)[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.jsonl line 2: not valid JSON"):
        load_hotpotqa(path)


def test_iter_rows_reads_a_top_level_object_as_one_row(tmp_path):
    path = tmp_path / "obj.json"
    path.write_text(json.dumps({"data": []}), encoding="utf-8")
    assert list(iter_rows(path)) == [(str(path), {"data": []})]


@pytest.mark.skipif(not SHARED_SAMPLE.is_file(), reason="shared real data not present")
def test_shared_real_sample_loads_in_both_schemas():
    records = load_hotpotqa(SHARED_SAMPLE)
    assert len(records) == 100 and all(isinstance(r, HotpotQARecord) for r in records)
    assert {r.type for r in records} == {"bridge", "comparison"}
    assert all(set(r.supporting_titles) <= {d.title for d in r.paragraphs} for r in records)
    with SHARED_SAMPLE.open(encoding="utf-8") as f:
        shaped = [to_datasets_schema(json.loads(line)) for line in f]
    assert load_hotpotqa(datasets.Dataset.from_list(shaped)) == records
