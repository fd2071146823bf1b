"""`memgym quickstart memory-r1`: Memory-R1's stage 1 (manager GRPO, frozen reader) in minutes on CPU.

The task is MemoryBank-Synthetic-v0 (memgym.data.synthetic_dialogue): friends chat over dated
sessions, introduce facts about themselves, change, correct and retract them. The agent is
Memory-R1's pipeline with only the manager as an LLM:

  - extractor (frozen, deterministic): `extract_facts` reads the synthetic task's first-person
    lines back into canonical facts ("Ana lives in Porto"; a retraction gives
    "No longer: Ana lives in Porto"). Memory-R1's extractor is a frozen LLM; here it is exact, so
    every score difference is the manager's;
  - manager (the trained policy): a tiny Qwen2 model (`embedded-memory-r1`, shipped in
    memgym/assets/tiny-memory-r1, made by `python scripts/build_tiny_memory_r1.py --out DIR`:
    a BPE tokenizer and SFT from scratch on an imperfect scripted teacher; `--model DIR` starts
    from another build) sees the memories the env retrieved for the turn (`[id] text` lines) and the
    numbered facts, and writes one operation line per fact ("ADD", "UPDATE 3", "DELETE 3",
    "NOOP"); `expand_operations` turns them into the Memory-R1/mem0 JSON that the env parses,
    validates and applies, with the fact as the text. Departure from Memory-R1, whose manager
    writes the JSON itself: a model built in minutes on a CPU cannot copy text reliably, and
    which operation on which memory is what stage 1 trains;
  - reader (frozen, deterministic, not an LLM): `read_answer` answers a question from the
    retrieved memories by the bank oracle's rule: it reads the current text of the fact asked
    (its date for "when", its previous text for "before"). It cannot tell a stale memory from a
    fresh one: with two memories of one fact it reads the first stored (lowest bank id), and a
    memory of a retracted fact is read as true. So only correct UPDATEs and DELETEs score. It is
    both the env's frozen reader (the manager's reward: its EM on the questions linked to the
    turn, right after the edit) and the agent's answer step at evaluation.

The teacher is the exact manager (`teacher_ops`, the "Oracle memory policy" row of the table)
with two habits of real memory agents: it ADDs a new memory where it should UPDATE the old one
(`add_for_update` of the time) and rarely DELETEs a retracted fact (`delete` of the time;
otherwise it stores nothing). The SFT manager imitates it
greedily, so it mostly ADDs over stale memories and keeps retracted ones. GRPO (memgym's
trainer, `credit_assignment: step_reward`, as train/memory_r1_stage1.yaml, plus a KL pull to
the SFT manager: see `GRPO`) then fixes what it can.

Results: `quickstart.json`, `table.md`, `quickstart.png` (the same fields as `memgym quickstart`),
every evaluation's files, the training run.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memgym.agents.base import EpisodeContext
from memgym.agents.prompts import PromptTemplate
from memgym.errors import ConfigError
from memgym.progress import PhaseClock
from memgym.quickstart.report import QuickstartResult, fresh_out_dir, score_table

__all__ = [
    "ENV_ID",
    "EVAL_SPLITS",
    "SPLITS",
    "SPLIT_TITLES",
    "Memory",
    "TinyMemoryR1Agent",
    "TinyMemoryR1Config",
    "add_arguments",
    "demonstrations",
    "extract_facts",
    "read_answer",
    "register_tiny_kind",
    "run",
    "run_quickstart",
    "teacher_ops",
]

ENV_ID = "MemoryBank-Synthetic-v0"
IN_DOMAIN: dict[str, Any] = dict(num_sessions=4, events_per_session=3)
SPLITS: dict[str, dict[str, Any]] = {
    "train": dict(IN_DOMAIN, seed=1),
    "in_domain": dict(IN_DOMAIN, seed=1001),
    # twice as many sessions: longer conversations, more changes per fact
    "ood_longer": dict(IN_DOMAIN, num_sessions=8, seed=1002),
    # twice the fact events per session: facts changed and retracted more often
    "ood_more_changes": dict(IN_DOMAIN, events_per_session=6, seed=1003),
}
EVAL_SPLITS = ("in_domain", "ood_longer", "ood_more_changes")
SPLIT_TITLES = {"in_domain": "In-domain", "ood_longer": "OOD: 8 sessions",
                "ood_more_changes": "OOD: 2x changes"}
SFT_SEED = 7
ENV_KWARGS: dict[str, Any] = {"write_top_k": 20, "reward_weights": {"reader": 1.0, "f1": 0.0}}
"""Every split's env settings: all of a small bank is shown at a write; the manager's reward is
the reader's EM alone (as train/memory_r1_stage1.yaml)."""

