"""SQuAD over distractor paragraphs: RULER's qa_1 construction, MemAgent's out-of-domain task.

A question keeps its own paragraph (the gold document), then takes the other paragraphs of its
article (RULER's hard distractors), then random paragraphs of other articles, up to `num_docs`
documents or `target_tokens` tokens; the documents are shuffled with a fixed seed and rendered
"Document i:\\n<title>\\n<text>" as in RULER-HQA. Every gold answer text is kept (scorers take the
best match); SQuAD 2.0's unanswerable questions are skipped.

The question the agent sees follows `template_variant`: "memagent" (the default; MemAgent's qa
template for its OOD table, "Answer the question based on the given documents. {question}"),
"ruler" (RULER's qa template without its context: `memgym.data.ruler.RULER_TEMPLATES["qa"]`)
or "plain" (the bare SQuAD question, memgym's earlier default).

Contexts are lazy (`DocumentContext`): each paragraph is stored once, whatever the length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memgym.data.hotpotqa import BUNDLED_HOTPOTQA, iter_rows, load_hotpotqa
from memgym.data.ruler import ruler_prompt
from memgym.data.ruler_hqa import ComposedTasks, QuestionPlan, hotpotqa_pool
from memgym.data.task import Document, Task
from memgym.errors import ConfigError, DataError
from memgym.tokenizers import load_token_counter

__all__ = ["BUNDLED_SQUAD", "SQUAD_HUB_ID", "SQUAD_TEMPLATE_VARIANTS", "SquadRecord",
           "load_squad", "squad_question", "squad_tasks"]

BUNDLED_SQUAD = Path(__file__).parent / "bundled" / "squad_dev_sample.jsonl"
"""30 SQuAD v1.1 dev questions over 10 paragraphs (CC BY-SA 4.0; see bundled/README.md)."""

SQUAD_HUB_ID = "rajpurkar/squad"
"""The hub id of SQuAD v1.1 (`rajpurkar/squad_v2` is SQuAD 2.0)."""

SQUAD_TEMPLATE_VARIANTS: tuple[str, ...] = ("memagent", "ruler", "plain")
"""Question wordings: MemAgent's qa template, RULER's qa template, or the bare question."""


def squad_question(question: str, template_variant: str = "memagent") -> str:
    """The question an agent is asked for SQuAD `question` under `template_variant`."""
    if template_variant not in SQUAD_TEMPLATE_VARIANTS:
        raise ConfigError(f"template_variant={template_variant!r}: expected one of "
                          f"{', '.join(map(repr, SQUAD_TEMPLATE_VARIANTS))} (MemAgent's qa "
                          "template, RULER's, or the bare question)")
    if template_variant == "plain":
        return question
    return ruler_prompt("qa", template_variant, query=question).question


@dataclass(frozen=True)
class SquadRecord:
    """One answerable SQuAD question.

    Attributes:
        id: the SQuAD question id.
        title: the Wikipedia article title.
        context: the paragraph holding the answer.
        question: the question text.
        answers: every distinct gold answer text, in annotation order.
    """

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...]


def _bad(where: str, field: str, problem: str) -> DataError:
    return DataError(f"{where}: field {field!r} {problem}")


def _string(row: Mapping[str, Any], field: str, where: str) -> str:
    if field not in row or row[field] is None:
        raise _bad(where, field, "is missing")
    value = row[field]
    if not isinstance(value, str):
        raise _bad(where, field, f"must be a string, got {type(value).__name__} {value!r:.60}")
    return value


def _answer_texts(answers: Any, where: str) -> tuple[str, ...]:
    """Answer texts from `{text: [...], answer_start: [...]}` or a list of `{text, ...}` dicts."""
    if isinstance(answers, Mapping):
        texts = answers.get("text")
    elif isinstance(answers, Sequence) and not isinstance(answers, str):
        texts = [a.get("text") if isinstance(a, Mapping) else a for a in answers]
    else:
        texts = None
    if (texts is None or isinstance(texts, str) or not isinstance(texts, Sequence)
            or not all(isinstance(t, str) for t in texts)):
        raise _bad(where, "answers", "must be {'text': [...], 'answer_start': [...]} or a list "
                   f"of {{'text': ..., 'answer_start': ...}}, got {answers!r:.80}")
    return tuple(dict.fromkeys(texts))


def _flat_record(row: Any, where: str) -> SquadRecord | None:
    """A row in the `datasets` flat schema; None for an unanswerable (SQuAD 2.0) question."""
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected a JSON object (a SQuAD question), got "
                        f"{type(row).__name__}")
    if "answers" not in row:
        raise _bad(where, "answers", "is missing")
    answers = _answer_texts(row["answers"], where)
    qid = row.get("id")
    if not isinstance(qid, str):
        raise _bad(where, "id", f"must be a string, got {qid!r:.60}")
    record = SquadRecord(id=qid, title=_string(row, "title", where),
                         context=_string(row, "context", where),
                         question=_string(row, "question", where), answers=answers)
    return record if answers and not row.get("is_impossible", False) else None


def _official_records(data: Mapping[str, Any], where: str) -> list[SquadRecord]:
    """Rows of the official release: `data[].paragraphs[].qas[]` (v1.1 and v2.0)."""
    articles = data.get("data")
    if not isinstance(articles, list):
        raise _bad(where, "data", "must be the list of articles of the official SQuAD JSON")
    records = []
    for a, article in enumerate(articles):
        at = f"{where} data[{a}]"
        if not isinstance(article, Mapping):
            raise DataError(f"{at}: expected an article object")
        title = _string(article, "title", at)
        paragraphs = article.get("paragraphs")
        if not isinstance(paragraphs, list):
            raise _bad(at, "paragraphs", "must be a list")
        for p, paragraph in enumerate(paragraphs):
            pt = f"{at}.paragraphs[{p}]"
            if not isinstance(paragraph, Mapping):
                raise DataError(f"{pt}: expected a paragraph object")
            context = _string(paragraph, "context", pt)
            qas = paragraph.get("qas")
            if not isinstance(qas, list):
                raise _bad(pt, "qas", "must be a list")
            for q, qa in enumerate(qas):
                if not isinstance(qa, Mapping):
                    raise DataError(f"{pt}.qas[{q}]: expected a question object")
                record = _flat_record({**qa, "title": title, "context": context},
                                      f"{pt}.qas[{q}]")
                if record is not None:
                    records.append(record)
    return records


def load_squad(source: Any = None, *, split: str = "validation") -> list[SquadRecord]:
    """Load answerable SQuAD questions from the official JSON, flat JSONL, `datasets` or the hub.

    Args:
        source: None for the bundled 30-question dev sample; the official `dev-v1.1.json` /
            `dev-v2.0.json`; a JSONL, JSON list or parquet of flat rows (`id`, `title`,
            `context`, `question`, `answers` = {text: [...], answer_start: [...]}); a
            `datasets.Dataset`; or a hub id such as "rajpurkar/squad", read with
            `datasets.load_dataset(hub_id, split=split)`.
        split: the split for hub ids.

    Raises:
        DataError: a malformed row, naming file, line/index (or article/paragraph/question path)
            and field; or a source without a single answerable question.
    """
    records: list[SquadRecord] = []
    for where, row in iter_rows(BUNDLED_SQUAD if source is None else source, split=split):
        if isinstance(row, Mapping) and "data" in row and "question" not in row:
            records.extend(_official_records(row, where))
        else:
            record = _flat_record(row, where)
            if record is not None:
                records.append(record)
    if not records:
        raise DataError(f"{source or BUNDLED_SQUAD}: holds no answerable SQuAD questions")
    return records


def squad_tasks(data_path: Any = None, *, split: str = "validation", num_docs: int = 50,
                target_tokens: int | None = None, limit: int | None = None, seed: int = 42,
                tokenizer: Any = None, pool: Sequence[Document] | None = None,
                template_variant: str = "memagent") -> Sequence[Task]:
    """SQuAD tasks over distractor paragraphs (what MemAgent-SQuAD-v0 plays).

    Args:
        data_path: see `load_squad`; None uses the bundled sample, whose 10 paragraphs are
            topped up with the bundled HotpotQA paragraphs (real Wikipedia text) as far
            distractors, so that the default 50 documents can be reached offline.
        split: the split of a hub id.
        num_docs: documents per context, the question's own paragraph included.
        target_tokens: compose to this many tokens instead of num_docs.
        limit: only the first `limit` questions become tasks (the pool keeps every paragraph).
        seed: composition and shuffle seed; task t depends only on (seed, t).
        tokenizer: what counts tokens for target_tokens (see `load_token_counter`).
        pool: extra distractor Documents, drawn at random alongside the file's paragraphs.
        template_variant: "memagent", "ruler" or "plain" (see `squad_question`).

    Returns:
        A lazy `Sequence[Task]`: task_type "squad", gold_context the question's own paragraph,
        metadata source, squad_id, title, squad_question (the bare question),
        template_variant, num_docs, seed.
    """
    squad_question("", template_variant)  # validate before reading anything
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise ConfigError(f"limit={limit!r}: expected a positive integer or None")
    records = load_squad(data_path, split=split)
    if data_path is None and pool is None:
        pool = hotpotqa_pool(load_hotpotqa(BUNDLED_HOTPOTQA))
    label = "SQuAD (bundled sample)" if data_path is None else str(data_path)

    # Paragraphs are deduplicated by text (an article title covers many paragraphs).
    docs: list[Document] = []
    index: dict[str, int] = {}
    article: dict[str, list[int]] = {}
    paragraph_of = []
    for record in records:
        idx = index.get(record.context)
        if idx is None:
            idx = index[record.context] = len(docs)
            docs.append(Document(record.title, record.context))
            article.setdefault(record.title, []).append(idx)
        paragraph_of.append(idx)
    for i, doc in enumerate(pool or ()):
        if not isinstance(doc, Document):
            raise ConfigError(f"pool[{i}] is a {type(doc).__name__}; pool= takes "
                              "memgym.data.task.Document objects")
        if doc.text not in index:
            index[doc.text] = len(docs)
            docs.append(doc)

    arrays: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # shared per paragraph
    plans = []
    for record, idx in zip(records[:limit], paragraph_of[:limit]):
        if idx not in arrays:
            siblings = [i for i in article[docs[idx].title] if i != idx]
            arrays[idx] = (np.array([idx], np.int32), np.array(siblings, np.int32),
                           np.array(sorted([idx, *siblings]), np.int32))
        gold, related, exclude = arrays[idx]
        plans.append(QuestionPlan(
            question=squad_question(record.question, template_variant), answers=record.answers,
            gold=gold, related=related, exclude=exclude, task_type="squad",
            metadata={"source": label, "squad_id": record.id, "title": record.title,
                      "squad_question": record.question, "template_variant": template_variant},
        ))
    return ComposedTasks(
        docs, len(docs), plans, num_docs=None if target_tokens else num_docs,
        target_tokens=target_tokens, seed=seed, counter=load_token_counter(tokenizer),
        unavailable_fix=("use a bigger SQuAD file (the v1.1 dev set has 2,067 paragraphs), or "
                         "pass pool= more distractor Documents"),
    )
