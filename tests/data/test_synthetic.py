"""The synthetic memory task (memgym.data.synthetic): determinism, laziness and pickling; task
structure (updates change values, similar distractor keys, gold facts); the difficulty knob and
explicit overrides; bad knobs; and, through a real env (directly and via gym.make), that the
scripted oracle scores 1.0 while keeping nothing scores near chance and keeping the first value
seen fails on updated keys."""

from __future__ import annotations

import pickle
import random
import re
import statistics

import gymnasium as gym
import pytest

import memgym  # noqa: F401  (registers the env ids)
from memgym.data.synthetic import (
    DIFFICULTIES,
    oracle_answer,
    oracle_memory,
    queried_keys,
    synthetic_tasks,
)
from memgym.envs.long_context import LongContextMemoryEnv
from memgym.errors import ConfigError, DataError

FACT = re.compile(r"The code of (\w+ \w+) (is|changed to) (\d+)\.")


def play(env, memory_policy, answer_policy, task_id: int) -> float:
    """One episode; returns the accuracy component of the final reward."""
    obs, _ = env.reset(seed=0, options={"task_id": task_id})
    while True:
        if obs["phase"] == "update":
            action = memory_policy(obs["question"], obs["memory"], obs["chunk"])
        else:
            action = answer_policy(obs["question"], obs["memory"])
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            assert reward == pytest.approx(info["reward_components"]["accuracy"])
            return info["reward_components"]["accuracy"]


def mean_score(env, memory_policy, answer_policy, n: int) -> float:
    return statistics.mean(play(env, memory_policy, answer_policy, t) for t in range(n))


# -- generation ---------------------------------------------------------------------------------
def test_task_t_depends_only_on_seed_and_t():
    a, b = synthetic_tasks(num_tasks=50, seed=4), synthetic_tasks(num_tasks=50, seed=4)
    assert a[17] == b[17] and a[0] == b[0]
    assert a[17] != a[18]
    assert synthetic_tasks(num_tasks=50, seed=5)[17] != a[17]


def test_sequence_is_lazy_indexable_and_pickles():
    tasks = synthetic_tasks(num_tasks=5, difficulty=4, seed=2)
    assert len(tasks) == 5 and tasks[-1] == tasks[4]
    assert [t.task_id for t in tasks[1:4]] == [1, 2, 3]
    with pytest.raises(IndexError):
        tasks[5]
    blob = pickle.dumps(tasks)
    assert len(blob) < 2048
    assert [t for t in pickle.loads(blob)] == list(tasks)


@pytest.mark.parametrize("difficulty", [1, 2, 3, 4, 5])
def test_task_structure(difficulty):
    knobs = DIFFICULTIES[difficulty]
    for task in synthetic_tasks(num_tasks=30, difficulty=difficulty, seed=1):
        asked = queried_keys(task.question)
        assert list(asked) == task.metadata["queried_keys"]
        assert len(asked) == (2 if knobs["combine"] else 1)
        facts = [FACT.fullmatch(s) for s in task.context]
        assert all(s.endswith(".") for s in task.context)
        history: dict[str, list[str]] = {}
        for m in filter(None, facts):
            key, verb, value = m.groups()
            assert (verb == "is") == (key not in history)  # a key's first fact comes first
            if key in history:
                assert value != history[key][-1]  # an update always changes the value
            history.setdefault(key, []).append(value)
        assert len(history) == knobs["num_keys"]
        for key in asked:
            assert len(history[key]) == knobs["num_updates"] + 1
        others = sum(len(v) for k, v in history.items() if k not in asked)
        assert others == knobs["num_keys"] - len(asked) + knobs["num_distractor_facts"]
        assert len(task.context) - sum(map(bool, facts)) == knobs["filler_sentences"]
        assert task.answers == (" ".join(history[k][-1] for k in asked),)
        last = [max(i for i, m in enumerate(facts) if m and m.group(1) == k) for k in asked]
        assert task.gold_context == tuple(task.context[i] for i in sorted(last))
        if knobs["similar_keys"]:
            words = {w for k in asked for w in k.split()}
            assert all(words & set(k.split()) for k in history)
        assert task.scorer == "exact_match"


def test_difficulty_is_monotonic_in_length_and_keys():
    lengths, keys = [], []
    for difficulty in range(1, 6):
        tasks = synthetic_tasks(num_tasks=20, difficulty=difficulty)
        lengths.append(statistics.mean(len(" ".join(t.context).split()) for t in tasks))
        keys.append(tasks[0].metadata["num_keys"])
    assert lengths == sorted(lengths) and len(set(lengths)) == 5
    assert keys == sorted(keys)


def test_explicit_knobs_override_the_difficulty():
    tasks = synthetic_tasks(num_tasks=3, difficulty=5, filler_sentences=0, combine=False)
    task = tasks[0]
    assert task.metadata["filler_sentences"] == 0 and task.metadata["num_keys"] == 8
    assert len(queried_keys(task.question)) == 1
    default = synthetic_tasks(num_tasks=1)
    assert default[0].metadata["num_keys"] == 4 and default[0].metadata["num_updates"] == 1