MANAGER_TEMPLATE = PromptTemplate("memory_r1_tiny_manager", "Memories:\n{memories}\nFacts:\n{facts}\nOperations:")
NOT_PREFIX = "No longer: "
EMPTY = json.dumps({"memory": []})


# -- the deterministic extractor ----------------------------------------------------------------
def _alt(values: Sequence[str]) -> str:
    return "(" + "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)) + ")"


def _pattern(template: str, values: Sequence[str], **extra: str) -> re.Pattern:
    """A regex of a generator template: {v} and {old} capture a value, {p} a name, {d} a date."""
    out, pos, groups = "", 0, []
    for m in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos:m.start()])
        name = m.group(1)
        out += extra.get(name, _alt(values) if name in ("v", "old") else r"(\w+)" if name == "p"
                         else r"(.+?)")
        groups.append(name)
        pos = m.end()
    return re.compile("^" + out + re.escape(template[pos:]) + "$"), groups  # type: ignore[return-value]


def _line_patterns() -> list[tuple[str, str, re.Pattern, list[str]]]:
    from memgym.data.synthetic_dialogue import SYNTHETIC_ATTRIBUTES

    rows = []
    for attr, a in SYNTHETIC_ATTRIBUTES.items():
        for kind in ("add", "update", "correct", "retract", "restate"):
            for template in getattr(a, kind):
                rx, groups = _pattern(template, a.values)
                rows.append((attr, kind, rx, groups))
    return rows


_LINES = None


def extract_facts(speaker: str, text: str) -> list[str]:
    """The canonical facts one synthetic line states (the frozen extractor); [] for chit-chat.

    "I moved from Lisbon to Porto." by Ana -> ["Ana lives in Porto"]; a retraction of Porto ->
    ["No longer: Ana lives in Porto"]; a restatement gives the fact it restates.
    """
    from memgym.data.synthetic_dialogue import SYNTHETIC_ATTRIBUTES

    global _LINES
    if _LINES is None:
        _LINES = _line_patterns()
    for attr, kind, rx, groups in _LINES:
        m = rx.match(text.strip())
        if not m:
            continue
        got = dict(zip(groups, m.groups()))
        fact = SYNTHETIC_ATTRIBUTES[attr].fact
        if kind == "retract":
            return [NOT_PREFIX + fact.format(p=speaker, v=got["old"])]
        return [fact.format(p=speaker, v=got["v"])]
    return []


def _turn_facts(dialogue: str) -> list[str]:
    facts = []
    for line in dialogue.splitlines():
        m = re.match(r"^\[[^\]\n]+\] ([^:\n]+): (.*)$", line)
        if m:
            facts += extract_facts(m.group(1).strip(), m.group(2))
    return facts


# -- memories and the reader -----------------------------------------------------------------------
@dataclass(frozen=True)
class Memory:
    """A memory as the reader sees it: bank id, text, last-change date, previous text."""

    id: str
    text: str
    created: str = ""
    changed: str = ""
    before: str | None = None


def shown_of(observation: Mapping[str, Any]) -> list[Memory]:
    """The memories an observation shows (its `memory_entries`), in order."""
    from memgym.memory.view import observed_memories

    return [Memory(m["id"], m["text"], m["created_at"], m["updated_at"] or m["created_at"],
                   m["before"] or None)
            for m in observed_memories(observation, "memory_r1_tiny")]


def _from_entries(entries: Sequence[Any]) -> list[Memory]:
    return [Memory(str(e.id), e.text, e.created_at or "", e.updated_at or e.created_at or "",
                   e.history[-1] if e.history else None) for e in entries]


def _day(when: str) -> dt.date | None:
    """"6:06 pm on 2 May, 2023" or "2 May 2023" -> the date."""
    when = when.split(" on ", 1)[-1].replace(",", "").strip()
    try:
        return dt.datetime.strptime(when, "%d %B %Y").date()
    except ValueError:
        return None


def _gold_day(day: dt.date) -> str:
    return f"{day.day} {day.strftime('%B')} {day.year}"


