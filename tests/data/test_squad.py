"""SQuAD loading (official v1.1/v2.0 JSON, flat JSONL, `datasets` objects, hub ids), malformed rows,
RULER qa_1 composition over distractor paragraphs, and MemAgent-SQuAD-v0 offline."""

import json
import pickle
from collections import defaultdict

import datasets
import gymnasium as gym
import numpy as np
import pytest

import memgym  # noqa: F401  (registers the ids)
from memgym.data.squad import BUNDLED_SQUAD, SquadRecord, load_squad, squad_tasks
from memgym.data.task import PIECE_SEPARATOR
from memgym.errors import DataError
from memgym.tokenizers import WordTokenCounter


def flat_rows():
    with BUNDLED_SQUAD.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def official(rows, version="1.1"):
    """The official release's nesting of flat rows: data[].paragraphs[].qas[]."""
    paragraphs = defaultdict(list)
    for r in rows:
        qa = {"id": r["id"], "question": r["question"],
              "answers": [{"text": t, "answer_start": s}
                          for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])]}
        if version == "2.0":
            qa["is_impossible"] = False
        paragraphs[(r["title"], r["context"])].append(qa)
    articles = defaultdict(list)
    for (title, context), qas in paragraphs.items():
        articles[title].append({"context": context, "qas": qas})
    return {"version": version,
            "data": [{"title": t, "paragraphs": ps} for t, ps in articles.items()]}


def test_bundled_sample_is_real_squad_with_valid_answer_spans():
    rows = flat_rows()
    assert len(rows) == 30 and len({r["context"] for r in rows}) == 10
    for r in rows:
        for text, start in zip(r["answers"]["text"], r["answers"]["answer_start"]):
            assert r["context"][start:start + len(text)] == text
    records = load_squad(None)
    assert records[0] == SquadRecord(
        id="56be4db0acb8001400a502ec", title="Super_Bowl_50", context=rows[0]["context"],
        question="Which NFL team represented the AFC at Super Bowl 50?",
        answers=("Denver Broncos",))
    assert records[2].answers == (
        "Santa Clara, California", "Levi's Stadium",
        "Levi's Stadium in the San Francisco Bay Area at Santa Clara, California.")


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_official_json_gives_the_same_records(tmp_path, version):
    path = tmp_path / f"dev-v{version}.json"
    path.write_text(json.dumps(official(flat_rows(), version)), encoding="utf-8")
    assert load_squad(path) == load_squad(None)


def test_unanswerable_v2_questions_are_skipped(tmp_path):
    data = official(flat_rows()[:3], "2.0")
    data["data"][0]["paragraphs"][0]["qas"].append(
        {"id": "x", "question": "Who lost?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "Carolina", "answer_start": 249}]})
    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert [r.id for r in load_squad(path)] == [r["id"] for r in flat_rows()[:3]]
    flat = flat_rows()[:2] + [{**flat_rows()[2], "answers": {"text": [], "answer_start": []}}]
    assert len(load_squad(datasets.Dataset.from_list(flat))) == 2


def test_datasets_objects_and_hub_ids(monkeypatch):
    dataset = datasets.Dataset.from_list(flat_rows())
    assert load_squad(dataset) == load_squad(None)
    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return dataset

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert len(load_squad("rajpurkar/squad")) == 30
    assert calls == [("rajpurkar/squad", None, "validation")]


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r.pop("question"), "'question'"),
    (lambda r: r.pop("context"), "'context'"),
    (lambda r: r.update(answers="Denver"), "'answers'"),
    (lambda r: r.update(answers={"text": [1]}), "'answers'"),
    (lambda r: r.update(id=None), "'id'"),
])
def test_malformed_jsonl_row_names_file_line_and_field(tmp_path, mutate, field):
    rows = flat_rows()[:4]
    mutate(rows[2])
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_squad(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)
    assert field in str(err.value)


def test_malformed_official_row_names_its_path(tmp_path):
    data = official(flat_rows())
    del data["data"][0]["paragraphs"][1]["qas"][0]["question"]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"data\[0\]\.paragraphs\[1\]\.qas\[0\]: field 'question'"):
        load_squad(path)


def test_composition_keeps_own_paragraph_and_prefers_its_article():
    tasks = squad_tasks(None, num_docs=10)
    for t in range(len(tasks)):
        task = tasks[t]
        assert len(task.context) == 10
        # 10 = own paragraph + the article's 9 others: every piece is a Super Bowl 50 paragraph
        assert all(p.split("\n", 2)[1] == "Super_Bowl_50" for p in task.context)
        assert len(task.gold_context) == 1 and task.gold_context[0] in list(task.context)
        assert task.gold_context[0].endswith("\n" + load_squad(None)[t].context)
        assert task.task_type == "squad" and task.metadata["squad_id"]


@pytest.mark.parametrize("num_docs", [1, 5, 50, 150])
def test_exactly_num_docs_without_repeats(num_docs):
    tasks = squad_tasks(None, num_docs=num_docs, limit=6)
    assert len(tasks) == 6
    for t in range(6):
        pieces = [p.split("\n", 2)[2] for p in tasks[t].context]
        assert len(pieces) == num_docs == len(set(pieces))
        assert load_squad(None)[t].context in pieces


def test_too_many_docs_names_the_supply_and_the_fix(tmp_path):
    path = tmp_path / "squad.jsonl"
    path.write_text(BUNDLED_SQUAD.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(DataError, match=r"only 10 documents.*pool="):
        squad_tasks(path, num_docs=11)


def test_target_tokens_and_determinism():
    counter = WordTokenCounter()
    tasks = squad_tasks(None, target_tokens=2500, seed=5)
    again = squad_tasks(None, target_tokens=2500, seed=5)
    for t in (0, 13, 29):
        total = counter.count(PIECE_SEPARATOR.join(tasks[t].context))
        assert total == tasks[t].metadata["context_tokens"] and 2000 < total <= 2500
        assert np.array_equal(tasks[t].context.order, again[t].context.order)
    assert pickle.loads(pickle.dumps(tasks))[13] == tasks[13]


def test_gym_make_squad_plays_one_episode_offline():
    env = gym.make("MemAgent-SQuAD-v0")
    obs, info = env.reset(seed=0, options={"task_id": 0})
    # MemAgent's qa template (its OOD RULER qa_1 files) is the default wording
    assert obs["question"] == ("Answer the question based on the given documents. "
                               "Which NFL team represented the AFC at Super Bowl 50?")
    done = False
    while not done:
        action = "\\boxed{Denver Broncos}" if obs["phase"] == "answer" else "AFC: Denver Broncos"
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
    assert reward == 1.0 and info["reward_components"]["accuracy"] == 1.0
    env.close()
