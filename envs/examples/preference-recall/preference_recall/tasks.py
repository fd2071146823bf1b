"""The task source of preference-recall: generated from a seed, one task per task id.

A task is one user's chat stream. The user states preferences in several categories ("I really
like X as my favourite food."), corrects some of them later ("Actually, I now prefer Y for
food."), talks about other things, and mentions friends' tastes (distractors: not the user's).
The question asks for the user's latest preference in one category; the gold is the value of
the user's last statement about it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from memgym.data.task import LazyTasks, Task
from memgym.errors import DataError

CATEGORIES: dict[str, tuple[str, ...]] = {
    "food": ("lasagne", "sushi", "paella", "ramen", "falafel", "goulash", "risotto", "tacos"),
    "colour": ("teal", "crimson", "ochre", "lavender", "olive", "turquoise", "magenta", "amber"),
    "city": ("Lisbon", "Kyoto", "Oslo", "Montreal", "Seville", "Krakow", "Hanoi", "Dublin"),
    "sport": ("badminton", "rowing", "curling", "fencing", "handball", "squash", "archery",
              "lacrosse"),
    "drink": ("espresso", "kombucha", "lemonade", "matcha", "cider", "rooibos", "horchata",
              "kefir"),
    "instrument": ("cello", "banjo", "oboe", "harp", "ukulele", "trombone", "sitar", "marimba"),
}
"""Each category's values; no value is a substring of another, so sub_em cannot be fooled."""

FRIENDS = ("Priya", "Tomasz", "Aiko", "Mateo", "Grace", "Olu")
SMALL_TALK = (
    "User: The weather has been grey all week, so I stayed in and read.",
    "User: My neighbour is repainting the fence again.",
    "User: I finally fixed the squeaky hinge on the kitchen door.",
    "User: Work was busy today; three meetings before lunch.",
    "User: I am thinking about learning to bake bread this winter.",
    "User: The train was late twice this week.",
    "User: I found an old photo album in the attic yesterday.",
    "User: My cousin is visiting next month with her two kids.",
    "User: I went for a long walk along the river after dinner.",
    "User: The library near my flat has started opening on Sundays.",
)
ASSISTANT = (
    "Assistant: That sounds nice. Tell me more whenever you like.",
    "Assistant: Noted. Is there anything I can help you plan?",
    "Assistant: Thanks for sharing that with me.",
    "Assistant: I will keep that in mind.",
)

LIKE = "User: I really like {value} as my favourite {category}."
PREFER = "User: Actually, I now prefer {value} for {category}."
FRIEND = "User: My friend {friend} is crazy about {value}, their favourite {category}."
QUESTION = ("Across the whole conversation, what is the user's own current favourite "
            "{category}? Answer with the name only.")


@dataclass(frozen=True)
class PreferenceTasks(LazyTasks):
    """`num_tasks` tasks; task t is built from `random.Random(f"{seed}:{t}")` on access.

    Task t asks about one category whose preference the user changed `t % (max_updates + 1)`
    times (task_type "updates-k"); `num_turns` pieces in all, one chat line per piece.
    """

    num_tasks: int = 50
    num_turns: int = 40
    max_updates: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_tasks", "num_turns", "max_updates", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise DataError(f"preference-recall: field {name!r} must be an integer, "
                                f"got {value!r}")
        if self.num_tasks < 1:
            raise DataError(f"preference-recall: field 'num_tasks' must be >= 1, "
                            f"got {self.num_tasks}")
        if self.max_updates < 0:
            raise DataError(f"preference-recall: field 'max_updates' must be >= 0, "
                            f"got {self.max_updates}")
        # target statements + two other categories' statements + friend distractors
        needed = (self.max_updates + 1) + 2 * 2 + 2
        if self.num_turns < needed:
            raise DataError(f"preference-recall: field 'num_turns' must be >= {needed} "
                            f"(max_updates={self.max_updates}), got {self.num_turns}")

    def __len__(self) -> int:
        return self.num_tasks

    def build(self, index: int) -> Task:
        rng = random.Random(f"{self.seed}:{index}")
        updates = index % (self.max_updates + 1)
        target, *others = rng.sample(sorted(CATEGORIES), 3)
        # the target's values in the order the user states them (each new one differs)
        values = rng.sample(CATEGORIES[target], min(updates + 1, len(CATEGORIES[target])))
        while len(values) < updates + 1:  # more updates than values: revisit old ones
            values.append(rng.choice([v for v in CATEGORIES[target] if v != values[-1]]))
        statements = [LIKE.format(value=values[0], category=target)]
        statements += [PREFER.format(value=v, category=target) for v in values[1:]]
        # other categories: a like and one correction each (never asked about)
        side: list[list[str]] = []
        for category in others:
            first, second = rng.sample(CATEGORIES[category], 2)
            side.append([LIKE.format(value=first, category=category),
                         PREFER.format(value=second, category=category)])
        # friends' tastes in the target category, never the user's latest value
        decoys = [FRIEND.format(friend=rng.choice(FRIENDS), category=target,
                                value=rng.choice([v for v in CATEGORIES[target]
                                                  if v != values[-1]]))
                  for _ in range(2)]
        # place the ordered streams at random positions, keeping each stream's own order
        streams = [statements, *side, decoys]
        slots = sorted(rng.sample(range(self.num_turns), sum(map(len, streams))))
        owners = [i for i, s in enumerate(streams) for _ in s]
        rng.shuffle(owners)
        cursor = [0] * len(streams)
        placed: dict[int, str] = {}
        for slot, owner in zip(slots, owners):
            placed[slot] = streams[owner][cursor[owner]]
            cursor[owner] += 1
        context = [placed.get(i) or rng.choice(SMALL_TALK if i % 2 == 0 else ASSISTANT)
                   for i in range(self.num_turns)]
        return Task(task_id=index, question=QUESTION.format(category=target),
                    answers=(values[-1],), context=context,
                    gold_context=tuple(c for c in context if c in statements),
                    task_type=f"updates-{updates}", scorer="exact_match",
                    metadata={"source": "preference-recall", "category": target,
                              "num_updates": updates, "num_docs": self.num_turns,
                              "seed": self.seed})