def _fact_patterns() -> dict[str, tuple[re.Pattern, dict[str, Any]]]:
    from memgym.data.synthetic_dialogue import SYNTHETIC_ATTRIBUTES

    out = {}
    for attr, a in SYNTHETIC_ATTRIBUTES.items():
        fact, _ = _pattern(a.fact, a.values)
        phrase = _pattern(a.phrase, a.values)[0].pattern.strip("^$")
        qs = {"current": _pattern(a.ask, a.values)[0],
              "when": _pattern(a.ask_when, a.values)[0],
              "before": _pattern(a.ask_before, a.values)[0]}
        out[attr] = (fact, qs, phrase)
    return out


_FACTS = None


def _value_of(memories: Sequence[Memory], person: str, attr: str) -> Memory | None:
    """The first stored memory (lowest id) stating `person`'s `attr`, the reader's pick."""
    fact = _FACTS[attr][0]
    hits = [m for m in memories if (f := fact.match(m.text)) and f.group(1) == person]
    return min(hits, key=lambda m: int(m.id) if m.id.isdigit() else 1 << 30) if hits else None


def read_answer(question: str, memories: Sequence[Memory] | Sequence[Any]) -> str:
    """The frozen reader: the answer to a synthetic question from the memories, or "unknown".

    `memories` are `Memory`s or bank entries (`MemoryEntry`: the env's reader call).
    """
    global _FACTS
    if _FACTS is None:
        _FACTS = _fact_patterns()
    mems = [m if isinstance(m, Memory) else _from_entries([m])[0] for m in memories]
    q = question.strip()
    from memgym.data.synthetic_dialogue import SYNTHETIC_ATTRIBUTES

    for attr, (fact, qs, _) in _FACTS.items():
        if m := qs["current"].match(q):
            hit = _value_of(mems, m.group(1), attr)
            return fact.match(hit.text).group(2) if hit else "unknown"
        if m := qs["when"].match(q):
            person, value = m.group(1), m.group(2)
            for mem in mems:
                f = fact.match(mem.text)
                if f and f.group(1) == person and f.group(2) == value:
                    day = _day(mem.changed)
                    return _gold_day(day) if day else "unknown"
            return "unknown"
        if m := qs["before"].match(q):
            person, limit = m.group(1), _day(m.group(2))
            states = []  # (date, value) of every state the memories record
            for mem in mems:
                f = fact.match(mem.text)
                if not f or f.group(1) != person:
                    continue
                states.append((_day(mem.changed), f.group(2)))
                b = fact.match(mem.before or "")
                if b and mem.changed != mem.created:
                    states.append((_day(mem.created), b.group(2)))
            earlier = [s for s in states if s[0] and limit and s[0] < limit]
            return max(earlier)[1] if earlier else "unknown"
    for attr, a in SYNTHETIC_ATTRIBUTES.items():  # multi-hop: "... the person who <phrase> ..."
        for vfact, _, phrase in _FACTS.values():
            rx = _pattern(a.ask_who, a.values, who="the person who " + phrase)[0]
            m = rx.match(q)
            if not m:
                continue
            value = m.groups()[-1]
            for mem in mems:
                f = vfact.match(mem.text)
                if f and f.group(2) == value:
                    hit = _value_of(mems, f.group(1), attr)
                    return _FACTS[attr][0].match(hit.text).group(2) if hit else "unknown"
            return "unknown"
    return "unknown"


def reader(question: str, memories: Sequence[Any]) -> str:
    """The env's frozen reader (`DialogueMemoryEnv(reader=...)`): `read_answer` on bank entries."""
    return read_answer(question, memories)


# -- the teacher and the manager's operation lines ---------------------------------------------
OPERATION_LINE = re.compile(r"^(ADD|UPDATE|DELETE|NOOP)((?: \S+)*)$")


def _fact_of(body: str) -> tuple[str, re.Match] | None:
    for attr, (fact, _, _) in _FACTS.items():
        if f := fact.match(body):
            return attr, f
    return None


