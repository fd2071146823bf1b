"""A frozen answer agent as the dialogue env's reader (Memory-R1's manager reward), from a recipe.

`DialogueMemoryEnv(reader=...)` takes a callable `reader(question, memories) -> answer`, which a
YAML recipe cannot hold. A training recipe names it instead:

    frozen_reader:
      agent: agents/memory_r1.yaml      # any dialogue agent recipe; its answer step reads
      backend: transformers             # its own backend: never the weights being trained
      model: embedded                   # a memgym model name, a path, or a scripted policy

and the trainer builds the callable with `build_frozen_reader` and injects it into every env it
makes. The reader plays the agent's answer step on an observation made like the env's answer
step (the retrieved entries as `memory_entries`, and rendered; the question), so Memory-R1's answer agent
reads the memories per speaker, selects, and answers after `**Answer:**`, exactly as at a
question step. Its LLM calls are never trained (their Turns are discarded).

The env calls the reader synchronously inside `step`; the agent is async, so each read runs to
completion through `run_sync` (on a helper thread's loop while the rollout's loop waits): reads
are not batched with the policy's calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from memgym.agents.base import EpisodeContext
from memgym.agents.episode import derive_seed, run_sync
from memgym.config import from_dict
from memgym.errors import ConfigError
from memgym.memory.bank import MemoryEntry

__all__ = ["FrozenReader", "FrozenReaderSpec", "build_frozen_reader"]


@dataclass
class FrozenReaderSpec:
    """The `frozen_reader:` section of a training recipe."""

    agent: str | dict[str, Any] = "agents/memory_r1.yaml"
    """The answer agent's recipe (path or mapping); its answer step is the reader."""
    backend: str = "transformers"
    """Its backend, as `memgym eval --backend` (transformers, vllm, openai, scripted)."""
    model: str | None = "embedded"
    """A memgym model name or path; the served name (openai); 'module:function' (scripted)."""
    base_url: str | None = None
    """The server's URL (openai only)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """More backend arguments, as `--backend-kwargs`."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Agent-recipe overrides, e.g. `{answerer: {temperature: 0.0}}` for a greedy reader."""
    seed: int = 0
    """Seeds the reader's sampling (each read derives its own seed from it and a counter)."""


class FrozenReader:
    """`reader(question, memories) -> answer` by a frozen agent's answer step.

    Args:
        agent: a dialogue agent (its `act` answers an answer-phase observation).
        seed: the reads' sampling seeds derive from it and a read counter.
        date: the `date` field shown at each read.
    """

    def __init__(self, agent: Any, *, seed: int = 0, date: str = ""):
        self.agent = agent
        self.seed = seed
        self.date = date
        self.reads = 0

    def __call__(self, question: str, memories: Sequence[MemoryEntry]) -> str:
        """The agent's answer to `question` from `memories` (as an answer step shows them)."""
        from memgym.memory.view import format_memories, shown_memories

        entries = shown_memories(list(memories))
        observation = {"phase": "answer", "dialogue": "", "date": self.date,
                       "memories": format_memories(entries), "memory_entries": entries,
                       "question": question, "progress": "frozen reader",
                       "action_format": "answer"}
        ctx = EpisodeContext(sampling_seed=derive_seed(self.seed, self.reads))
        self.reads += 1
        return str(run_sync(self.agent.act(observation, ctx)))


def build_frozen_reader(spec: FrozenReaderSpec | Mapping[str, Any]) -> FrozenReader:
    """Build the frozen reader a recipe's `frozen_reader:` section names.

    Raises:
        ConfigError: an unknown key, a backend that cannot be built, or a recipe kind that needs
            no backend for an answer (nothing to freeze: use it as the agent directly).
    """
    from memgym.agents.recipe import load_agent
    from memgym.llm import BackendSpec, build_backend

    if not isinstance(spec, FrozenReaderSpec):
        if not isinstance(spec, Mapping):
            raise ConfigError(f"frozen_reader must be a mapping (agent, backend, model), got "
                              f"{type(spec).__name__}")
        spec = from_dict(FrozenReaderSpec, dict(spec), where="frozen_reader")
    backend = build_backend(BackendSpec(backend=spec.backend, model=spec.model,
                                        base_url=spec.base_url, kwargs=dict(spec.kwargs)),
                            flag="frozen_reader.")
    agent = load_agent(spec.agent, backend, overrides=dict(spec.overrides))
    return FrozenReader(agent, seed=spec.seed)
