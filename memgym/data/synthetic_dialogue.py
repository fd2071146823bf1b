"""A seeded, offline multi-session dialogue task where UPDATE and DELETE matter.

Two or more friends chat over dated sessions. Across sessions each of them introduces facts about
themselves (where they live, their job, their pet, their hobby), later changes them ("I moved
from Lisbon to Porto"), contradicts what they said ("Sorry, I misspoke: I live in Porto, not
Lisbon") or retracts them ("I left Porto and have no place of my own yet"); chit-chat and
restatements sit between. Questions are asked after the last session, about the latest state:

| category     | example                                               | answer     |
| ------------ | ----------------------------------------------------- | ---------- |
| single-hop   | Where does Ana live?                                  | Porto      |
| multi-hop    | What does the person who lives in Porto do for work?  | baker      |
| temporal     | When did Ana move to Porto?                           | 3 May 2023 |
| temporal     | Where did Ana live before 3 May 2023?                 | Lisbon     |
| unanswerable | Where does Ben live? (retracted, or never said)       | unknown    |

**The oracle.** Every turn carries `metadata["oracle_ops"]`: the memory operations (Memory-R1 /
mem0 form) that keep a memory exact: `{"event": "ADD"|"UPDATE"|"DELETE"|"NOOP", "id": <fact
key>, "text": <the fact>}` with stable keys such as "ana.city" (a DELETE's text is the fact it
removes; a restatement is a NOOP; chit-chat has no operation: `[]`). Questions carry
`metadata["fact_keys"]`, the keys whose state answers them, plus `kind` ("current", "multi",
"when", "before", "retracted", "never") and what the kind needs (`value`, `before_date`,
`via`); `answer_after` is the dia_id of the last turn that changed a fact the question depends
on (None for facts never mentioned). Replaying the operations up to `answer_after` determines
every answer (tests/data/test_synthetic_dialogue.py checks this with hypothesis).

A value is used at most once per attribute in a conversation, so "the person who lives in
Porto" and "when did Ana move to Porto" have one answer; a key changes at most once a session.
Conversation `i` of seed `s` depends on `(s, i)` only.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memgym.data.dialogue import Conversation, DialogueQuestion, DialogueSession, DialogueTurn
from memgym.data.words import ADJECTIVES, NOUNS
from memgym.errors import ConfigError, unknown_name

__all__ = ["SYNTHETIC_ATTRIBUTES", "SYNTHETIC_CATEGORIES", "UNKNOWN_ANSWER",
           "generate_dialogues", "replay_oracle_ops"]

UNKNOWN_ANSWER = "unknown"
"""The gold answer of unanswerable questions."""

SYNTHETIC_CATEGORIES = ("single-hop", "multi-hop", "temporal", "unanswerable")
"""The question categories, in the order questions are listed."""

_NAMES = ("Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jade", "Kai", "Lena",
          "Milo", "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tess", "Uma", "Vik", "Wren",
          "Yara")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@dataclass(frozen=True)
class _Attribute:
    """How one kind of fact is said, stored and asked about ({p}: person, {v}: value)."""

    values: tuple[str, ...]
    fact: str  # the oracle's memory text
    add: tuple[str, ...]  # first-person lines; {old} is the previous value
    update: tuple[str, ...]
    correct: tuple[str, ...]
    retract: tuple[str, ...]
    restate: tuple[str, ...]
    ask: str  # the current-state question
    ask_who: str  # multi-hop target: {who} is "the person who <phrase>"
    phrase: str  # identifies a person by this fact
    ask_when: str
    ask_before: str  # {d}: a date


SYNTHETIC_ATTRIBUTES: dict[str, _Attribute] = {
    "city": _Attribute(
        values=("Lisbon", "Porto", "Madrid", "Vienna", "Oslo", "Dublin", "Prague", "Krakow",
                "Lyon", "Turin", "Ghent", "Bergen", "Tartu", "Seville", "Bremen", "Zurich"),
        fact="{p} lives in {v}",
        add=("I just moved to {v}!", "Guess what, I moved to {v} today.",
             "I found a flat in {v} and moved in this morning."),
        update=("Big news: I moved from {old} to {v}.", "I left {old}; I live in {v} now."),
        correct=("Sorry, I misspoke before: I live in {v}, not {old}.",
                 "Wait, I said {old} earlier? I meant {v}, that's where I live."),
        retract=("I moved out of {old} and I have no place of my own yet.",
                 "Forget what I said about {old}: I gave up the flat and I'm between homes."),
        restate=("Life in {v} is treating me well.", "{v} is lovely this time of year."),
        ask="Where does {p} live?", ask_who="Where does {who} live?", phrase="lives in {v}",
        ask_when="When did {p} move to {v}?", ask_before="Where did {p} live before {d}?"),
    "job": _Attribute(
        values=("baker", "nurse", "pilot", "teacher", "plumber", "chemist", "librarian",
                "architect", "gardener", "translator", "electrician", "dentist", "journalist",
                "carpenter", "pharmacist", "surveyor"),
        fact="{p} works as a {v}",
        add=("I started a new job as a {v} today.", "I just got hired as a {v}!"),
        update=("I quit being a {old}; now I work as a {v}.",
                "I changed careers: no longer a {old}, I'm a {v} now."),
        correct=("I told you I was a {old}? No, I'm a {v}, I mixed that up.",
                 "Correction: I work as a {v}, not as a {old}."),
        retract=("I left my job as a {old}, so I'm out of work for now.",
                 "Scratch the {old} thing: I quit and have no job at the moment."),
        restate=("Work as a {v} keeps me busy.", "Another long week as a {v}!"),
        ask="What does {p} do for work?", ask_who="What does {who} do for work?",
        phrase="works as a {v}", ask_when="When did {p} start working as a {v}?",
        ask_before="What was {p}'s job before {d}?"),
    "pet": _Attribute(
        values=("cat", "dog", "parrot", "rabbit", "hamster", "tortoise", "ferret", "goldfish",
                "iguana", "canary", "guinea pig", "hedgehog", "gecko", "pony", "goat", "duck"),
        fact="{p} has a pet {v}",
        add=("We adopted a {v} today!", "I just brought home a {v}, it follows me everywhere."),
        update=("We rehomed the {old} with my aunt and adopted a {v}.",
                "No more {old}; we have a {v} instead."),
        correct=("It's a {v}, not a {old}; I don't know why I said {old}.",
                 "Oops, my pet is a {v}, not a {old}."),
        retract=("We had to give the {old} away, so no pets now.",
                 "The {old} went back to the shelter; I have no pet anymore."),
        restate=("The {v} woke me up at six again.", "My {v} says hi!"),
        ask="What pet does {p} have?", ask_who="What pet does {who} have?",
        phrase="has a pet {v}", ask_when="When did {p} get a {v}?",
        ask_before="What pet did {p} have before {d}?"),
    "hobby": _Attribute(
        values=("pottery", "chess", "climbing", "knitting", "archery", "rowing", "painting",
                "fencing", "birdwatching", "baking", "surfing", "juggling", "origami", "judo",
                "sailing", "calligraphy"),
        fact="{p} does {v} as a hobby",
        add=("I took up {v} today.", "I just started {v}, my new hobby."),
        update=("I gave up {old} and took up {v}.", "I'm done with {old}; it's {v} now."),
        correct=("I said {old}? I meant {v}, that's my hobby.",
                 "Correction: my hobby is {v}, not {old}."),
        retract=("I stopped doing {old} and have no hobby right now.",
                 "Never mind the {old}; I dropped it and do nothing for fun now."),
        restate=("I did {v} all weekend.", "{v} is still my favourite way to relax."),
        ask="What is {p}'s hobby?", ask_who="What is the hobby of {who}?",
        phrase="does {v} as a hobby", ask_when="When did {p} take up {v}?",
        ask_before="What was {p}'s hobby before {d}?"),
}
"""The kinds of fact the generator uses, by attribute name (the suffix of a fact key)."""

_REPLIES = ("Oh, really? Tell me more.", "That's a big change!", "Good for you, {p}.",
            "Noted!", "Wow, I didn't expect that.", "Thanks for telling me, {p}.")
_CHAT = ("I read a book about a {a} {n} this week.", "Have you ever seen a {a} {n}?",
         "The weather has been so {a} lately.", "I keep thinking about that {a} {n} we saw.",
         "My neighbour bought a {a} {n}, can you believe it?")
_CHAT_REPLIES = ("Ha, that sounds {a}.", "I know what you mean.", "Same here, honestly.",
                 "That's so {a}!")


@dataclass
class _Event:
    """One change of one fact, as scheduled."""

    key: str
    person: str
    attribute: str
    kind: str  # add, update, correct, retract, restate
    value: str | None
    old: str | None
    session: int
    dia_id: str = ""


def generate_dialogues(num_conversations: int, seed: int = 0, *, num_sessions: int = 4,
                       num_speakers: int = 2, events_per_session: int = 3,
                       chat_per_session: int = 1, questions_per_category: int = 2,
                       attributes: Sequence[str] | None = None) -> list[Conversation]:
    """Generate seeded multi-session dialogues with oracle memory operations and questions.

    Args:
        num_conversations: how many conversations.
        seed: the seed; conversation `i` depends on `(seed, i)` only.
        num_sessions: dated sessions per conversation (>= 2: changes need a later session).
        num_speakers: speakers per conversation (2..8); facts are about the speakers.
        events_per_session: fact events (add, update, correct, retract, restate) per session.
        chat_per_session: chit-chat exchanges (two turns) per session, carrying no operation.
        questions_per_category: at most this many questions of each category (fewer when a
            conversation has fewer candidates; there is at least one single-hop, temporal and
            unanswerable question whenever two facts are live before the last session, as
            with the defaults).
        attributes: which kinds of fact to use (default: all of SYNTHETIC_ATTRIBUTES).

    Raises:
        ConfigError: a knob out of range. UnknownNameError: an unknown attribute.
    """
    for name, value, low, high in (("num_conversations", num_conversations, 0, None),
                                   ("num_sessions", num_sessions, 2, None),
                                   ("num_speakers", num_speakers, 2, 8),
                                   ("events_per_session", events_per_session, 1, None),
                                   ("chat_per_session", chat_per_session, 0, None),
                                   ("questions_per_category", questions_per_category, 1, None)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (
                high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ConfigError(f"{name}={value!r} must be an integer {bound}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} must be an integer")
    names = tuple(attributes) if attributes is not None else tuple(SYNTHETIC_ATTRIBUTES)
    if not names:
        raise ConfigError("attributes=() must name at least one of "
                          f"{', '.join(SYNTHETIC_ATTRIBUTES)}")
    for name in names:
        if name not in SYNTHETIC_ATTRIBUTES:
            raise unknown_name("synthetic dialogue attribute", name, SYNTHETIC_ATTRIBUTES)
    knobs = {"num_sessions": num_sessions, "num_speakers": num_speakers,
             "events_per_session": events_per_session, "chat_per_session": chat_per_session,
             "questions_per_category": questions_per_category, "attributes": list(names)}
    return [_conversation(seed, i, names, knobs) for i in range(num_conversations)]


def replay_oracle_ops(conversation: Conversation, until: str | None = None
                      ) -> dict[str, tuple[str, str]]:
    """Apply the turns' oracle operations in stream order: `{key: (text, date_time)}`.

    Args:
        conversation: a generated conversation.
        until: stop after the turn with this dia_id (None: replay every turn).

    The date_time is that of the session whose turn last set the key (ADD or UPDATE).
    """
    state: dict[str, tuple[str, str]] = {}
    for session in conversation.sessions:
        for turn in session.turns:
            for op in turn.metadata.get("oracle_ops", []):
                if op["event"] in ("ADD", "UPDATE"):
                    state[op["id"]] = (op["text"], session.date_time)
                elif op["event"] == "DELETE":
                    state.pop(op["id"], None)
            if turn.dia_id == until:
                return state
    return state


# -- one conversation -----------------------------------------------------------------------------

def _conversation(seed: int, index: int, attributes: tuple[str, ...],
                  knobs: dict[str, Any]) -> Conversation:
    rng = random.Random(f"memgym-synthetic-dialogue:{seed}:{index}")
    speakers = tuple(rng.sample(_NAMES, knobs["num_speakers"]))
    dates = _session_dates(rng, knobs["num_sessions"])
    events = _schedule(rng, speakers, attributes, knobs["num_sessions"],
                       knobs["events_per_session"])
    sessions = tuple(_session(rng, n, dates[n - 1], speakers,
                              [e for e in events if e.session == n], knobs["chat_per_session"])
                     for n in range(1, knobs["num_sessions"] + 1))
    questions = _questions(rng, f"synthetic-{seed}-{index}", speakers, attributes, events,
                           dates, knobs["questions_per_category"])
    final = {e.key: e.value for e in events if e.kind != "restate"}
    metadata = {"dataset": "synthetic", "seed": seed, "index": index, **knobs,
                "final_state": {k: v for k, v in final.items() if v is not None}}
    return Conversation(f"synthetic-{seed}-{index}", speakers, sessions, questions, "synthetic",
                        metadata)


def _session_dates(rng: random.Random, n: int) -> list[dt.datetime]:
    day = dt.datetime(2023, 1, 1) + dt.timedelta(days=rng.randrange(300))
    dates = []
    for _ in range(n):
        dates.append(day.replace(hour=rng.randrange(8, 22), minute=rng.randrange(60)))
        day += dt.timedelta(days=rng.randrange(3, 30))
    return dates


def _date_time(when: dt.datetime) -> str:
    """LoCoMo's style: "1:56 pm on 8 May, 2023"."""
    hour = when.hour % 12 or 12
    half = "am" if when.hour < 12 else "pm"
    return f"{hour}:{when.minute:02d} {half} on {when.day} {_MONTHS[when.month - 1]}, {when.year}"


