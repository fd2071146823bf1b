"""An offline synthetic memory task, small enough for a tiny model, where memory management matters.

Facts about keys are scattered through filler sentences; some are updated later in the stream,
and only the latest value counts:

    The lake is calm. The code of red falcon is 417. We walk past the bell.
    The code of blue falcon is 902. ... The code of red falcon changed to 532. ...
    Q: What is the code of red falcon?   A: 532

Keys are "color animal" pairs (8 colors x 16 animals); distractor keys share a word with a
queried key ("blue falcon", "red otter"), so a memory must keep the exact key. Values are 3-digit
numbers; an update always changes the value. With `combine`, the question asks for two keys at
once ("What are the codes of red falcon and gray otter?") and the answer is both latest values in
the question's order, separated by a space ("532 417"). Answers are graded with exact_match.

The vocabulary is closed (about 60 words plus the numbers 100-999) and every sentence follows one
of a handful of fixed patterns, so a model of a few hundred thousand parameters can learn it. The
question is shown up front with every chunk (MemAgent's setting), so the ideal memory policy keeps
only the queried keys with their latest values: `oracle_memory` / `oracle_answer` implement that
policy by rule and score 1.0 on every task.

`difficulty` (1..5) sets every knob at once; explicit knobs override it:

| difficulty  | num_keys | num_updates | distractor_facts | filler_sentences | combine | similar |
| ----------- | -------- | ----------- | ---------------- | ---------------- | ------- | ------- |
| 1           | 2        | 0           | 0                | 4                | False   | False   |
| 2           | 3        | 1           | 1                | 8                | False   | True    |
| 3 (default) | 4        | 1           | 4                | 12               | False   | True    |
| 4           | 6        | 2           | 6                | 24               | True    | True    |
| 5           | 8        | 3           | 10               | 48               | True    | True    |

(`distractor_facts` is `num_distractor_facts`, `similar` is `similar_keys`.)
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from memgym.data.task import LazyTasks, Task
from memgym.errors import ConfigError, DataError

__all__ = ["SyntheticTasks", "synthetic_tasks", "oracle_memory", "oracle_answer",
           "queried_keys", "DIFFICULTIES", "COLORS", "ANIMALS"]

COLORS: tuple[str, ...] = ("red", "blue", "green", "gold", "gray", "pink", "black", "white")
ANIMALS: tuple[str, ...] = ("falcon", "otter", "badger", "heron", "lynx", "moose", "raven",
                            "tiger", "whale", "zebra", "camel", "eagle", "koala", "llama",
                            "panda", "wolf")
_KEYS = tuple(f"{c} {a}" for c in COLORS for a in ANIMALS)
_THINGS = ("lake", "road", "bell", "hill", "tree", "river", "door", "lamp", "cloud", "stone",
           "field", "boat")
_STATES = ("calm", "long", "loud", "tall", "old", "wide", "dark", "quiet", "warm", "cold",
           "small", "bright")
_VALUE_LOW, _VALUE_HIGH = 100, 999

DIFFICULTIES: dict[int, dict[str, Any]] = {
    1: dict(num_keys=2, num_updates=0, num_distractor_facts=0, filler_sentences=4,
            combine=False, similar_keys=False),
    2: dict(num_keys=3, num_updates=1, num_distractor_facts=1, filler_sentences=8,
            combine=False, similar_keys=True),
    3: dict(num_keys=4, num_updates=1, num_distractor_facts=4, filler_sentences=12,
            combine=False, similar_keys=True),
    4: dict(num_keys=6, num_updates=2, num_distractor_facts=6, filler_sentences=24,
            combine=True, similar_keys=True),
    5: dict(num_keys=8, num_updates=3, num_distractor_facts=10, filler_sentences=48,
            combine=True, similar_keys=True),
}
"""The knob values each difficulty level sets (level 3 is the default)."""

_DEFAULT_DIFFICULTY = 3

# The sentence patterns, shared by the generator and the oracle so the two cannot drift apart.
_FACT = "The code of {key} is {value}."
_UPDATE = "The code of {key} changed to {value}."
_ASK_ONE = "What is the code of {key}?"
_ASK_TWO = "What are the codes of {key1} and {key2}?"
_KEY_RE = r"[a-z]+\s+[a-z]+"
_FACT_RE = re.compile(rf"The\s+code\s+of\s+({_KEY_RE})\s+(?:is|changed\s+to)\s+(\d+)\.")
_ASK_ONE_RE = re.compile(rf"What\s+is\s+the\s+code\s+of\s+({_KEY_RE})\s*\?")
_ASK_TWO_RE = re.compile(rf"What\s+are\s+the\s+codes\s+of\s+({_KEY_RE})\s+and\s+({_KEY_RE})\s*\?")
_PARTIAL = "partial: "


class SyntheticTasks(LazyTasks):
    """A lazy, picklable sequence of synthetic memory tasks; task t is built from (seed, t).

    Build it with `synthetic_tasks`, which resolves the difficulty and validates the knobs.
    """

    def __init__(self, *, num_tasks: int, seed: int, difficulty: int | None, num_keys: int,
                 num_updates: int, num_distractor_facts: int, filler_sentences: int,
                 combine: bool, similar_keys: bool):
        self.num_tasks = num_tasks
        self.seed = seed
        self.difficulty = difficulty
        self.num_keys = num_keys
        self.num_updates = num_updates
        self.num_distractor_facts = num_distractor_facts
        self.filler_sentences = filler_sentences
        self.combine = combine
        self.similar_keys = similar_keys

    def __len__(self) -> int:
        return self.num_tasks

    def __repr__(self) -> str:
        return (f"SyntheticTasks(num_tasks={self.num_tasks}, seed={self.seed}, "
                f"difficulty={self.difficulty}, num_keys={self.num_keys}, "
                f"num_updates={self.num_updates}, num_distractor_facts="
                f"{self.num_distractor_facts}, filler_sentences={self.filler_sentences}, "
                f"combine={self.combine}, similar_keys={self.similar_keys})")

    def build(self, t: int) -> Task:
        """Build task `t` from (seed, t) and the knobs."""
        rng = random.Random(f"memgym-synthetic:{self.seed}:{t}")
        asked = rng.sample(_KEYS, 2 if self.combine else 1)
        others = _pick_others(rng, asked, self.num_keys - len(asked), self.similar_keys)

        # Each key's value history: a first value, then updates that always change it.
        history: dict[str, list[int]] = {}
        for key in asked + others:
            history[key] = [rng.randint(_VALUE_LOW, _VALUE_HIGH)]
        extra_updates = {key: self.num_updates for key in asked}
        for _ in range(self.num_distractor_facts):
            key = rng.choice(others)
            extra_updates[key] = extra_updates.get(key, 0) + 1
        for key, n in extra_updates.items():
            for _ in range(n):
                history[key].append(_new_value(rng, history[key][-1]))

        # Interleave the keys' fact chains at random (each chain stays in order) with filler.
        slots = [key for key, values in history.items() for _ in values]
        slots += [None] * self.filler_sentences
        rng.shuffle(slots)
        seen = dict.fromkeys(history, 0)
        sentences: list[str] = []
        latest: list[int] = []  # where each queried key got its latest value
        for key in slots:
            if key is None:
                sentences.append(_filler(rng))
                continue
            k = seen[key]
            seen[key] += 1
            template = _FACT if k == 0 else _UPDATE
            sentence = template.format(key=key, value=history[key][k])
            sentences.append(sentence)
            if key in asked and k == len(history[key]) - 1:
                latest.append(len(sentences) - 1)

        if self.combine:
            question = _ASK_TWO.format(key1=asked[0], key2=asked[1])
        else:
            question = _ASK_ONE.format(key=asked[0])
        answer = " ".join(str(history[key][-1]) for key in asked)
        gold = tuple(sentences[i] for i in sorted(latest))
        kind = "combine" if self.combine else "single"
        return Task(
            task_id=t, question=question, answers=(answer,), context=tuple(sentences),
            gold_context=gold, task_type=f"{kind}-{'updated' if self.num_updates else 'static'}",
            scorer="exact_match",
            metadata={"source": "synthetic", "seed": self.seed, "difficulty": self.difficulty,
                      "queried_keys": list(asked), "num_keys": self.num_keys,
                      "num_updates": self.num_updates,
                      "num_distractor_facts": self.num_distractor_facts,
                      "filler_sentences": self.filler_sentences,
                      "value_history": {key: history[key] for key in asked}},
        )


def synthetic_tasks(*, num_tasks: int = 1000, seed: int = 0, difficulty: int | None = None,
                    num_keys: int | None = None, num_updates: int | None = None,
                    num_distractor_facts: int | None = None,
                    filler_sentences: int | None = None, combine: bool | None = None,
                    similar_keys: bool | None = None) -> Sequence[Task]:
    """Generate the synthetic memory task: updated facts about keys, hidden among distractors.

    Knobs left as None take their value from `difficulty` (see DIFFICULTIES; None means level 3:
    num_keys=4, num_updates=1, num_distractor_facts=4, filler_sentences=12, combine=False,
    similar_keys=True).

    Args:
        num_tasks: how many tasks; task t is generated from (seed, t) and the knobs only.
        seed: generation seed.
        difficulty: 1 (easiest) .. 5; sets every knob not given explicitly.
        num_keys: distinct keys with facts in the stream, the queried ones included.
        num_updates: how many times each queried key's value changes after its first fact.
        num_distractor_facts: extra value changes of non-queried keys (each non-queried key also
            has its first fact).
        filler_sentences: filler sentences around the facts.
        combine: ask for two keys at once (answer: both latest values, in question order).
        similar_keys: non-queried keys share the color or the animal with a queried key.

    Returns:
        A lazy `SyntheticTasks` sequence; tasks are graded with exact_match.

    Raises:
        ConfigError: a knob has a bad value (the message names it).
    """
    _check_int("num_tasks", num_tasks, 1)
    _check_int("seed", seed, None)
    if difficulty is not None:
        if isinstance(difficulty, bool) or difficulty not in DIFFICULTIES:
            raise ConfigError(f"difficulty={difficulty!r} must be one of 1, 2, 3, 4, 5 "
                              "(or None for 3)")
    knobs = dict(DIFFICULTIES[difficulty or _DEFAULT_DIFFICULTY])
    given = dict(num_keys=num_keys, num_updates=num_updates,
                 num_distractor_facts=num_distractor_facts, filler_sentences=filler_sentences,
                 combine=combine, similar_keys=similar_keys)
    knobs.update({k: v for k, v in given.items() if v is not None})
    for name in ("combine", "similar_keys"):
        if not isinstance(knobs[name], bool):
            raise ConfigError(f"{name}={knobs[name]!r} must be True or False")
    asked = 2 if knobs["combine"] else 1
    _check_int("num_keys", knobs["num_keys"], asked)
    if knobs["num_keys"] > len(_KEYS):
        raise ConfigError(f"num_keys={knobs['num_keys']} exceeds the {len(_KEYS)} keys "
                          f"available ({len(COLORS)} colors x {len(ANIMALS)} animals)")
    _check_int("num_updates", knobs["num_updates"], 0)
    _check_int("num_distractor_facts", knobs["num_distractor_facts"], 0)
    _check_int("filler_sentences", knobs["filler_sentences"], 0)
    if knobs["num_distractor_facts"] and knobs["num_keys"] == asked:
        raise ConfigError(
            f"num_distractor_facts={knobs['num_distractor_facts']} needs keys that are not "
            f"asked about, but num_keys={knobs['num_keys']} are all queried; raise num_keys "
            f"above {asked} or set num_distractor_facts=0"
        )
    return SyntheticTasks(num_tasks=num_tasks, seed=seed, difficulty=difficulty, **knobs)


# -- the scripted oracle ------------------------------------------------------------------------
def queried_keys(question: str) -> tuple[str, ...]:
    """The key(s) a synthetic-task question asks about, in question order.

    Raises:
        DataError: the question is not one the synthetic task asks.
    """
    match = _ASK_TWO_RE.search(question)
    if match:
        return tuple(" ".join(g.split()) for g in match.groups())
    match = _ASK_ONE_RE.search(question)
    if match:
        return (" ".join(match.group(1).split()),)
    raise DataError(f"question {question!r} is not a synthetic-task question (expected "
                    f"{_ASK_ONE!r} or {_ASK_TWO!r})")


def _read_memory(memory: str, keys: Sequence[str]) -> tuple[dict[str, str], str]:
    values: dict[str, str] = {}
    partial = ""
    for line in memory.splitlines():
        if line.startswith(_PARTIAL):
            partial = line[len(_PARTIAL):]
            continue
        key, sep, value = line.partition(":")
        key = " ".join(key.split())
        if sep and key in keys and value.strip().isdigit():
            values[key] = value.strip()
    return values, partial


def oracle_memory(question: str, memory: str, chunk: str) -> str:
    """The ideal memory write: the queried keys with their latest values, nothing else.

    The memory is one "key: value" line per queried key seen so far, in question order (e.g.
    "red falcon: 532"). A chunk can end in the middle of a sentence (the env cuts chunks at a
    token count); when that unfinished sentence could still become a fact about a queried key,
    it is carried over on a last line "partial: <text>" and completed with the next chunk.
    """
    keys = queried_keys(question)
    values, partial = _read_memory(memory, keys)
    text = partial + chunk
    for match in _FACT_RE.finditer(text):
        key = " ".join(match.group(1).split())
        if key in keys:
            values[key] = match.group(2)
    # The unfinished sentence after the last full stop, kept only if it may name a queried key.
    # It is kept verbatim (a trailing space tells "llama " + "changed" from "blu" + "e").
    tail = text[text.rfind(".") + 1:].lstrip()
    norm = " ".join(tail.split()) + (" " if tail[-1:].isspace() else "")
    prefixes = [f"The code of {key} " for key in keys]
    keep = bool(norm) and any(p.startswith(norm) or norm.startswith(p) for p in prefixes)
    lines = [f"{key}: {values[key]}" for key in keys if key in values]
    if keep:
        lines.append(_PARTIAL + tail)
    return "\n".join(lines)


def oracle_answer(question: str, memory: str) -> str:
    """The answer from an oracle memory, in `\\boxed{}`: the latest values in question order."""
    keys = queried_keys(question)
    values, _ = _read_memory(memory, keys)
    return "\\boxed{" + " ".join(values.get(key, "unknown") for key in keys) + "}"


# -- helpers ----------------------------------------------------------------------------------
def _check_int(name: str, value: Any, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={value!r} must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value!r} must be at least {minimum}")


def _pick_others(rng: random.Random, asked: list[str], n: int, similar: bool) -> list[str]:
    """`n` distinct keys not asked about; with `similar`, first those sharing a word with one."""
    pool = [k for k in _KEYS if k not in asked]
    if not similar:
        return rng.sample(pool, n)
    words = {w for key in asked for w in key.split()}
    close = [k for k in pool if words & set(k.split())]
    far = [k for k in pool if k not in close]
    picked = rng.sample(close, min(n, len(close)))
    return picked + rng.sample(far, n - len(picked))


def _new_value(rng: random.Random, old: int) -> int:
    value = rng.randint(_VALUE_LOW, _VALUE_HIGH - 1)
    return value + 1 if value >= old else value  # uniform over the values other than `old`


def _filler(rng: random.Random) -> str:
    thing = rng.choice(_THINGS)
    form = rng.randrange(3)
    if form == 0:
        return f"The {thing} is {rng.choice(_STATES)}."
    if form == 1:
        return f"A bird sits on the {thing}."
    return f"We walk past the {thing}."