def teacher_decisions(shown: Sequence[Memory], facts: Sequence[str], *,
                      add_for_update: float = 0.0, delete: float = 1.0,
                      rng: random.Random | None = None) -> list[str]:
    """The scripted manager's decision per fact, one operation line each (`expand_operations`).

    Exact with the defaults: "UPDATE <id>" a memory of the same fact, "DELETE <id> ..." every
    memory of a retracted fact, "NOOP" for a restatement, "ADD" for a new fact.
    `add_for_update` is the chance it writes "ADD" instead of an UPDATE, `delete` the chance it
    DELETEs a retracted fact (else "NOOP").
    """
    global _FACTS
    if _FACTS is None:
        _FACTS = _fact_patterns()
    rng = rng or random.Random(0)
    lines = []
    for text in facts:
        retract = text.startswith(NOT_PREFIX)
        body = text[len(NOT_PREFIX):] if retract else text
        found = _fact_of(body)
        if found is None:
            lines.append("NOOP")
            continue
        attr, f = found
        fact = _FACTS[attr][0]
        same = [m for m in shown if (g := fact.match(m.text)) and g.group(1) == f.group(1)]
        if retract:
            ok = same and rng.random() < delete
            lines.append("DELETE " + " ".join(m.id for m in same) if ok else "NOOP")
        elif not same:
            lines.append("ADD")
        elif any(m.text == body for m in same):
            lines.append("NOOP")
        elif rng.random() < add_for_update:
            lines.append("ADD")
        else:
            lines.append(f"UPDATE {same[0].id}")
    return lines


def expand_operations(text: str, facts: Sequence[str]) -> str:
    """The manager's operation lines as Memory-R1 JSON for the env, one line per fact in order.

    "ADD" stores the fact, "UPDATE <id>" replaces memory <id> with it, "DELETE <id> ..." removes
    memories, "NOOP" (or a line that is missing or unreadable) changes nothing. An id the env
    does not know reaches it as written, so the env's validation rejects it as it would any
    manager's. A retraction's text ("No longer: ...") is never stored.
    """
    ops: list[dict[str, str]] = []
    lines = [x.strip() for x in text.strip().splitlines()]
    for k, fact in enumerate(facts):
        m = OPERATION_LINE.match(lines[k]) if k < len(lines) else None
        if m is None or m.group(1) == "NOOP":
            continue
        event, ids = m.group(1), m.group(2).split()
        body = fact.removeprefix(NOT_PREFIX)
        if event == "ADD" and not fact.startswith(NOT_PREFIX):
            ops.append({"text": body, "event": "ADD"})
        elif event == "UPDATE" and ids and not fact.startswith(NOT_PREFIX):
            ops.append({"id": ids[0], "text": body, "event": "UPDATE"})
        elif event == "DELETE":
            ops += [{"id": i, "event": "DELETE"} for i in ids]
    return json.dumps({"memory": ops})


def teacher_ops(shown: Sequence[Memory], facts: Sequence[str], *, add_for_update: float = 0.0,
                delete: float = 1.0, rng: random.Random | None = None) -> str:
    """The scripted manager's operations as Memory-R1 JSON (`teacher_decisions`, expanded)."""
    lines = teacher_decisions(shown, facts, add_for_update=add_for_update, delete=delete, rng=rng)
    return expand_operations("\n".join(lines), facts)


def manager_prompt(shown: Sequence[Memory], facts: Sequence[str]) -> str:
    """The manager's prompt: `[id] text` per shown memory, then the numbered facts."""
    from memgym.memory.view import format_memories

    memories = format_memories([{"id": m.id, "text": m.text} for m in shown], "id_text")
    return MANAGER_TEMPLATE.render(memories=memories, facts="\n".join(
        f"{k + 1}. {f}" for k, f in enumerate(facts)))


# -- the agent ----------------------------------------------------------------------------------
@dataclass
class TinyMemoryR1Config:
    """Memory-R1 with a deterministic extractor and reader; the manager is the LLM (trainable)
    or, with `teacher`, the scripted manager ("oracle": exact; "imperfect": the SFT teacher)."""

    name: str = "memory_r1_tiny"
    max_new_tokens: int = 24
    temperature: float = 0.0
    top_p: float = 1.0
    teacher: str = ""
    """"" (the LLM manager), "oracle" or "imperfect" (scripted, no backend)."""
    add_for_update: float = 0.6
    delete: float = 0.2


