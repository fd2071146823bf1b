"""RULER-HQA composition (gold kept, exact num_docs, target_tokens, determinism, bounded memory,
pickling) under both procedures, MemAgent's published eval/parquet files, and
MemAgent-HotpotQA-v0 offline. MemAgent's own procedure is checked against a re-implementation
in tests/data/test_ruler_hqa_memagent.py."""

import json
import pickle
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import memgym  # noqa: F401  (registers the ids)
from memgym.data.hotpotqa import BUNDLED_HOTPOTQA, load_hotpotqa
from memgym.data.ruler_hqa import (
    ComposedTasks,
    DocumentContext,
    compose_ruler_hqa,
    hotpotqa_tasks,
    memagent_documents,
    memagent_ruler_file,
    split_documents,
)
from memgym.data.task import PIECE_SEPARATOR, Document, render_document
from memgym.errors import ConfigError, DataError
from memgym.tokenizers import WordTokenCounter

SHARED_SAMPLE = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
                 / "hotpotqa_distractor_sample100.jsonl")
COUNTER = WordTokenCounter()
PER_TASK = {"composition": "per_task_shuffle"}
BOTH = pytest.mark.parametrize("composition", ["memagent", "per_task_shuffle"])


@pytest.fixture(scope="module")
def records():
    return load_hotpotqa(None)


def titles_of(task):
    return [piece.split("\n", 2)[1] for piece in task.context]


@pytest.mark.parametrize("num_docs", [2, 7, 10, 11, 50, 200])
def test_every_gold_paragraph_kept_and_num_docs_hit_exactly(records, num_docs):
    tasks = compose_ruler_hqa(records, num_docs=num_docs, **PER_TASK)
    for t in range(len(tasks)):
        task, record = tasks[t], records[t]
        titles = titles_of(task)
        assert len(task.context) == len(titles) == num_docs == task.metadata["num_docs"]
        assert len(set(titles)) == num_docs  # nothing twice, own titles never re-drawn
        assert set(record.supporting_titles) <= set(titles)
        own = {d.title for d in record.paragraphs}
        if num_docs >= len(own):
            assert own <= set(titles)
        # gold_context: the supporting paragraphs as rendered at their stream positions
        assert task.gold_context == tuple(
            p for p, title in zip(task.context, titles) if title in record.supporting_titles)


@BOTH
def test_pieces_render_memagent_style_with_one_based_indices(records, composition):
    task = compose_ruler_hqa(records, num_docs=30, composition=composition)[3]
    by_title = {d.title: d for r in records for d in r.paragraphs}
    for i, piece in enumerate(task.context, 1):
        title = piece.split("\n", 2)[1]
        assert piece == f"Document {i}:\n{title}\n{by_title[title].text}"
    assert task.context[-1] == task.context[29] and task.context[1:3] == list(task.context)[1:3]
    with pytest.raises(IndexError):
        task.context[30]


@BOTH
def test_task_fields(records, composition):
    task = compose_ruler_hqa(records, num_docs=50, seed=7, composition=composition)[4]
    assert task.task_id == 4 and task.question == records[4].question
    assert task.answers == (records[4].answer,) and task.task_type == records[4].type
    assert task.metadata == {"source": "HotpotQA", "hotpotqa_id": records[4].id,
                             "level": records[4].level, "num_docs": 50, "seed": 7,
                             "composition": composition}


@BOTH
def test_no_limits_gives_the_plain_distractor_setting(records, composition):
    task = compose_ruler_hqa(records, composition=composition)[0]
    assert sorted(titles_of(task)) == sorted(d.title for d in records[0].paragraphs)


@pytest.mark.parametrize("target, composition", [
    (1500, "per_task_shuffle"), (4000, "per_task_shuffle"), (20000, "per_task_shuffle"),
    (4000, "memagent"), (20000, "memagent")])
def test_target_tokens_respected_within_one_document(records, target, composition):
    tasks = compose_ruler_hqa(records, target_tokens=target, tokenizer=COUNTER,
                              composition=composition)
    longest = max(COUNTER.count(render_document(999, d)) + 1 for d in tasks.docs)
    for t in range(0, len(tasks), 4):
        task = tasks[t]
        total = COUNTER.count(PIECE_SEPARATOR.join(task.context))
        assert total == task.metadata["context_tokens"]
        assert target - longest < total <= target
        assert set(records[t].supporting_titles) <= set(titles_of(task))


def test_target_tokens_below_the_own_documents_says_what_is_kept(records):
    with pytest.raises(ConfigError, match=r"target_tokens=1500 is below .* 10 own documents"):
        compose_ruler_hqa(records, target_tokens=1500, tokenizer=COUNTER)[0]