def _date(when: dt.datetime) -> str:
    """How answers and questions write a date: "8 May 2023"."""
    return f"{when.day} {_MONTHS[when.month - 1]} {when.year}"


def _schedule(rng: random.Random, speakers: tuple[str, ...], attributes: tuple[str, ...],
              num_sessions: int, per_session: int) -> list[_Event]:
    """Fact events in time order. The last session forces a retraction if no fact is retracted
    by then, and an update if none happened, as far as live facts allow; it never re-adds a
    retracted fact, so some question stays unanswerable."""
    keys = [f"{p.lower()}.{a}" for p in speakers for a in attributes]
    owner = {f"{p.lower()}.{a}": (p, a) for p in speakers for a in attributes}
    unused = {a: rng.sample(SYNTHETIC_ATTRIBUTES[a].values, len(SYNTHETIC_ATTRIBUTES[a].values))
              for a in attributes}
    state: dict[str, str] = {}
    events: list[_Event] = []
    for session in range(1, num_sessions + 1):
        chosen = rng.sample(keys, min(per_session, len(keys)))
        forced: dict[str, str] = {}
        if session == num_sessions:
            live = sorted(state)
            missing = {"retract": not {e.key for e in events} - set(state),  # none gone now
                       "update": "update" not in {e.kind for e in events}}
            for kind in ("retract", "update"):
                if missing[kind] and live:
                    forced[live.pop(rng.randrange(len(live)))] = kind
            gone = {e.key for e in events} - set(state)  # stays retracted to the end
            chosen = list(forced) + [k for k in chosen if k not in forced and k not in gone][
                :max(per_session - len(forced), 0)]
        for key in chosen:
            person, attribute = owner[key]
            if key not in state:
                kind = "add"
            else:
                kind = forced.get(key) or rng.choices(
                    ("update", "correct", "retract", "restate"), weights=(4, 2, 2, 2))[0]
            old = state.get(key)
            if kind in ("add", "update", "correct"):
                if not unused[attribute]:
                    continue  # values run out: skip rather than reuse one
                value: str | None = unused[attribute].pop()
                state[key] = value
            elif kind == "retract":
                value = None
                del state[key]
            else:
                value = old
            events.append(_Event(key, person, attribute, kind, value, old, session))
    return events


