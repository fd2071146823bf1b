"""dialogue-recall: multi-session conversations streamed turn by turn (a memgym example).

`import memgym` registers `DialogueRecall-v0` through the `memgym.envs` entry point once this
package is installed; without installing, call `dialogue_recall.register()`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

ENV_ID = "DialogueRecall-v0"


def make_env(num_tasks: int = 64, num_sessions: int = 4, turns_per_session: int = 6,
             corrections: bool = True, seed: int = 0, **env_kwargs: Any):
    """Conversations of two people over several sessions; recall what one of them said.

    Each turn is one context piece ("[Session 2, 14 May 2023] Maria: ..."), so chunks end at turn
    boundaries when they fit. Scored by token F1 (LoCoMo's metric) on the boxed answer.

    Args:
        num_tasks: conversations (task t is generated from (seed, t) only).
        num_sessions: sessions per conversation.
        turns_per_session: turns per session (the fact and its correction are among them).
        corrections: whether the speaker later corrects the fact (the answer is the latest).
        seed: generation seed.
        **env_kwargs: `LongContextMemoryEnv` arguments (chunk_tokens, memory_tokens, scorer, ...).
    """
    from dialogue_recall.conversations import Conversations
    from memgym.envs.long_context import LongContextMemoryEnv

    tasks = Conversations(num_tasks, num_sessions=num_sessions,
                          turns_per_session=turns_per_session, corrections=corrections, seed=seed)
    env_kwargs.setdefault("scorer", "f1")
    env_kwargs.setdefault("chunk_tokens", 96)
    env_kwargs.setdefault("memory_tokens", 64)
    return LongContextMemoryEnv(tasks, source=f"dialogue-recall seed {seed}", **env_kwargs)


def register() -> dict[str, str]:
    """Register `DialogueRecall-v0` (idempotent); the `memgym.envs` entry point calls it."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="dialogue_recall:make_env")
    return {ENV_ID: "dialogue-recall: what a speaker said sessions ago (latest correction wins)"}