@BOTH
def test_unreachable_target_tokens_says_so(records, composition):
    with pytest.raises(DataError, match="out of reach.*pool="):
        compose_ruler_hqa(records, target_tokens=10**7, composition=composition)[0]


@BOTH
def test_same_seed_same_order_other_seed_other_order(records, composition):
    a = compose_ruler_hqa(records, num_docs=60, seed=3, composition=composition)
    b = compose_ruler_hqa(records, num_docs=60, seed=3, composition=composition)
    _ = b[5], b[2]  # access order must not matter
    assert all(np.array_equal(a[t].context.order, b[t].context.order) for t in range(len(a)))
    assert a[1] == b[1]
    c = compose_ruler_hqa(records, num_docs=60, seed=4, composition=composition)
    assert not np.array_equal(a[0].context.order, c[0].context.order)


@BOTH
def test_too_many_docs_names_the_supply_and_the_fix(records, composition):
    with pytest.raises(DataError, match=r"only 200 documents.*pool="):
        compose_ruler_hqa(records, num_docs=201, composition=composition)
    with pytest.raises(ConfigError, match="num_docs"):
        compose_ruler_hqa(records, num_docs=0, composition=composition)


def test_too_few_docs_per_task_keeps_gold_memagent_refuses_naming_the_option(records):
    with pytest.raises(ConfigError, match="gold"):
        compose_ruler_hqa(records, num_docs=1, **PER_TASK)
    with pytest.raises(ConfigError, match=r"10 own documents.*composition='per_task_shuffle'"):
        compose_ruler_hqa(records, num_docs=9)


def test_unknown_composition_names_the_choices(records):
    with pytest.raises(ConfigError, match="composition='memagnet'.*'memagent'.*per_task"):
        compose_ruler_hqa(records, num_docs=50, composition="memagnet")


@BOTH
def test_25600_documents_cost_an_index_array_not_a_string(records, composition):
    pool = [Document(f"Synthetic {i}", f"Paragraph {i} " + "filler words here " * 8)
            for i in range(26_000)]
    tasks = compose_ruler_hqa(records[:3], num_docs=25_600, pool=pool, composition=composition)
    task = tasks[1]
    context = task.context
    assert isinstance(context, DocumentContext) and len(context) == 25_600
    assert context.docs is tasks.docs  # one shared pool, no copies
    assert context.order.dtype == np.int32
    assert sys.getsizeof(context.order) < 110_000
    assert set(records[1].supporting_titles) <= set(titles_of(task))
    assert context[25_599].startswith("Document 25600:\n")


@BOTH
def test_tasks_and_contexts_pickle(records, composition):
    tasks = compose_ruler_hqa(records, target_tokens=3000, composition=composition)
    restored = pickle.loads(pickle.dumps(tasks))
    assert isinstance(restored, ComposedTasks) and len(restored) == len(tasks)
    assert restored[2] == tasks[2]
    task = pickle.loads(pickle.dumps(tasks[0]))
    assert list(task.context) == list(tasks[0].context)


def test_hotpotqa_tasks_limit_keeps_the_whole_pool(records):
    tasks = hotpotqa_tasks(None, num_docs=120, limit=3)
    assert len(tasks) == 3 and tasks.pool_size == 200
    assert hotpotqa_tasks(None, target_tokens=2000, limit=2)[0].metadata["target_tokens"] == 2000


# -- MemAgent files -------------------------------------------------------------------------------

def memagent_string_rows(tasks, records, n=4):
    return [{"context": PIECE_SEPARATOR.join(tasks[t].context), "input": records[t].question,
             "answers": [records[t].answer], "num_docs": len(tasks[t].context), "index": t}
            for t in range(n)]


def test_split_documents_round_trips_and_refuses_other_text():
    docs = [Document("A", "alpha text"), Document("B", "mentions Document 3:\nin passing")]
    context = PIECE_SEPARATOR.join(render_document(i, d) for i, d in enumerate(docs, 1))
    assert split_documents(context) == docs
    assert split_documents("no documents here") is None


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_memagent_eval_file_with_context_strings(tmp_path, records, suffix):
    composed = compose_ruler_hqa(records, num_docs=50)
    rows = memagent_string_rows(composed, records)
    path = tmp_path / f"eval_50{suffix}"
    text = (json.dumps(rows, indent=4) if suffix == ".json"
            else "".join(json.dumps(r) + "\n" for r in rows))
    path.write_text(text, encoding="utf-8")
    tasks = hotpotqa_tasks(path, num_docs=999)  # num_docs does not apply: the file fixes it
    assert len(tasks) == 4
    for t, row in enumerate(rows):
        assert isinstance(tasks[t].context, DocumentContext)
        assert PIECE_SEPARATOR.join(tasks[t].context) == row["context"]
        assert tasks[t].question == row["input"] and tasks[t].answers == tuple(row["answers"])
        assert tasks[t].metadata["num_docs"] == 50
    # paragraphs shared between rows are stored once
    assert len(tasks[0].context.docs) < 4 * 50
    assert hotpotqa_tasks(path, limit=2)[1].question == rows[1]["input"]
    with pytest.raises(ConfigError, match="pre-composed"):
        hotpotqa_tasks(path, target_tokens=1000)


