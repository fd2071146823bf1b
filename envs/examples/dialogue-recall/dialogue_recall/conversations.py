"""The task source: seeded two-person conversations with one fact to recall.

A conversation has `num_sessions` dated sessions of chit-chat. In an early session one speaker
states a fact about themselves ("I adopted a cat, her name is Pepper."); with `corrections`, a
later session corrects it ("I renamed Pepper, she is Biscuit now."). The question asks for the
fact as it stands at the end. Everything is drawn from (seed, task id), so task t is the same
every time.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from memgym.data.task import LazyTasks, Task
from memgym.errors import ConfigError

NAMES = ("Maria", "Tom", "Aiko", "Luis", "Priya", "Jonas", "Zara", "Omar")
FACTS = (  # (statement, correction, question); {v} is the value, {w} the corrected one
    ("I adopted a cat, her name is {v}.", "I renamed my cat, she is called {w} now.",
     "What is the name of {s}'s cat?"),
    ("My new bike is {v}.", "I repainted my bike, it is {w} now.",
     "What colour is {s}'s bike?"),
    ("I just started learning the {v}.", "I gave up that one, I am learning the {w} instead.",
     "Which instrument is {s} learning?"),
)
VALUES = (
    ("Pepper", "Biscuit", "Miso", "Luna", "Olive", "Tofu", "Saffron", "Juniper"),
    ("red", "green", "yellow", "orange", "purple", "silver", "blue", "black"),
    ("violin", "cello", "trumpet", "piano", "flute", "banjo", "harp", "drums"),
)
CHATTER = (
    "How was your week?", "Busy, but good. Work was hectic.", "Did you see the game on Sunday?",
    "No, I was hiking with my cousin.", "The weather has been lovely lately.",
    "I tried a new recipe, a lentil soup.", "That sounds nice, send me the recipe.",
    "I might visit my parents next month.", "We should get coffee soon.",
    "I finished the book you lent me.", "My neighbour is renovating again, so noisy.",
    "I have been sleeping badly.", "Let's talk again next week.",
)


class Conversations(LazyTasks):
    """`num_tasks` generated conversations (task t from (seed, t) only)."""

    def __init__(self, num_tasks: int, *, num_sessions: int, turns_per_session: int,
                 corrections: bool, seed: int):
        for name, value, low in (("num_tasks", num_tasks, 1), ("num_sessions", num_sessions, 2),
                                 ("turns_per_session", turns_per_session, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}={value!r} must be an integer >= {low}")
        self.num_tasks, self.num_sessions = num_tasks, num_sessions
        self.turns_per_session, self.corrections, self.seed = turns_per_session, corrections, seed

    def __len__(self) -> int:
        return self.num_tasks

    def build(self, index: int) -> Task:
        """Generate conversation `index`."""
        rng = np.random.default_rng([self.seed, index])
        a, b = (str(n) for n in rng.choice(NAMES, size=2, replace=False))
        kind = int(rng.integers(len(FACTS)))
        statement, correction, question = FACTS[kind]
        first, second = (str(v) for v in rng.choice(VALUES[kind], size=2, replace=False))
        said_in = int(rng.integers(0, self.num_sessions - 1))
        fixed_in = int(rng.integers(said_in + 1, self.num_sessions)) if self.corrections else None
        start = dt.date(2023, 1, 1) + dt.timedelta(days=int(rng.integers(0, 300)))
        pieces = []
        for session in range(self.num_sessions):
            day = start + dt.timedelta(days=9 * session)
            header = f"[Session {session + 1}, {day.day} {day:%B %Y}]"
            lines = [str(c) for c in rng.choice(CHATTER, size=self.turns_per_session)]
            if session == said_in:
                lines[int(rng.integers(len(lines)))] = statement.format(v=first)
            if session == fixed_in:
                lines[int(rng.integers(len(lines)))] = correction.format(w=second)
            for turn, line in enumerate(lines):
                fact = line in (statement.format(v=first), correction.format(w=second))
                speaker = a if fact else (a, b)[turn % 2]
                pieces.append(f"{header} {speaker}: {line}")
        answer = second if self.corrections else first
        return Task(task_id=index, question=question.format(s=a), answers=(answer,),
                    context=pieces, task_type=("cat", "bike", "instrument")[kind],
                    metadata={"sessions": self.num_sessions, "corrected": self.corrections})
