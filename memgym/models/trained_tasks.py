"""Which tasks a named model was trained on, so that evaluating it on them warns.

A model fine-tuned by memgym (an `adapter` model) ships the record of its training tasks next to
its adapter: `trained_tasks.json` in memgym/assets/<adapter>/, written by the script that made
the adapter. It holds one fingerprint per training task (its question and gold answers, hashed:
the distractor documents and the chunking do not matter, a question seen in training is not
held out), so the check needs no training data at evaluation time:

    >>> trained_tasks_overlap("smollm2-135m-memagent", "MemAgent-HotpotQA-v0", {}, 20)
    [0, 1, ..., 19]          # the bundled HotpotQA sample is its SFT data

`memgym eval` calls `warn_if_trained_on` before it runs.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from memgym.models.registry import MODELS, adapter_folder, local_folder

__all__ = ["TRAINED_TASKS_FILE", "task_fingerprint", "trained_fingerprints",
           "trained_tasks_overlap", "warn_if_trained_on", "write_trained_tasks"]

TRAINED_TASKS_FILE = "trained_tasks.json"
"""The record's file name inside an adapter's folder."""


def task_fingerprint(question: str, answers: Sequence[str]) -> str:
    """A short stable hash of a task's question and gold answers (whitespace-normalised)."""
    text = "\x1f".join(" ".join(part.split()) for part in (question, *answers))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def write_trained_tasks(folder: Path, sources: Mapping[str, Iterable[Any]]) -> Path:
    """Write `folder`/trained_tasks.json: per source (e.g. "MemAgent-HotpotQA-v0 bundled"), the
    fingerprints of its tasks (objects with `question` and `answers`)."""
    record = {name: sorted({task_fingerprint(t.question, t.answers) for t in tasks})
              for name, tasks in sources.items()}
    path = Path(folder) / TRAINED_TASKS_FILE
    path.write_text(json.dumps({"fingerprint": "sha256 of question and answers, 16 hex",
                                "sources": record}, indent=1) + "\n")
    return path


def _named(model: str | None) -> str | None:
    """The named adapter model that `model` (a name or its prepared folder) is, if any."""
    if not model:
        return None
    for name, spec in MODELS.items():
        if spec.kind != "adapter":
            continue
        if model == name or Path(model).expanduser().resolve() == local_folder(name).resolve():
            return name
    return None


def trained_fingerprints(model: str | None) -> set[str]:
    """The fingerprints of the tasks `model` was trained on (empty: no record, or not a model
    memgym fine-tuned)."""
    name = _named(model)
    if name is None:
        return set()
    path = adapter_folder(name) / TRAINED_TASKS_FILE
    if not path.is_file():
        return set()
    sources = json.loads(path.read_text()).get("sources", {})
    return {fp for fingerprints in sources.values() for fp in fingerprints}


def trained_tasks_overlap(model: str | None, env_id: str, env_kwargs: Mapping[str, Any],
                          episodes: int | None) -> list[int]:
    """Task ids among the first `episodes` (all if None) of `gym.make(env_id, **env_kwargs)`
    whose question and answers are among `model`'s training tasks."""
    trained = trained_fingerprints(model)
    if not trained:
        return []
    import gymnasium as gym

    env = gym.make(env_id, **env_kwargs)
    try:
        tasks = getattr(env.unwrapped, "tasks", None)
        if tasks is None:  # an env without a task list (nothing to compare)
            return []
        n = len(tasks) if episodes is None else min(episodes, len(tasks))
        return [t for t in range(n)
                if task_fingerprint(tasks[t].question, tasks[t].answers) in trained]
    finally:
        env.close()


def _ranges(ids: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    parts, start = [], ids[0]
    for prev, cur in zip(ids, ids[1:] + [None]):
        if cur != prev + 1:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(parts)


def warn_if_trained_on(model: str | None, env_id: str, env_kwargs: Mapping[str, Any],
                       episodes: int | None, stream: TextIO | None = None) -> str | None:
    """Print (to stderr) and return a warning when `model` was trained on tasks of this run."""
    overlap = trained_tasks_overlap(model, env_id, env_kwargs, episodes)
    if not overlap:
        return None
    message = (f"warning: {model} was trained on {len(overlap)} of the tasks this run evaluates "
               f"(task ids {_ranges(overlap)} of {env_id}: the same question and answer as its "
               f"training data, listed in {TRAINED_TASKS_FILE} beside its adapter), so its score "
               "there is not a held-out score; evaluate it on other data (e.g. MemAgent-SQuAD-v0, "
               "or --env-kwargs data_path=FILE with other questions)")
    print(message, file=stream or sys.stderr, flush=True)
    return message