def _session(rng: random.Random, number: int, when: dt.datetime, speakers: tuple[str, ...],
             events: list[_Event], chat: int) -> DialogueSession:
    """The session's turns: a greeting, the fact events with replies, chit-chat, interleaved."""
    blocks: list[list[tuple[str, str, list[dict[str, str]], _Event | None]]] = []
    for event in events:
        other = rng.choice([s for s in speakers if s != event.person])
        blocks.append([(event.person, _line(rng, event), _ops(event), event),
                       (other, rng.choice(_REPLIES).format(p=event.person), [], None)])
    for _ in range(chat):
        a, b = rng.sample(speakers, 2)
        blocks.append([(a, _chat(rng, _CHAT), [], None), (b, _chat(rng, _CHAT_REPLIES), [], None)])
    rng.shuffle(blocks)
    opener, replier = rng.sample(speakers, 2)
    lines = [(opener, f"Hi {replier}! How have you been?", [], None),
             (replier, f"Hey {opener}! Good to hear from you.", [], None)]
    lines += [line for block in blocks for line in block]
    turns = []
    for t, (speaker, text, ops, event) in enumerate(lines, 1):
        dia_id = f"D{number}:{t}"
        if event is not None:
            event.dia_id = dia_id
        kind = event.kind if event is not None else "chat"
        turns.append(DialogueTurn(dia_id, speaker, text, number,
                                  {"oracle_ops": ops, "event": kind}))
    return DialogueSession(number, _date_time(when), tuple(turns), session_id=f"session_{number}")