class TinyMemoryR1Agent:
    """Write: extract facts, manager ops (LLM or teacher); answer: the frozen reader."""

    def __init__(self, config: TinyMemoryR1Config, backend: Any = None):
        from memgym.agents.memory_r1 import LLMComponent
        from memgym.llm.base import SamplingParams

        if config.teacher not in ("", "oracle", "imperfect"):
            raise ConfigError(f"memory_r1_tiny.teacher={config.teacher!r}; choose '', 'oracle' "
                              "or 'imperfect'")
        if not config.teacher and backend is None:
            raise ConfigError("memory_r1_tiny: the LLM manager needs a backend (or set teacher)")
        self.config, self.name = config, config.name
        self.manager = None if config.teacher else LLMComponent(
            backend, PromptTemplate("memory_r1_tiny_manager_raw", "{prompt}"),
            SamplingParams(max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                           top_p=config.top_p), component="manager", chat=True, trainable=True)

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Memory-R1 JSON at a write step, the reader's answer at a question."""
        memories = shown_of(observation)
        if observation["phase"] != "write":
            return read_answer(observation["question"], memories)
        facts = _turn_facts(observation["dialogue"])
        if not facts:
            return EMPTY
        if self.manager is None:
            exact = self.config.teacher == "oracle"
            rng = random.Random(ctx.sampling_seed)
            return teacher_ops(memories, facts, rng=rng,
                               add_for_update=0.0 if exact else self.config.add_for_update,
                               delete=1.0 if exact else self.config.delete)
        done = await self.manager(ctx, prompt=manager_prompt(memories, facts))
        return expand_operations(done.text, facts)


def register_tiny_kind() -> None:
    """Register the agent kind `memory_r1_tiny` (this quickstart's agent) for recipes; the
    quickstart calls it when it runs, so importing memgym registers nothing a user did not ask
    for. Idempotent."""
    from memgym.agents.recipe import AGENT_KINDS, AgentKind, register_agent_kind

    if "memory_r1_tiny" not in AGENT_KINDS:
        register_agent_kind("memory_r1_tiny", AgentKind(
            TinyMemoryR1Config, lambda c, b: TinyMemoryR1Agent(c, b), False,
            TinyMemoryR1Config.__doc__))


def split_env_kwargs(split: str, num: int) -> dict[str, Any]:
    """gym.make kwargs of a split (the frozen reader included)."""
    return {**ENV_KWARGS, **SPLITS[split], "num_conversations": num, "reader": reader}


# -- the teacher's demonstrations (the SFT data; held-out prompts for decision_counts) ----
def demonstrations(count: int, first: int = 0, *, seed: int = 0, add_for_update: float = 0.6,
                   delete: float = 0.2) -> list[tuple[str, str]]:
    """(prompt, completion) manager pairs of the teacher playing conversations first ..
    first + count of the SFT generator (`add_for_update=0, delete=1`: the exact manager).
    scripts/build_tiny_memory_r1.py trains on them; `decision_counts` asks held-out ones."""
    import gymnasium as gym

    env = gym.make(ENV_ID, num_conversations=first + count, seed=SFT_SEED,
                   **{**IN_DOMAIN, **ENV_KWARGS}, reader=reader).unwrapped
    pairs = []
    for i in range(first, first + count):
        rng = random.Random(f"{seed}:{i}")
        obs, _ = env.reset(seed=i, options={"task_id": i})
        while True:
            if obs["phase"] == "write":
                facts, shown = _turn_facts(obs["dialogue"]), shown_of(obs)
                action = EMPTY
                if facts:
                    lines = teacher_decisions(shown, facts, rng=rng, delete=delete,
                                              add_for_update=add_for_update)
                    pairs.append((manager_prompt(shown, facts), "\n".join(lines)))
                    action = expand_operations(pairs[-1][1], facts)
            else:
                action = "unknown"
            obs, _, term, trunc, _ = env.step(action)
            if term or trunc:
                break
    return pairs


