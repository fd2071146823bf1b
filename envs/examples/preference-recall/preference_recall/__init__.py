"""preference-recall: a memgym memory task (started with `memgym envs new preference-recall`).

A user states preferences across a chat stream ("I really like X as my favourite food.", later
"Actually, I now prefer Y for food."), with other categories and friends' tastes in between;
the question asks for the user's latest preference in one category (exact match after
normalisation). `import memgym` registers `PreferenceRecall-v0` through the `memgym.envs` entry
point once this package is installed (`pip install -e .`); without installing, importing this
package registers it (so `memgym eval --env preference_recall:PreferenceRecall-v0` works from
this folder), as does `preference_recall.register()`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

ENV_ID = "PreferenceRecall-v0"


def make_env(num_tasks: int = 50, num_turns: int = 40, max_updates: int = 3, seed: int = 0,
             **env_kwargs: Any):
    """The env: each task's chat lines streamed in chunks into an overwrite memory, then its question.

    Args:
        num_tasks: how many tasks (task ids 0..num_tasks-1).
        num_turns: chat lines per task (one piece each).
        max_updates: task t's asked preference is changed `t % (max_updates + 1)` times.
        seed: the generator seed (task t is the same for the same seed).
        **env_kwargs: `memgym.envs.long_context.LongContextMemoryEnv` arguments (chunk_tokens,
            memory_tokens, scorer, answer_format, reward_weights, tokenizer, ...).
    """
    from memgym.envs.long_context import LongContextMemoryEnv

    from preference_recall.tasks import PreferenceTasks

    tasks = PreferenceTasks(num_tasks=num_tasks, num_turns=num_turns, max_updates=max_updates,
                            seed=seed)
    env_kwargs.setdefault("scorer", "exact_match")
    env_kwargs.setdefault("chunk_tokens", 64)
    env_kwargs.setdefault("memory_tokens", 64)
    return LongContextMemoryEnv(tasks, source=f"preference-recall seed={seed}", **env_kwargs)


def register() -> dict[str, str]:
    """Register `PreferenceRecall-v0` with Gymnasium (idempotent); the `memgym.envs` entry point calls it."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="preference_recall:make_env")
    return {ENV_ID: "preference-recall: a user's latest stated preference in a chat stream "
                    "(corrections, friends' decoys; exact match)"}


# Importing the package registers the id too, so `memgym eval --env
# preference_recall:PreferenceRecall-v0` works uninstalled (that form only imports the module).
register()