def _line(rng: random.Random, event: _Event) -> str:
    spec = SYNTHETIC_ATTRIBUTES[event.attribute]
    templates = {"add": spec.add, "update": spec.update, "correct": spec.correct,
                 "retract": spec.retract, "restate": spec.restate}[event.kind]
    text = rng.choice(templates).format(v=event.value, old=event.old)
    return text[0].upper() + text[1:]


def _ops(event: _Event) -> list[dict[str, str]]:
    fact = SYNTHETIC_ATTRIBUTES[event.attribute].fact
    if event.kind == "retract":
        return [{"event": "DELETE", "id": event.key,
                 "text": fact.format(p=event.person, v=event.old)}]
    text = fact.format(p=event.person, v=event.value)
    name = {"add": "ADD", "update": "UPDATE", "correct": "UPDATE", "restate": "NOOP"}[event.kind]
    return [{"event": name, "id": event.key, "text": text}]


def _chat(rng: random.Random, templates: tuple[str, ...]) -> str:
    return rng.choice(templates).format(a=rng.choice(ADJECTIVES), n=rng.choice(NOUNS))


# -- questions ------------------------------------------------------------------------------------

def _questions(rng: random.Random, conversation_id: str, speakers: tuple[str, ...],
               attributes: tuple[str, ...], events: list[_Event], dates: list[dt.datetime],
               per_category: int) -> tuple[DialogueQuestion, ...]:
    """Candidates of every category from the event history, `per_category` drawn of each."""
    changes = [e for e in events if e.kind != "restate"]
    last: dict[str, _Event] = {}
    for e in changes:
        last[e.key] = e
    live = {k: e for k, e in last.items() if e.kind != "retract"}
    candidates: dict[str, list[dict[str, Any]]] = {c: [] for c in SYNTHETIC_CATEGORIES}
    for key, e in sorted(live.items()):
        spec = SYNTHETIC_ATTRIBUTES[e.attribute]
        candidates["single-hop"].append(_q(spec.ask.format(p=e.person), e.value, [key],
                                           e.dia_id, kind="current"))
    for (k1, e1), (k2, e2) in ((a, b) for a in sorted(live.items()) for b in sorted(live.items())):
        if e1.person == e2.person and e1.attribute != e2.attribute:
            who = "the person who " + SYNTHETIC_ATTRIBUTES[e1.attribute].phrase.format(v=e1.value)
            after = max(e1.dia_id, e2.dia_id, key=_order)
            candidates["multi-hop"].append(_q(
                SYNTHETIC_ATTRIBUTES[e2.attribute].ask_who.format(who=who), e2.value, [k1, k2],
                after, kind="multi", via=k1, evidence=[e1.dia_id, e2.dia_id]))
    candidates["temporal"] = _temporal(changes, dates)
    for key, e in sorted(last.items()):
        if e.kind == "retract":
            candidates["unanswerable"].append(_q(
                SYNTHETIC_ATTRIBUTES[e.attribute].ask.format(p=e.person), UNKNOWN_ANSWER, [key],
                e.dia_id, kind="retracted"))
    for person in speakers:
        for attribute in attributes:
            key = f"{person.lower()}.{attribute}"
            if key not in last:
                candidates["unanswerable"].append(_q(
                    SYNTHETIC_ATTRIBUTES[attribute].ask.format(p=person), UNKNOWN_ANSWER, [key],
                    None, kind="never"))
    questions = []
    for category in SYNTHETIC_CATEGORIES:
        pool = candidates[category]
        for item in rng.sample(pool, min(per_category, len(pool))):
            questions.append(DialogueQuestion(
                question_id=f"{conversation_id}:q{len(questions)}", question=item["question"],
                answers=(item["answer"],), category=category, answer_after=item["answer_after"],
                abstention=category == "unanswerable",
                evidence=tuple(item["evidence"]),
                evidence_sessions=tuple(dict.fromkeys(
                    f"session_{_order(d)[0]}" for d in item["evidence"])),
                metadata=item["metadata"]))
    return tuple(questions)