# -- the experiment ------------------------------------------------------------------------------
GRPO: dict[str, Any] = {
    "env_id": ENV_ID, "model": "embedded", "use_lora": False, "learning_rate": 5e-4,
    "lr_scheduler_type": "constant", "loss_type": "dapo", "beta": 0.1, "epsilon": 0.2,
    "epsilon_high": 0.28, "scale_rewards": "group", "tasks_per_step": 4, "num_generations": 8,
    "max_steps": 60, "max_completion_length": 24, "temperature": 1.0, "top_p": 1.0, "seed": 42,
    "credit_assignment": "step_reward", "step_baseline": "step", "save_steps": 0,
    "logging_steps": 1, "eval_steps": 0, "eval_tasks": 0,
}
"""Stage-1 GRPO of the manager (memgym's values; the step credit of train/memory_r1_stage1.yaml).

beta 0.1 (a KL pull to the SFT manager): Memory-R1's reward (the reader's EM on the questions
linked to the turn) cannot see an UPDATE that overwrites an unrelated memory when a new fact
should have been ADDed (both answer the linked question), so without it GRPO drifts to UPDATE
everywhere. Measured on held-out prompts (quickstart.json `decisions` records it for each run),
new facts UPDATEd instead of ADDed went from 5 of 274 to 40 after 20 steps at beta 0 (and the
in-domain score fell, 67.6 -> 57.6 on 32 conversations), to 21 after 60 steps at beta 0.04 and
14 at 0.1 (in-domain 75.4 at 0.04, 79.6 at 0.1)."""
TRAIN_TASKS = 500
EVAL_TASKS = 64


def _evaluate(agent: Any, out: Path, tasks: int, seed: int) -> dict[str, dict[str, float]]:
    """EM of the reader's answers per split, with the Wilson 95% interval."""
    from memgym.eval import evaluate
    from memgym.eval.metrics import wilson_ci

    scores = {}
    for split in EVAL_SPLITS:
        evaluate(ENV_ID, agent, out_dir=out / split, episodes=tasks, seed=seed,
                 env_kwargs=split_env_kwargs(split, tasks), concurrency=8, progress=False)
        ems = [q["em"] for line in (out / split / "predictions.jsonl").read_text().splitlines()
               if line.strip() for q in json.loads(line)["questions"]]
        hits = sum(1 for e in ems if e >= 1.0)
        low, high = wilson_ci(hits, len(ems))
        scores[split] = {"mean": hits / len(ems), "ci95": [low, high],
                         "ci95_halfwidth": (high - low) / 2, "n": len(ems)}
    return scores


def _markdown(table: dict[str, Any]) -> str:
    def cell(x: dict) -> str:
        return f"{100 * x['mean']:.1f} ± {100 * x['ci95_halfwidth']:.1f}"

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:+.1f}%"

    head = ["Manager"] + [SPLIT_TITLES[s] for s in EVAL_SPLITS] + ["Avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, label in (("base", "Base (tiny SFT manager)"), ("trained", "+ GRPO (memgym)"),
                        ("oracle", "Oracle memory policy")):
        lines.append(f"| {label} | " + " | ".join(cell(table["splits"][s][name])
                                                  for s in EVAL_SPLITS)
                     + f" | {100 * table['average'][name]:.1f} |")
    lines.append("| Relative gain | " + " | ".join(pct(table["splits"][s]["relative_gain"])
                                                 for s in EVAL_SPLITS)
                 + f" | {pct(table['average']['relative_gain'])} |")
    lines.append("| Base-to-oracle gap closed | " + " | ".join(
        pct(table["splits"][s]["gap_closed"]).lstrip("+") for s in EVAL_SPLITS)
        + f" | {pct(table['average']['gap_closed']).lstrip('+')} |")
    return ("\n".join(lines) + "\n\nExact match of the frozen reader's answers (%) ± 95% Wilson "
            "half-width, per question.\n")


READER_METRIC = "step_rewards/reader/mean"
"""The trainer's metric of the frozen reader's score at the steps holding a manager call."""


def _plot(out: Path, table: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in (out / "train" / "metrics.jsonl").read_text().splitlines()
            if x.strip()]
    # the manager's reward; the logged `reward` is the answer steps' (weight 0 in this run)
    rows = [r for r in rows if READER_METRIC in r]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.plot([r["step"] for r in rows], [r[READER_METRIC] for r in rows], color="tab:blue")
    ax1.set(xlabel="GRPO step", ylabel="reader EM after the manager's edits",
            title="Learning curve (write steps with a trained call)")
    xs = range(len(EVAL_SPLITS))
    for k, (name, color) in enumerate((("base", "tab:gray"), ("trained", "tab:blue"),
                                       ("oracle", "tab:green"))):
        ax2.bar([x + 0.27 * (k - 1) for x in xs],
                [table["splits"][s][name]["mean"] for s in EVAL_SPLITS], 0.27,
                yerr=[table["splits"][s][name]["ci95_halfwidth"] for s in EVAL_SPLITS],
                label=name, color=color, capsize=3)
    ax2.set_xticks(list(xs), [SPLIT_TITLES[s] for s in EVAL_SPLITS])
    ax2.set(ylabel="exact match", ylim=(0, 1.05), title="Held-out evaluation (95% CI)")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out / "quickstart.png", dpi=120)
    plt.close(fig)


