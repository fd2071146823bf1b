"""HotpotQA questions from a file, a `datasets` object or the hub, validated into HotpotQARecords.

Two row shapes are accepted, and told apart per row:

- the original release (`hotpot_dev_distractor_v1.json`, a JSON list, or JSONL): `_id`,
  `question`, `answer`, `type`, `level`, `supporting_facts` as `[[title, sent_idx], ...]` and
  `context` as `[[title, [sentences]], ...]`;
- the `datasets` schema (`hotpotqa/hotpot_qa`, config `distractor`): `id`, with `context` as
  `{title: [...], sentences: [[...], ...]}` and `supporting_facts` as
  `{title: [...], sent_id: [...]}`.

A paragraph's text is `"".join(sentences)`: HotpotQA sentences carry their own leading spaces.
The row readers here (`iter_rows`) are shared by the SQuAD and MemAgent loaders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from memgym.data.task import Document
from memgym.errors import DataError

__all__ = [
    "BUNDLED_HOTPOTQA",
    "HOTPOTQA_HUB_ID",
    "HotpotQARecord",
    "iter_rows",
    "load_hotpotqa",
    "parse_hotpotqa_row",
]

BUNDLED_HOTPOTQA = Path(__file__).parent / "bundled" / "hotpotqa_dev_sample.jsonl"
"""The first 20 HotpotQA distractor dev questions (CC BY-SA 4.0; see bundled/README.md)."""

HOTPOTQA_HUB_ID = "hotpotqa/hotpot_qa"
"""The hub id of HotpotQA in the `datasets` schema (config "distractor")."""

_FILE_SUFFIXES = (".json", ".jsonl", ".parquet")


@dataclass(frozen=True)
class HotpotQARecord:
    """One HotpotQA question with its 10 paragraphs (2 gold, 8 distractors in the dev set).

    Attributes:
        id: the HotpotQA id (`_id` / `id`).
        question: the question text.
        answer: the gold answer.
        type: "bridge" or "comparison" ("" when the row has none).
        level: "easy", "medium" or "hard" ("" when the row has none).
        paragraphs: the question's paragraphs exactly as in the file (in order; a title that
            appears twice is kept twice, as MemAgent's document index needs).
        supporting_facts: (title, sentence index) pairs, in file order.
    """

    id: str
    question: str
    answer: str
    type: str
    level: str
    paragraphs: tuple[Document, ...]
    supporting_facts: tuple[tuple[str, int], ...]

    @property
    def supporting_titles(self) -> tuple[str, ...]:
        """Titles of the gold paragraphs, each once, in the order the facts name them."""
        return tuple(dict.fromkeys(title for title, _ in self.supporting_facts))


# -- row readers ----------------------------------------------------------------------------------

def iter_rows(source: Any, *, split: str = "validation",
              hub_config: str | None = None) -> Iterator[tuple[str, Any]]:
    """Yield `(where, row)` for every row of a data source; `where` names file and line/index.

    Args:
        source: a JSON list / JSONL / JSON object / parquet file, a directory saved with
            `datasets.save_to_disk`, a `datasets.Dataset`, a sequence of mappings, or a hub id
            (any string that is not an existing path and does not end in .json/.jsonl/.parquet).
        split: the split to read from a hub id or a saved `DatasetDict`.
        hub_config: the `datasets` config name for hub ids (HotpotQA: "distractor").

    A JSON file whose top level is one object (the official SQuAD release) yields that object
    as a single row.
    """
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if path.is_file():
            if path.suffix == ".parquet":
                yield from _iter_parquet(path)
            else:
                yield from _iter_json(path)
            return
        if path.is_dir():
            yield from _iter_dataset(_load_from_disk(path, split), f"{path} [{split}]")
            return
        text = str(source)
        if text.endswith(_FILE_SUFFIXES) or text.startswith((".", "/", "~")):
            raise DataError(f"data file {text!r} does not exist. Pass an existing path, a "
                            "`datasets` hub id, or data_path=None for the bundled sample.")
        yield from _iter_dataset(_load_hub(text, hub_config, split), f"{text} [{split}]")
        return
    if hasattr(source, "column_names"):  # a datasets.Dataset
        yield from _iter_dataset(source, f"{type(source).__name__}")
        return
    if isinstance(source, Iterable) and not isinstance(source, Mapping):
        for i, row in enumerate(source):
            yield f"rows[{i}]", row
        return
    raise DataError(f"cannot read rows from {type(source).__name__}: pass a file path, a hub id, "
                    "a datasets.Dataset or a list of dicts")


def _iter_json(path: Path) -> Iterator[tuple[str, Any]]:
    if path.suffix != ".jsonl":
        with path.open(encoding="utf-8") as f:
            text = f.read()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":  # "Extra data" means JSON Lines under another suffix
                raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                                f"column {exc.colno})") from exc
        else:
            if isinstance(data, list):
                for i, row in enumerate(data):
                    yield f"{path} index {i}", row
            else:
                yield str(path), data
            return
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} line {lineno}: not valid JSON ({exc.msg} at column "
                                f"{exc.colno})") from exc
            yield f"{path} line {lineno}", row


def _iter_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    i = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=256):
        for row in batch.to_pylist():
            yield f"{path} row {i}", row
            i += 1


def _iter_dataset(dataset: Any, name: str) -> Iterator[tuple[str, Any]]:
    for i, row in enumerate(dataset):
        yield f"{name} row {i}", row


def _load_from_disk(path: Path, split: str) -> Any:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{path}: no split {split!r}; it has {sorted(loaded)}")
        return loaded[split]
    return loaded


def _load_hub(hub_id: str, config: str | None, split: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:  # offline, unknown id, bad split: datasets raises many types
        raise DataError(
            f"could not load {hub_id!r} (config {config!r}, split {split!r}) with "
            f"datasets.load_dataset: {exc}. Pass a local file path, or data_path=None for the "
            "bundled sample."
        ) from exc


# -- HotpotQA rows --------------------------------------------------------------------------------

def _bad(where: str, field: str, problem: str) -> DataError:
    return DataError(f"{where}: field {field!r} {problem}")


def _text(row: Mapping[str, Any], field: str, where: str, *, required: bool = True) -> str:
    if field not in row or row[field] is None:
        if required:
            raise _bad(where, field, "is missing")
        return ""
    value = row[field]
    if not isinstance(value, str):
        raise _bad(where, field, f"must be a string, got {type(value).__name__} {value!r:.60}")
    return value


def _paragraphs(context: Any, where: str) -> list[tuple[str, list[Any]]]:
    """(title, sentences) pairs from either context shape."""
    if isinstance(context, Mapping):  # datasets schema
        titles, sentences = context.get("title"), context.get("sentences")
        if not isinstance(titles, Sequence) or not isinstance(sentences, Sequence) or isinstance(
                titles, str) or len(titles) != len(sentences):
            raise _bad(where, "context", "must hold equal-length lists 'title' and 'sentences'")
        pairs = list(zip(titles, sentences))
    elif isinstance(context, Sequence) and not isinstance(context, str):
        pairs = []
        for j, item in enumerate(context):
            if not (isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2):
                raise _bad(where, "context", f"item {j} must be [title, [sentences]], got "
                           f"{item!r:.80}")
            pairs.append((item[0], item[1]))
    else:
        raise _bad(where, "context", "must be a list of [title, [sentences]] or a dict with "
                   f"'title' and 'sentences', got {type(context).__name__}")
    for j, (title, sents) in enumerate(pairs):
        if not isinstance(title, str):
            raise _bad(where, "context", f"paragraph {j}: title must be a string, got "
                       f"{title!r:.60}")
        if isinstance(sents, str) or not isinstance(sents, Sequence) or not all(
                isinstance(s, str) for s in sents):
            raise _bad(where, "context", f"paragraph {j} ({title!r}): sentences must be a list "
                       "of strings")
    return pairs


def _supporting_facts(facts: Any, where: str) -> list[tuple[str, int]]:
    if isinstance(facts, Mapping):  # datasets schema
        titles, ids = facts.get("title"), facts.get("sent_id")
        if not isinstance(titles, Sequence) or not isinstance(ids, Sequence) or isinstance(
                titles, str) or len(titles) != len(ids):
            raise _bad(where, "supporting_facts", "must hold equal-length lists 'title' and "
                       "'sent_id'")
        pairs = list(zip(titles, ids))
    elif isinstance(facts, Sequence) and not isinstance(facts, str):
        pairs = []
        for j, item in enumerate(facts):
            if not (isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2):
                raise _bad(where, "supporting_facts", f"item {j} must be [title, sentence_index], "
                           f"got {item!r:.80}")
            pairs.append((item[0], item[1]))
    else:
        raise _bad(where, "supporting_facts", "must be a list of [title, sentence_index] or a "
                   f"dict with 'title' and 'sent_id', got {type(facts).__name__}")
    for title, idx in pairs:
        if not isinstance(title, str) or isinstance(idx, bool) or not isinstance(idx, int):
            raise _bad(where, "supporting_facts", f"entry {[title, idx]!r:.80} must be "
                       "[title (string), sentence index (int)]")
    return [(title, int(idx)) for title, idx in pairs]


def parse_hotpotqa_row(row: Any, where: str = "row") -> HotpotQARecord:
    """Validate one HotpotQA row (either schema) into a HotpotQARecord.

    Args:
        row: a mapping in the original or the `datasets` schema.
        where: the row's location (file and line/index) for error messages.

    Raises:
        DataError: naming `where` and the offending field.
    """
    if not isinstance(row, Mapping):
        raise DataError(f"{where}: expected a JSON object (a HotpotQA question), got "
                        f"{type(row).__name__}")
    id_field = "_id" if "_id" in row else "id"
    if id_field not in row:
        raise _bad(where, "_id", "is missing (neither '_id' nor 'id' is present)")
    qid = row[id_field]
    if not isinstance(qid, (str, int)) or isinstance(qid, bool):
        raise _bad(where, id_field, f"must be a string, got {qid!r:.60}")
    if "context" not in row:
        raise _bad(where, "context", "is missing")
    if "supporting_facts" not in row:
        raise _bad(where, "supporting_facts", "is missing")
    paragraphs = tuple(Document(title, "".join(sents))
                       for title, sents in _paragraphs(row["context"], where))
    titles = {doc.title for doc in paragraphs}
    facts = _supporting_facts(row["supporting_facts"], where)
    for title, _ in facts:
        if title not in titles:
            raise _bad(where, "supporting_facts", f"names title {title!r}, which is not among "
                       f"the context titles {[doc.title for doc in paragraphs]}")
    return HotpotQARecord(
        id=str(qid), question=_text(row, "question", where), answer=_text(row, "answer", where),
        type=_text(row, "type", where, required=False),
        level=_text(row, "level", where, required=False),
        paragraphs=paragraphs, supporting_facts=tuple(facts),
    )


def load_hotpotqa(source: Any = None, *, split: str = "validation",
                  limit: int | None = None) -> list[HotpotQARecord]:
    """Load HotpotQA questions (original or `datasets` schema) into validated records.

    Args:
        source: None for the bundled 20-question dev sample; a JSON list / JSONL / parquet file
            or a directory saved with `datasets`; a `datasets.Dataset` or list of row dicts; or
            a hub id such as "hotpotqa/hotpot_qa", read with
            `datasets.load_dataset(hub_id, "distractor", split=split)`.
        split: the split for hub ids and saved DatasetDicts.
        limit: read only the first `limit` rows.

    Raises:
        DataError: a malformed row, naming the file, line (JSONL) or index (JSON list), and field.
    """
    rows = iter_rows(BUNDLED_HOTPOTQA if source is None else source, split=split,
                     hub_config="distractor")
    if limit is not None:
        rows = islice(rows, limit)
    records = [parse_hotpotqa_row(row, where) for where, row in rows]
    if not records:
        raise DataError(f"{source or BUNDLED_HOTPOTQA}: holds no HotpotQA questions")
    return records
