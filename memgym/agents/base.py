"""The agent protocol and the record of an agent's LLM calls (Turns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from memgym.data.task import Task

__all__ = ["Turn", "EpisodeContext", "Agent"]


@dataclass
class Turn:
    """One LLM call made by an agent during an episode.

    The trainer turns each trainable Turn into a training row: `prompt_ids` are context,
    `completion_ids` are the actions whose log-probabilities are optimised, `logprobs` are the
    sampler's (for importance correction).

    Attributes:
        component: which part of the agent made the call ("memory_update", "answer", ...).
        step: the env step the call belongs to.
        prompt: the prompt as text (rendered chat), for traces and debugging.
        completion: the completion text.
        prompt_ids, completion_ids, logprobs: token in, token out.
        trainable: whether the trainer optimises this call.
        finish_reason: "stop", "length" or "error"; error holds the message.
    """

    component: str
    step: int
    prompt: str
    completion: str
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    trainable: bool = True
    finish_reason: str = "stop"
    error: str | None = None
    latency_s: float = 0.0


@dataclass
class EpisodeContext:
    """Per-episode state handed to `Agent.act`: the turns made so far and private scratch space.

    `task` is set only for agents that declare `needs_task = True` (the oracle upper bound);
    every other agent sees the task solely through observations. `sampling_seed`, when set,
    seeds every LLM call of the episode (each call derives its own seed from it, its step and
    its component), so an episode's samples are reproducible while G episodes of a group,
    given different sampling seeds, still differ.
    """

    step: int = 0
    turns: list[Turn] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)
    task: Task | None = None
    sampling_seed: int | None = None


@runtime_checkable
class Agent(Protocol):
    """A memory policy: maps each observation of an episode to a text action.

    Agents are written as plain sequential async code for one episode; many episodes run as
    concurrent coroutines and the LLM backend batches their calls.
    """

    name: str

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Return the action for `observation`, recording any LLM calls in `ctx.turns`."""
        ...