def test_memagent_eval_file_with_docs_beside_it_gets_gold_and_types(tmp_path, records):
    composed = compose_ruler_hqa(records, num_docs=40)
    rows = memagent_string_rows(composed, records, n=3)
    (tmp_path / "eval_40.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "hotpotqa_dev.json").write_text(
        json.dumps([json.loads(line) for line in BUNDLED_HOTPOTQA.open(encoding="utf-8")]),
        encoding="utf-8")
    tasks = hotpotqa_tasks(tmp_path / "eval_40.json")
    for t in range(3):
        assert tasks[t].gold_context == composed[t].gold_context
        assert tasks[t].task_type == records[t].type
        assert tasks[t].metadata["hotpotqa_id"] == records[t].id


def test_memagent_over_1m_eval_file_with_document_indices(tmp_path, records):
    docs = memagent_documents(records)
    assert docs == sorted(docs, key=lambda d: f"{d.title}\n{d.text}") and len(docs) == 200
    rng = np.random.default_rng(0)
    rows = []
    for t in range(3):
        own = [docs.index(d) for d in records[t].paragraphs]
        others = [i for i in rng.permutation(len(docs)).tolist() if i not in own][:90]
        order = rng.permutation(own + others).tolist()
        rows.append({"context": order, "input": records[t].question,
                     "answers": [records[t].answer], "num_docs": 100, "index": t})
    path = tmp_path / "eval_12800.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DataError, match="docs_path"):
        hotpotqa_tasks(path)
    tasks = hotpotqa_tasks(path, docs_path=BUNDLED_HOTPOTQA)
    for t, row in enumerate(rows):
        context = tasks[t].context
        assert len(context) == 100
        # MemAgent renders "Document {i}:\n{DOCS[idx]}" with DOCS[idx] = "title\ntext"
        assert context[0] == f"Document 1:\n{docs[row['context'][0]].title}\n" \
                             f"{docs[row['context'][0]].text}"
        gold_titles = [p.split("\n", 2)[1] for p in tasks[t].gold_context]
        assert sorted(gold_titles) == sorted(records[t].supporting_titles)
    rows[1]["index"] = 2  # points at another question
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"index 1.*'index'=2"):
        hotpotqa_tasks(path, docs_path=BUNDLED_HOTPOTQA)


def test_memagent_training_parquet(tmp_path, records):
    composed = compose_ruler_hqa(records, num_docs=30)
    rows = [{"data_source": "hotpotqa",
             "prompt": [{"role": "user", "content": records[t].question}],
             "context": PIECE_SEPARATOR.join(composed[t].context), "ability": "memory",
             "reward_model": {"style": "rule", "ground_truth": [records[t].answer]},
             "extra_info": {"index": t, "question": records[t].question, "num_docs": 30}}
            for t in range(5)]
    path = tmp_path / "hotpotqa_train_process.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    tasks = hotpotqa_tasks(path)
    assert len(tasks) == 5
    for t in range(5):
        assert tasks[t].question == records[t].question
        assert tasks[t].answers == (records[t].answer,)
        assert list(tasks[t].context) == list(composed[t].context)
    rows[3]["reward_model"] = {"style": "rule"}
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError, match=r"row 3: field 'reward_model.ground_truth'"):
        hotpotqa_tasks(path)


def test_memagent_context_without_document_markers_streams_in_blocks(tmp_path):
    row = {"context": "first block\n\nsecond block", "input": "q?", "answers": ["a"]}
    path = tmp_path / "eval_custom.json"
    path.write_text(json.dumps([row]), encoding="utf-8")
    assert tuple(hotpotqa_tasks(path)[0].context) == ("first block", "second block")


def test_malformed_memagent_row_names_line_and_field(tmp_path):
    rows = [{"context": "Document 1:\nT\nx", "input": "q?", "answers": ["a"]},
            {"context": "Document 1:\nT\nx", "input": "q?", "answers": []}]
    path = tmp_path / "eval_50.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"eval_50\.jsonl line 2: field 'answers'"):
        hotpotqa_tasks(path)


# -- the registered env and the shared real sample ------------------------------------------------

def test_gym_make_hotpotqa_plays_one_episode_offline():
    env = gym.make("MemAgent-HotpotQA-v0")
    obs, info = env.reset(seed=0, options={"task_id": 1})
    steps, done = 0, False
    while not done:
        action = "\\boxed{an answer}" if obs["phase"] == "answer" else "notes so far"
        obs, _, terminated, truncated, info = env.step(action)
        steps, done = steps + 1, terminated or truncated
    assert steps >= 2 and "accuracy" in info["reward_components"]
    env.close()


