"""jsonl-qa: a memgym memory task (written by `memgym envs new jsonl-qa`; edit freely).

`import memgym` registers `JsonlQa-v0` through the `memgym.envs` entry point once this package is
installed (`pip install -e .`); without installing, call `jsonl_qa.register()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

ENV_ID = "JsonlQa-v0"
DATA = Path(__file__).parent / "data" / "tasks.jsonl"
"""The example tasks shipped with the package (replace them with yours)."""


DISTRACTORS = Path(__file__).parent / "data" / "distractors.jsonl"
"""Example distractor paragraphs, one {"title", "text"} object a line."""


def make_env(data_path: str | None = None, distractors_path: str | None = None,
             num_distractors: int = 0, seed: int = 0, **env_kwargs: Any):
    """The env: each task's documents, padded with distractors, streamed into an overwrite memory.

    The example of the authoring guide: a long-context task from a user's JSONL file. Each task's
    own documents are mixed with `num_distractors` paragraphs drawn from `distractors_path` (a
    fixed shuffle per task from `seed`), so the same questions can be asked over longer contexts.

    Args:
        data_path: a JSONL file of tasks (see `jsonl_qa.tasks.load_tasks`); default: DATA.
        distractors_path: a JSONL file of paragraphs; default: DISTRACTORS.
        num_distractors: distractor paragraphs added to every task (0: none).
        seed: the draw and shuffle seed.
        **env_kwargs: `memgym.envs.long_context.LongContextMemoryEnv` arguments (chunk_tokens,
            memory_tokens, scorer, answer_format, reward_weights, tokenizer, ...).
    """
    from jsonl_qa.tasks import load_paragraphs, load_tasks, with_distractors
    from memgym.envs.long_context import LongContextMemoryEnv

    path = Path(data_path) if data_path is not None else DATA
    tasks = load_tasks(path)
    if num_distractors:
        pool = load_paragraphs(Path(distractors_path) if distractors_path else DISTRACTORS)
        tasks = with_distractors(tasks, pool, num_distractors, seed)
    env_kwargs.setdefault("scorer", "sub_em")
    env_kwargs.setdefault("chunk_tokens", 64)
    env_kwargs.setdefault("memory_tokens", 64)
    return LongContextMemoryEnv(tasks, source=f"jsonl-qa {path}", **env_kwargs)


def register() -> dict[str, str]:
    """Register `JsonlQa-v0` with Gymnasium (idempotent); the `memgym.envs` entry point calls it."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="jsonl_qa:make_env")
    return {ENV_ID: "jsonl-qa: questions over a JSONL file's documents plus distractors"}