@pytest.mark.parametrize("kwargs,knob", [
    ({"difficulty": 0}, "difficulty"), ({"difficulty": 6}, "difficulty"),
    ({"difficulty": True}, "difficulty"), ({"num_tasks": 0}, "num_tasks"),
    ({"seed": "x"}, "seed"), ({"num_keys": 0}, "num_keys"),
    ({"num_keys": 1, "combine": True}, "num_keys"), ({"num_keys": 1000}, "num_keys"),
    ({"num_updates": -1}, "num_updates"), ({"num_updates": 1.5}, "num_updates"),
    ({"num_distractor_facts": -1}, "num_distractor_facts"),
    ({"num_keys": 1, "num_distractor_facts": 2}, "num_distractor_facts"),
    ({"filler_sentences": -2}, "filler_sentences"), ({"combine": "yes"}, "combine"),
    ({"similar_keys": 1}, "similar_keys")])
def test_bad_knobs_raise_config_error_naming_the_knob(kwargs, knob):
    with pytest.raises(ConfigError, match=knob):
        synthetic_tasks(**kwargs)


def test_foreign_questions_are_rejected():
    with pytest.raises(DataError, match="synthetic-task question"):
        queried_keys("Who wrote Hamlet?")


# -- the oracle and baselines through a real env ------------------------------------------------
@pytest.mark.parametrize("difficulty,chunk_tokens", [(1, 16), (3, 7), (3, 32), (5, 12)])
def test_oracle_scores_one_on_every_task(difficulty, chunk_tokens):
    tasks = synthetic_tasks(num_tasks=200, difficulty=difficulty, seed=11)
    # 7-token chunks are shorter than a fact: facts straddle chunks and the oracle carries them.
    env = LongContextMemoryEnv(tasks, chunk_tokens=chunk_tokens, memory_tokens=64,
                               scorer="exact_match")
    assert mean_score(env, oracle_memory, oracle_answer, 200) == 1.0


def test_oracle_memory_holds_exactly_the_latest_queried_facts():
    tasks = synthetic_tasks(num_tasks=20, difficulty=5)
    env = LongContextMemoryEnv(tasks, chunk_tokens=10, memory_tokens=64)
    for t, task in enumerate(tasks):
        obs, _ = env.reset(options={"task_id": t})
        while obs["phase"] == "update":
            obs, *_ = env.step(oracle_memory(obs["question"], obs["memory"], obs["chunk"]))
        history = task.metadata["value_history"]
        assert obs["memory"] == "\n".join(f"{k}: {history[k][-1]}" for k in history)


def test_oracle_handles_mid_word_cuts_of_a_bpe_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(["The code of"], trainers.BpeTrainer(
        vocab_size=270, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))  # nearly byte-level: chunks end mid-word and mid-number
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok)
    tasks = synthetic_tasks(num_tasks=40, difficulty=4)
    env = LongContextMemoryEnv(tasks, chunk_tokens=23, memory_tokens=200, tokenizer=tokenizer,
                               scorer="exact_match")
    assert mean_score(env, oracle_memory, oracle_answer, 40) == 1.0


def test_oracle_through_gym_make():
    env = gym.make("MemAgent-Synthetic-v0", num_tasks=200, difficulty=4, seed=3,
                   chunk_tokens=24, memory_tokens=64)
    assert env.unwrapped.tasks.difficulty == 4
    assert mean_score(env, oracle_memory, oracle_answer, 200) == 1.0
    env.close()


def test_keeping_nothing_scores_near_chance():
    env = gym.make("MemAgent-Synthetic-v0", num_tasks=200, difficulty=3, chunk_tokens=24)
    rng = random.Random(0)
    score = mean_score(env, lambda q, m, c: "",
                       lambda q, m: f"\\boxed{{{rng.randint(100, 999)}}}", 200)
    assert score <= 0.02  # a blind guess of a 3-digit code is right 1/900 of the time
    env.close()


def keep_first_value(question: str, memory: str, chunk: str) -> str:
    """A memory that records each queried key's first value and ignores later changes."""
    known = dict(line.split(": ") for line in memory.splitlines() if ": " in line)
    asked = queried_keys(question)
    for key, _, value in FACT.findall(chunk):
        if key in asked and key not in known:
            known[key] = value
    return "\n".join(f"{k}: {known[k]}" for k in asked if k in known)


def test_keeping_the_first_value_fails_exactly_on_updated_keys():
    # One chunk holds the whole context, so only the update policy differs from the oracle.
    static = LongContextMemoryEnv(synthetic_tasks(num_tasks=100, difficulty=1),
                                  chunk_tokens=1024, memory_tokens=64)
    assert mean_score(static, keep_first_value, oracle_answer, 100) == 1.0
    updated = LongContextMemoryEnv(synthetic_tasks(num_tasks=100, difficulty=3),
                                   chunk_tokens=1024, memory_tokens=64)
    assert mean_score(updated, keep_first_value, oracle_answer, 100) == 0.0