def _temporal(changes: list[_Event], dates: list[dt.datetime]) -> list[dict[str, Any]]:
    """"When did X become V" (V set by an add/update never corrected away) and "what was X
    before D" (D the date of a genuine update)."""
    out = []
    history: dict[str, list[_Event]] = {}
    for e in changes:
        history.setdefault(e.key, []).append(e)
    for key, seq in sorted(history.items()):
        spec = SYNTHETIC_ATTRIBUTES[seq[0].attribute]
        for i, e in enumerate(seq):
            corrected = i + 1 < len(seq) and seq[i + 1].kind == "correct"
            if e.kind in ("add", "update") and not corrected:
                out.append(_q(spec.ask_when.format(p=e.person, v=e.value),
                              _date(dates[e.session - 1]), [key], e.dia_id, kind="when",
                              value=e.value))
            if e.kind == "update" and i > 0:
                day = _date(dates[e.session - 1])
                out.append(_q(spec.ask_before.format(p=e.person, d=day), e.old, [key],
                              seq[i - 1].dia_id, kind="before", before_date=day))
    return out


def _q(question: str, answer: str | None, keys: list[str], answer_after: str | None, *,
       kind: str, evidence: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A question candidate; its evidence defaults to the answer_after turn."""
    if evidence is None:
        evidence = [answer_after] if answer_after else []
    return {"question": question, "answer": answer, "answer_after": answer_after,
            "evidence": evidence, "metadata": {"fact_keys": keys, "kind": kind, **extra}}


def _order(dia_id: str) -> tuple[int, int]:
    """Stream position of a "D<session>:<turn>" id."""
    session, turn = dia_id[1:].split(":")
    return int(session), int(turn)