@pytest.mark.skipif(not SHARED_SAMPLE.is_file(), reason="shared real data not present")
def test_shared_real_sample_composes_at_length():
    tasks = hotpotqa_tasks(SHARED_SAMPLE, num_docs=800)
    records = load_hotpotqa(SHARED_SAMPLE)
    assert len(tasks) == 100 and tasks.pool_size >= 800
    for t in (0, 57, 99):
        task = tasks[t]
        assert len(task.context) == 800
        assert set(records[t].supporting_titles) <= set(titles_of(task))
        assert task.task_type in ("bridge", "comparison")
    long = hotpotqa_tasks(SHARED_SAMPLE, target_tokens=50_000, limit=2)[1]
    assert 45_000 < long.metadata["context_tokens"] <= 50_000


def test_gym_make_hotpotqa_defaults_to_memagents_composition():
    default = gym.make("MemAgent-HotpotQA-v0", num_docs=60).unwrapped.tasks
    assert default.composition == "memagent"
    own_slots = {tuple(np.flatnonzero(np.isin(default[t].context.order, default.plans[t].own)))
                 for t in range(len(default))}
    assert len(own_slots) == 1  # one permutation: the same ten slots for every question
    per_task = gym.make("MemAgent-HotpotQA-v0", num_docs=60,
                        composition="per_task_shuffle").unwrapped.tasks
    assert per_task[0].metadata["composition"] == "per_task_shuffle"


# -- MemAgent's OOD RULER files (eval_{task}_{len}.json, ruler_data_prepare.py) -------------------

def memagent_ruler_rows(task):
    """Rows in the schema MemAgent's synthetic/*.py write: index, input, context, outputs, ..."""
    if task == "qa_1":
        context = "\n\n".join(f"Document {i}:\nParagraph {i} about Denver." for i in (1, 2, 3))
        return [{"index": 0, "input": "Answer the question based on the given documents. "
                 "Who won?", "context": context, "outputs": ["Denver Broncos", "Denver"],
                 "answer_prefix": " Answer:"}]
    noise = ("The grass is green. The sky is blue. The sun is yellow. Here we go. There and back "
             "again.")
    needle = "One of the special magic numbers for rare-bird is: 1234567."
    return [{"index": i, "input": "A special magic number is hidden within the following text. "
             "Make sure to memorize it. What is the special magic number for rare-bird "
             "mentioned in the provided text?",
             "context": "\n".join([noise] * 20 + [needle] + [noise] * (10 + i)),
             "outputs": ["1234567"],
             "answer_prefix": " The special magic number for rare-bird mentioned in the "
                              "provided text are", "length": 812 + i} for i in range(3)]


def test_memagent_ruler_file_with_outputs_loads_as_published(tmp_path):
    rows = memagent_ruler_rows("niah_single_1")
    path = tmp_path / "eval_niah_single_1_8192.json"
    path.write_text(json.dumps(rows, indent=4), encoding="utf-8")
    for tasks in (hotpotqa_tasks(path),
                  gym.make("MemAgent-RULER-NIAH-Single-1-v0", data_path=str(path)
                           ).unwrapped.tasks):
        assert len(tasks) == 3
        for t, row in enumerate(rows):
            task = tasks[t]
            assert task.question == row["input"] and task.answers == tuple(row["outputs"])
            assert PIECE_SEPARATOR.join(task.context) == row["context"]
            assert task.scorer == "string_match_all" and task.task_type == "niah_single_1"
            assert task.metadata["answer_prefix"] == row["answer_prefix"]
            assert task.metadata["length"] == row["length"]
    with pytest.raises(ConfigError, match="niah_single_1 instances, not vt"):
        gym.make("MemAgent-RULER-VT-v0", data_path=str(path))


def test_memagent_ruler_qa_file_is_scored_with_sub_em_and_index_contexts_are_refused(tmp_path):
    rows = memagent_ruler_rows("qa_1")
    path = tmp_path / "eval_qa_1_8192.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    task = hotpotqa_tasks(path)[0]
    assert task.scorer == "sub_em" and task.task_type == "qa_1"
    assert PIECE_SEPARATOR.join(task.context) == rows[0]["context"]
    assert task.answers == ("Denver Broncos", "Denver")
    rows[0]["context"] = [3, 1, 2]
    path.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 1: field 'context' holds document indices.*qa_1"):
        hotpotqa_tasks(path)
    del rows[0]["outputs"]
    path.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="not a MemAgent RULER file.*'outputs'"):
        memagent_ruler_file(path)
