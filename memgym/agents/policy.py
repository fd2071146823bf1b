"""An agent made of two plain functions: a memory policy and an answer policy, no LLM.

Task authors write a task's oracle policy as functions (the synthetic task ships
`oracle_memory` / `oracle_answer`); wrapping them as an agent runs them through the same env,
runner and eval as any model, which checks the task is solvable and the scoring is right.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from memgym.agents.base import EpisodeContext
from memgym.agents.parsing import box
from memgym.imports import import_callable  # re-exported: its old home

__all__ = ["AnswerFn", "MemoryFn", "ScriptedPolicyAgent", "import_callable"]

MemoryFn = Callable[[str, str, str], str]
"""memory_fn(question, memory, chunk) -> the new memory."""
AnswerFn = Callable[[str, str], str]
"""answer_fn(question, memory) -> the answer."""


class ScriptedPolicyAgent:
    """Runs `memory_fn` on every chunk and `answer_fn` at the end; makes no LLM calls.

    Args:
        memory_fn: (question, memory, chunk) -> new memory.
        answer_fn: (question, memory) -> answer.
        box_answer: wrap the answer in `\\boxed{}` (unless it holds one), for envs that read
            boxed answers.
        name: the agent's name.
    """

    def __init__(self, memory_fn: MemoryFn, answer_fn: AnswerFn, *, box_answer: bool = True,
                 name: str = "scripted_policy"):
        self.memory_fn = memory_fn
        self.answer_fn = answer_fn
        self.box_answer = box_answer
        self.name = name

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """The policy's new memory (update phase) or its answer."""
        question, memory = observation["question"], observation["memory"]
        if observation["phase"] == "update":
            return str(self.memory_fn(question, memory, observation["chunk"]))
        answer = str(self.answer_fn(question, memory))
        return box(answer) if self.box_answer else answer
