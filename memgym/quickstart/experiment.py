"""The quickstart experiment's fixed settings: the task, its splits, and the sampling used to score.

One place for every number the build script, the quickstart and the GPU recipe share, so the
embedded model is trained, evaluated and reported on exactly the same task definition.

The task is memgym's synthetic memory task (`MemAgent-Synthetic-v0`): facts "The code of blue
llama is 481." scattered through filler, each queried key updated later in the stream ("... changed
to 234."), distractor keys sharing a word with the queried one. The agent is MemAgent: it reads
32-token chunks (the model's own tokens) into a 48-token overwrite memory and answers in
`\\boxed{}`. Splits never share tasks: each uses its own generation seed.
"""

from __future__ import annotations

from typing import Any

ENV_ID = "MemAgent-Synthetic-v0"

ENV_KWARGS: dict[str, Any] = {"chunk_tokens": 32, "memory_tokens": 48, "memory_overflow": "truncate"}
"""Env settings shared by every split (token counts use the embedded model's tokenizer)."""

IN_DOMAIN: dict[str, Any] = dict(num_keys=3, num_updates=1, num_distractor_facts=1,
                                 filler_sentences=8, combine=False, similar_keys=True)
"""The GRPO training distribution: one queried key, updated once, 3 keys, ~4 chunks."""

SPLITS: dict[str, dict[str, Any]] = {
    # GRPO samples its tasks from here.
    "train": dict(IN_DOMAIN, seed=1),
    # Held out: same distribution, other tasks.
    "in_domain": dict(IN_DOMAIN, seed=1001),
    # Longer streams than the model ever trained on (SFT saw 4-16 filler sentences, GRPO 8).
    "ood_longer": dict(IN_DOMAIN, filler_sentences=28, seed=1002),
    # Values updated twice before the question (SFT and GRPO only ever saw one update).
    "ood_two_updates": dict(IN_DOMAIN, num_updates=2, seed=1004),
    # Another task family: two keys asked at once; GRPO never trains on it.
    "ood_two_keys": dict(IN_DOMAIN, num_keys=4, combine=True, seed=1003),
}

EVAL_SPLITS = ("in_domain", "ood_longer", "ood_two_updates", "ood_two_keys")

SFT_SEED = 7
"""The build script's task seed (disjoint from every split above)."""

EVAL_SAMPLING: dict[str, Any] = {"temperature": 0.7, "top_p": 0.95}
"""MemAgent's evaluation sampling, used for every evaluation (base, trained) alike."""

MEMORY_MAX_NEW_TOKENS = 48
ANSWER_MAX_NEW_TOKENS = 16


def agent_recipe(**overrides: Any) -> dict[str, Any]:
    """The MemAgent recipe the quickstart plays (MemAgent's prompts, small token caps)."""
    recipe: dict[str, Any] = {
        "kind": "memagent", "name": "memagent-tiny",
        "memory_max_new_tokens": MEMORY_MAX_NEW_TOKENS,
        "answer_max_new_tokens": ANSWER_MAX_NEW_TOKENS, **EVAL_SAMPLING,
    }
    recipe.update(overrides)
    return recipe


def split_env_kwargs(split: str, **extra: Any) -> dict[str, Any]:
    """gym.make kwargs of a split: the task knobs, its seed and the shared env settings."""
    return {**ENV_KWARGS, **SPLITS[split], **extra}


EVAL_TASKS = 128
"""Held-out tasks per evaluation split (95% CI half-width about 0.09 at 50% accuracy)."""

TRAIN_TASKS = 2000
"""Tasks in the GRPO training split (seed 1); the trainer samples without replacement."""

ROLLOUT_SAMPLING: dict[str, Any] = {"temperature": 1.0, "top_p": 1.0}
"""GRPO samples its groups at temperature 1 (exploration); evaluation uses EVAL_SAMPLING."""

ORACLE_RECIPE: dict[str, Any] = {
    "kind": "scripted_policy", "name": "oracle_memory_policy",
    "memory_fn": "memgym.data.synthetic:oracle_memory",
    "answer_fn": "memgym.data.synthetic:oracle_answer",
}
"""The scripted policy that keeps exactly the needed facts: the ceiling of the table."""

GRPO: dict[str, Any] = {
    "env_id": ENV_ID,
    "model": "embedded",
    "use_lora": False,          # full fine-tuning: the model is smaller than a useful adapter
    "learning_rate": 2e-4,
    "lr_scheduler_type": "constant",
    "loss_type": "dapo",
    "beta": 0.0,
    "epsilon": 0.2,
    "epsilon_high": 0.28,
    "scale_rewards": "group",
    "tasks_per_step": 16,
    "num_generations": 8,
    "max_steps": 40,
    "max_completion_length": MEMORY_MAX_NEW_TOKENS,
    "temperature": 1.0,
    "top_p": 1.0,
    "seed": 42,
    "save_steps": 20,
    "save_total_limit": 1,
    "logging_steps": 1,
    "eval_steps": 0,
    "eval_tasks": 0,
}
"""The GRPO settings of the quickstart (train/quickstart.yaml holds the same values, checked by
tests/quickstart/test_experiment.py)."""
