"""The task source of jsonl-qa: one JSON object per line, read into memgym Tasks.

Each line: {"question": str, "answers": [str, ...] (or one str), "documents": [str or
{"title": str, "text": str}, ...]}. A bad line is a DataError naming the file, line and field.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from memgym.data.task import Document, Task, render_document
from memgym.errors import DataError


def _pieces(documents: object, where: str) -> list[str]:
    if not isinstance(documents, list) or not documents:
        raise DataError(f"{where}: field 'documents' must be a non-empty list")
    pieces = []
    for i, doc in enumerate(documents, 1):
        if isinstance(doc, str):
            doc = {"title": f"Document {i}", "text": doc}
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
            raise DataError(f"{where}: documents[{i - 1}] must be a string or "
                            "{title, text}")
        pieces.append(render_document(i, Document(str(doc.get("title", "")), doc["text"])))
    return pieces


def load_tasks(path: str | Path) -> list[Task]:
    """Every task of a JSONL file, in file order (task ids 0, 1, ...)."""
    path = Path(path)
    tasks: list[Task] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise DataError(f"{where}: field 'question' must be a string")
        answers = row.get("answers")
        answers = [answers] if isinstance(answers, str) else answers
        if not isinstance(answers, list) or not answers or not all(
                isinstance(a, str) for a in answers):
            raise DataError(f"{where}: field 'answers' must be a string or a list of strings")
        tasks.append(Task(task_id=len(tasks), question=row["question"], answers=tuple(answers),
                          context=_pieces(row.get("documents"), where),
                          task_type=str(row.get("type", "")),
                          metadata={"source": "jsonl-qa"}))
    if not tasks:
        raise DataError(f"{path}: holds no tasks")
    return tasks


def load_paragraphs(path: str | Path) -> list[Document]:
    """Distractor paragraphs: one {"title": str, "text": str} object a line."""
    path = Path(path)
    docs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DataError(f"{path}:{number}: field 'text' must be a string")
        docs.append(Document(str(row.get("title", "")), row["text"]))
    if not docs:
        raise DataError(f"{path}: holds no paragraphs")
    return docs


def with_distractors(tasks: list[Task], pool: list[Document], n: int, seed: int) -> list[Task]:
    """Each task with `n` paragraphs of `pool` mixed into its documents (seeded per task).

    The gold documents keep their relative order; every piece is renumbered in stream order.
    """
    if n < 0:
        raise DataError(f"num_distractors={n} must be >= 0")
    out = []
    for task in tasks:
        rng = np.random.default_rng([seed, task.task_id])
        picked = [pool[i] for i in rng.choice(len(pool), size=n, replace=n > len(pool))]
        own = [p.split("\n", 2) for p in task.context]  # "Document i:", title, text
        docs = [Document(parts[1], parts[2]) for parts in own] + picked
        order = rng.permutation(len(docs))
        gold = sorted(int(i) for i in np.flatnonzero(order < len(own)))
        mixed = [None] * len(docs)
        for slot, idx in zip(gold, sorted(range(len(own)))):  # gold docs keep their order
            mixed[slot] = docs[idx]
        rest = iter(picked)
        mixed = [d if d is not None else next(rest) for d in mixed]
        out.append(replace(task, context=[render_document(i, d) for i, d in enumerate(mixed, 1)],
                           metadata={**task.metadata, "num_docs": len(mixed)}))
    return out