DECISION_CONVERSATIONS = (1000, 40)
"""(first, count) of the conversations, after the SFT's 300 (same generator seed), whose write
prompts `decision_counts` asks: held out from the build, the training and the evaluation."""


def decision_counts(model: Any, tokenizer: Any) -> dict[str, int]:
    """The manager's greedy decision per fact against the exact manager's, on held-out prompts:
    {"<exact op> -> <op written> (right|wrong id)": count}, e.g. "UPDATE -> ADD"."""
    import torch

    first, count = DECISION_CONVERSATIONS
    pairs = demonstrations(count, first, add_for_update=0.0, delete=1.0)
    counts: dict[str, int] = {}
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        for k in range(0, len(pairs), 32):
            batch = pairs[k:k + 32]
            texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}],
                                                   tokenize=False, add_generation_prompt=True)
                     for p, _ in batch]
            enc = tokenizer(texts, return_tensors="pt", padding=True)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=TinyMemoryR1Config.max_new_tokens,
                                     do_sample=False, pad_token_id=tokenizer.pad_token_id)
            for (_, gold), ids in zip(batch, out[:, enc["input_ids"].shape[1]:]):
                written = tokenizer.decode(ids, skip_special_tokens=True).strip().splitlines()
                for k2, want in enumerate(gold.splitlines()):
                    got = written[k2].strip() if k2 < len(written) else ""
                    op = got.split()[0] if got.split() and OPERATION_LINE.match(got) else "?"
                    key = f"{want.split()[0]} -> {op}"
                    if op == want.split()[0] and op in ("UPDATE", "DELETE"):
                        key += " (right id)" if got == want else " (wrong id)"
                    counts[key] = counts.get(key, 0) + 1
    finally:
        tokenizer.padding_side = side
    return dict(sorted(counts.items()))


EMBEDDED_MANAGER = "embedded-memory-r1"
"""The shipped tiny manager (memgym/assets/tiny-memory-r1, made by
scripts/build_tiny_memory_r1.py)."""
RECIPE = {"kind": "memory_r1_tiny", "temperature": 0.0}
"""The evaluated agent: the LLM manager, greedy."""


