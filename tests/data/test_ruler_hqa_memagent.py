"""composition="memagent" against a re-implementation of MemAgent's RULER-HQA builder.

`memagent_read_hotpotqa` and `memagent_compose` below re-implement MemAgent's
`taskutils/memory_data/different_docs_eval.py` (`read_hotpotqa`, `generate_input_output`) for the
differential check: the pool is the sorted set of "title\\ntext" over the whole file, a question's
own paragraphs come first, then `random.sample` (Python's global RNG) of the rest, then
`random.Random(4).shuffle`. MemAgent's draws depend on its process pool's scheduling, so the doc
set is compared where it is deterministic (N = pool size) or with the reference's global RNG
seeded as memgym seeds each task (`memagent_draw_seed`); gold depths are compared always.
"""

import json
import random

import numpy as np
import pytest

from memgym.data.hotpotqa import load_hotpotqa
from memgym.data.ruler_hqa import compose_ruler_hqa, hotpotqa_tasks, memagent_draw_seed
from memgym.data.task import PIECE_SEPARATOR

# -- MemAgent's procedure, re-implemented ---------------------------------------------------------


def memagent_read_hotpotqa(data):
    total_docs = [f"{t}\n{''.join(p)}" for d in data for t, p in d["context"]]
    total_docs = sorted(set(total_docs))
    index = {c: i for i, c in enumerate(total_docs)}
    qas = [{"query": d["question"], "outputs": [d["answer"]],
            "context": [index[f"{t}\n{''.join(p)}"] for t, p in d["context"]]} for d in data]
    return qas, total_docs


def memagent_compose(qas, docs, i, num_docs):
    """MemAgent's generate_input_output: (context string, pool indices in stream order)."""
    curr_docs = qas[i]["context"]
    if num_docs < len(docs):
        addition = [j for j, _ in enumerate(docs) if j not in curr_docs]
        all_docs = curr_docs + random.sample(addition, max(0, num_docs - len(curr_docs)))
    else:
        all_docs = list(range(len(docs)))
    random.Random(4).shuffle(all_docs)
    context = "\n\n".join(f"Document {k + 1}:\n{docs[j]}"
                          for k, j in enumerate(all_docs))
    return context, all_docs


# -- a small synthetic HotpotQA file --------------------------------------------------------------


def synthetic_rows(num_questions=30, universe=90, seed=0):
    """HotpotQA-schema rows whose questions share paragraphs; one title has two texts."""
    rng = np.random.default_rng(seed)
    paragraphs = [(f"Title {k:03d}", [f"Paragraph {k} opens.", f" It has fact {k}."])
                  for k in range(universe)]
    paragraphs.append(("Title 005", ["Another paragraph titled 005.", " Different text."]))
    rows = []
    for q in range(num_questions):
        chosen = rng.choice(len(paragraphs), size=10, replace=False)
        context = [[paragraphs[k][0], paragraphs[k][1]] for k in chosen]
        gold = [context[1][0], context[6][0]]
        rows.append({"_id": f"q{q}", "question": f"Question {q}?", "answer": f"answer {q}",
                     "type": "bridge", "level": "hard",
                     "supporting_facts": [[gold[0], 0], [gold[1], 1]], "context": context})
    return rows


@pytest.fixture(scope="module")
def rows():
    return synthetic_rows()


@pytest.fixture(scope="module")
def dev_file(rows, tmp_path_factory):
    """The rows as a HotpotQA JSON list on disk (what a user passes as data_path)."""
    path = tmp_path_factory.mktemp("hotpotqa") / "hotpotqa_dev.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(rows):
    return memagent_read_hotpotqa(rows)


def gold_positions(context_order, rows, docs, i):
    titles = {t for t, _ in rows[i]["supporting_facts"]}
    gold = {docs.index(f"{t}\n{''.join(p)}") for t, p in rows[i]["context"] if t in titles}
    return [p for p, j in enumerate(context_order) if j in gold]


# -- the checks -----------------------------------------------------------------------------------


def test_pool_is_the_sorted_full_text_set_deduplicated_by_text_not_title(rows, reference):
    _, docs = reference
    tasks = compose_ruler_hqa(load_hotpotqa(rows), num_docs=20)
    assert tasks.pool_size == len(docs)
    assert [f"{d.title}\n{d.text}" for d in tasks.docs[: tasks.pool_size]] == docs
    assert sum(d.startswith("Title 005\n") for d in docs) == 2  # same title, two documents


@pytest.mark.parametrize("num_docs", [10, 11, 25, 50])
def test_every_question_gets_memagents_context_when_seeded_alike(rows, reference, num_docs):
    qas, docs = reference
    tasks = compose_ruler_hqa(load_hotpotqa(rows), num_docs=num_docs, seed=42)
    for t in range(len(rows)):
        random.seed(memagent_draw_seed(42, t))
        context, order = memagent_compose(qas, docs, t, num_docs)
        task = tasks[t]
        assert task.context.order.tolist() == order
        assert PIECE_SEPARATOR.join(task.context) == context  # "Document {i}:\n{doc}", "\n\n"


def test_gold_depths_are_memagents_whatever_its_random_draws(rows, reference, dev_file):
    qas, docs = reference
    num_docs = 50
    random.seed(42)  # MemAgent's global seed; its draws differ from memgym's
    tasks = hotpotqa_tasks(dev_file, num_docs=num_docs, seed=7)
    for t in range(len(rows)):
        _, order = memagent_compose(qas, docs, t, num_docs)
        expected = gold_positions(order, rows, docs, t)
        task = tasks[t]
        got = [p for p, piece in enumerate(task.context) if piece in task.gold_context]
        assert got == expected and len(got) == 2
        # every question's own paragraphs sit in the same ten slots
        own = {docs.index(f"{title}\n{''.join(s)}") for title, s in rows[t]["context"]}
        own_slots = [p for p, j in enumerate(task.context.order.tolist()) if j in own]
        assert own_slots == [p for p, j in enumerate(order) if j in own]
    first = [p for p, piece in enumerate(tasks[0].context) if piece in tasks[0].gold_context]
    per_task = compose_ruler_hqa(load_hotpotqa(rows), num_docs=num_docs,
                                 composition="per_task_shuffle")
    slots = {tuple(np.flatnonzero(np.isin(per_task[t].context.order, per_task.plans[t].gold)))
             for t in range(len(rows))}
    assert len(slots) > 1 and first  # the per-task shuffle moves the gold documents around


def test_the_whole_pool_is_memagents_context_byte_for_byte(rows, reference):
    qas, docs = reference
    tasks = compose_ruler_hqa(load_hotpotqa(rows), num_docs=len(docs), seed=123)
    random.seed(0)  # no draws at N = pool size: any seed gives the same context
    for t in (0, 17):
        context, _ = memagent_compose(qas, docs, t, len(docs))
        assert PIECE_SEPARATOR.join(tasks[t].context) == context

