"""The scripted oracle of the dialogue memory envs: gold memory operations, verified answers.

It checks that a dialogue task is solvable through the env and that its scoring is right: run
through `memgym eval` like any model, it must score 1.0 on MemoryBank-Synthetic-v0.

    memgym eval --env MemoryBank-Synthetic-v0 --agent agents/bank_oracle.yaml --out runs/bank

Privileged access, and only this: it declares `needs_task = True`, so the episode runner hands
it the Conversation (`ctx.task`); no other agent gets it, and the env itself exposes nothing
privileged (not in observations, not in info). From the task it reads

  - at a write step, the gold operations of the turns shown (`turn.metadata["oracle_ops"]`,
    whose ids are fact keys such as "alice.city"). It maps each key to the bank id its ADD
    will get (the bank numbers entries "0", "1", ... in creation order) and emits Memory-R1
    JSON with bank ids; the env applies and validates it like any agent's action;
  - at a question, the question's fact keys (`question.metadata["fact_keys"]`) and its gold
    answer. It gives the gold answer only if the memories the ENV SHOWS for the question hold
    the latest text of every fact key that is still live (by bank id and text, read from the
    observation's `memory_entries`),
    and no memory of a retracted key; otherwise it answers "unknown" (which scores 0 on an
    answerable question). It cites the memories it checked.

So a score of 1.0 certifies that the bank applied every operation (ids, UPDATE, DELETE),
retrieval surfaced the needed memories within the env's top-k, and the scoring accepts the gold
answers; it does not test answer extraction from memory text (a model's job).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from memgym.agents.base import EpisodeContext
from memgym.data.dialogue import Conversation, DialogueQuestion, DialogueTurn
from memgym.errors import ConfigError, DataError
from memgym.memory.view import observed_memories

__all__ = ["BankOracleAgent"]

_DIA_ID = re.compile(r"^\[([^\]\n]+)\] ", re.MULTILINE)
UNKNOWN = "unknown"


class BankOracleAgent:
    """Applies the task's gold memory operations and answers when the shown memories allow it.

    Args:
        name: the agent's name in results.
        unknown_answer: what it answers when the memories shown do not hold the facts.
    """

    needs_task = True

    def __init__(self, *, name: str = "bank_oracle", unknown_answer: str = UNKNOWN):
        self.name = name
        self.unknown_answer = unknown_answer

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Gold operations (write step) or the verified gold answer (answer step)."""
        task = ctx.task
        if not isinstance(task, Conversation):
            raise DataError("bank_oracle needs ctx.task to be the episode's Conversation; run it "
                            "with memgym's episode runner on a dialogue env (MemoryBank-*)")
        state = ctx.scratch.setdefault("oracle", {"next_id": 0, "keys": {}, "retracted": {}})
        if observation["phase"] == "write":
            if observation.get("action_format") != "memory_r1":
                raise ConfigError(f"bank_oracle writes Memory-R1 JSON; this env asks for "
                                  f"{observation.get('action_format')!r} (use protocol memory_r1)")
            return self._write(task, observation["dialogue"], state)
        return self._answer(task, observation, state)

    # -- write ------------------------------------------------------------------------------------
    def _write(self, task: Conversation, dialogue: str, state: dict[str, Any]) -> str:
        turns = {t.dia_id: t for t in task.turns()}
        ops = []
        for dia_id in _DIA_ID.findall(dialogue):
            turn: DialogueTurn | None = turns.get(dia_id)
            for op in (turn.metadata.get("oracle_ops", ()) if turn is not None else ()):
                ops.extend(self._bank_op(op, state))
        return json.dumps({"memory": ops}, ensure_ascii=False)

    def _bank_op(self, op: Mapping[str, Any], state: dict[str, Any]) -> list[dict[str, Any]]:
        """One gold op with its fact key replaced by the bank id (an UPDATE of a key not yet in
        the bank becomes an ADD; a DELETE of one becomes nothing)."""
        event, key, text = str(op.get("event", "")).upper(), op.get("id"), op.get("text")
        keys, retracted = state["keys"], state["retracted"]
        if event in ("ADD", "UPDATE") and key not in keys:
            keys[key] = [str(state["next_id"]), text]
            state["next_id"] += 1
            retracted.pop(key, None)
            return [{"id": keys[key][0], "text": text, "event": "ADD"}]
        if event in ("ADD", "UPDATE"):
            keys[key][1] = text
            return [{"id": keys[key][0], "text": text, "event": "UPDATE"}]
        if event == "NOOP" and key in keys:
            return [{"id": keys[key][0], "text": keys[key][1], "event": "NONE"}]
        if event == "DELETE" and key in keys:
            bank_id, _ = keys.pop(key)
            retracted[key] = bank_id
            return [{"id": bank_id, "text": "", "event": "DELETE"}]
        return []

    # -- answer -----------------------------------------------------------------------------------
    def _question(self, task: Conversation, text: str) -> DialogueQuestion:
        for q in task.questions:
            if q.question == text:
                if "fact_keys" not in q.metadata:
                    raise DataError(f"bank_oracle: question {q.question_id} has no "
                                    "metadata['fact_keys']; the oracle runs on the synthetic "
                                    "dialogue task (MemoryBank-Synthetic-v0)")
                return q
        raise DataError(f"bank_oracle: the question {text[:80]!r} is not one of "
                        f"{task.conversation_id}'s questions")

    def _answer(self, task: Conversation, observation: Mapping[str, str],
                state: dict[str, Any]) -> str:
        question = self._question(task, observation["question"])
        shown = {m["id"]: m["text"] for m in observed_memories(observation, self.name)}
        cited = []
        for key in question.metadata["fact_keys"]:
            if key in state["keys"]:
                bank_id, text = state["keys"][key]
                if shown.get(bank_id) != text:
                    return f"{self.unknown_answer} [NO_CITE]"
                cited.append(bank_id)
            elif state["retracted"].get(key) in shown:
                return f"{self.unknown_answer} [NO_CITE]"
        tag = f"[CITE: {', '.join(cited)}]" if cited else "[NO_CITE]"
        return f"{question.answers[0]} {tag}"