def run_quickstart(out_dir: str | Path = "runs/quickstart-memory-r1", *, steps: int | None = None,
                   model_path: str | Path = EMBEDDED_MANAGER, eval_tasks: int = EVAL_TASKS,
                   seed: int = 0, overwrite: bool = False,
                   grpo_overrides: dict[str, Any] | None = None, log=print) -> QuickstartResult:
    """Evaluate the tiny manager, GRPO it with the frozen reader, re-evaluate.

    Args:
        out_dir: the run folder.
        steps: GRPO steps (default GRPO["max_steps"]).
        model_path: the manager to start from: the shipped `embedded-memory-r1` (default), or a
            folder built by scripts/build_tiny_memory_r1.py.
        eval_tasks: held-out conversations per split (at least 2).
        seed: the evaluation seed (same for every row).
        overwrite: replace an earlier run's results in `out_dir`.
        grpo_overrides: changes to GRPO (smaller runs for tests).
        log: where progress lines go.
    """
    if eval_tasks < 2:
        raise ConfigError(f"eval_tasks={eval_tasks}: a confidence interval needs at least 2 "
                          "conversations per split")
    register_tiny_kind()
    out = fresh_out_dir(out_dir, ("base", "oracle", "train", "trained", "quickstart.json"),
                        overwrite)
    seconds: dict[str, float] = {}
    log = PhaseClock([10.0, 47.0, 323.0 * (steps or GRPO["max_steps"]) / 60, 48.0, 1.0], log,
                     reference="on 2 idle cores").annotate

    t0 = time.perf_counter()
    model, tokenizer, folder, record = _load_manager(model_path, log)
    decisions = {"base": decision_counts(model, tokenizer)}
    seconds["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[2/5] evaluating the base manager and the oracle ...")
    base = _evaluate_model(model, tokenizer, out / "base", eval_tasks, seed)
    oracle = _evaluate(_agent({"kind": "memory_r1_tiny", "teacher": "oracle"}), out / "oracle",
                       eval_tasks, seed)
    seconds["base_eval"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[3/5] GRPO of the manager with the frozen reader ...")
    trainer = _train(model, tokenizer, folder, out, steps, grpo_overrides)
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[4/5] evaluating the trained manager ...")
    trained = _evaluate_model(trainer.model, tokenizer, out / "trained", eval_tasks, seed)
    decisions["trained"] = decision_counts(trainer.model, tokenizer)
    seconds["trained_eval"] = time.perf_counter() - t0

    log("[5/5] writing the table ...")
    table = score_table(base, trained, oracle, EVAL_SPLITS)
    table.update(eval_tasks_per_split=eval_tasks, grpo_steps=trainer.config.max_steps,
                 manager=folder, build=record, decisions=decisions,
                 seconds={k: round(v, 1) for k, v in seconds.items()},
                 files={n: str(out / n / s / "predictions.jsonl")
                        for n in ("base", "trained", "oracle") for s in EVAL_SPLITS})
    _write(out, table)
    return QuickstartResult(out, table, seconds)


def _load_manager(model_path: str | Path, log) -> tuple[Any, Any, str, dict]:
    """(model, tokenizer, folder, its BUILD.json record) of the manager to start from."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from memgym.models import resolve_model_path

    folder = resolve_model_path(str(model_path))
    log(f"[1/5] loading the tiny manager ({model_path}: {folder}) ...")
    build = Path(folder) / "BUILD.json"
    record = json.loads(build.read_text()) if build.is_file() else {}
    return (AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
            folder, record)


def _agent(recipe: dict[str, Any], backend: Any = None) -> Any:
    from memgym.agents.recipe import load_agent

    register_tiny_kind()
    return load_agent(recipe, backend)


def _evaluate_model(model: Any, tokenizer: Any, out: Path, tasks: int, seed: int
                    ) -> dict[str, dict[str, float]]:
    """`_evaluate` of the greedy LLM manager over `model` (a transformers backend, closed)."""
    from memgym.llm.hf import TransformersBackend

    backend = TransformersBackend(model, tokenizer, max_batch_size=64)
    try:
        return _evaluate(_agent(RECIPE, backend), out, tasks, seed)
    finally:
        backend.close()


def _train(model: Any, tokenizer: Any, folder: str, out: Path, steps: int | None,
           overrides: dict[str, Any] | None) -> Any:
    """Stage-1 GRPO of the manager with the frozen reader; returns the closed trainer."""
    from memgym.trainer.config import GRPOConfig
    from memgym.trainer.grpo import GRPOTrainer

    grpo = dict(GRPO, **(overrides or {}), output_dir=str(out / "train"), model=folder)
    if steps is not None:
        grpo["max_steps"] = steps
    trainer = GRPOTrainer(GRPOConfig(**grpo), policy=model, tokenizer=tokenizer,
                          env_kwargs=split_env_kwargs("train", TRAIN_TASKS),
                          agent={"kind": "memory_r1_tiny", "temperature": 1.0})
    trainer.train()
    trainer.close()
    return trainer


def _write(out: Path, table: dict[str, Any]) -> None:
    (out / "quickstart.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "table.md").write_text(_markdown(table))
    _plot(out, table)


def add_arguments(parser: Any) -> None:
    """`memgym quickstart memory-r1` arguments."""
    parser.add_argument("--out", default="runs/quickstart-memory-r1",
                        help="run folder (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"GRPO steps (default {GRPO['max_steps']})")
    parser.add_argument("--model", default=EMBEDDED_MANAGER,
                        help="the manager to start from (default: the shipped %(default)s; "
                             "build another with scripts/build_tiny_memory_r1.py)")
    parser.add_argument("--eval-tasks", type=int, default=EVAL_TASKS,
                        help="held-out conversations per split (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")


def run(args: Any) -> int:
    """Run the Memory-R1 quickstart and print the table."""
    result = run_quickstart(args.out, steps=args.steps, model_path=args.model,
                            eval_tasks=args.eval_tasks, seed=args.seed, overwrite=args.overwrite)
    print((result.out_dir / "table.md").read_text())
    print(f"files: {result.out_dir.resolve()} (quickstart.json, table.md, quickstart.png)")
    return 0
