"""The long-context memory environment: a context streamed in chunks into an overwrite memory."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from memgym.data.task import PIECE_SEPARATOR, Task
from memgym.envs.spaces import UnicodeText
from memgym.errors import ConfigError
from memgym.memory.slot import NO_MEMORY, OverwriteSlot
from memgym.rewards.rubric import Rubric
from memgym.rewards.scorers import extract_boxed, get_scorer
from memgym.tokenizers import TokenCounter, load_token_counter

__all__ = ["LongContextMemoryEnv", "ChunkStream", "DEFAULT_REWARD_WEIGHTS"]

logger = logging.getLogger(__name__)

DEFAULT_REWARD_WEIGHTS: dict[str, float] = {"accuracy": 1.0, "format": 0.0, "memory_budget": 0.0}
"""Accuracy alone moves the scalar reward by default (MemAgent's reward); the other components
are measured and logged, and `reward_weights` gives them weight."""

UPDATE, ANSWER = "update", "answer"


class ChunkStream:
    """A cursor over a task's context pieces that cuts the next chunk of `chunk_tokens` on demand.

    Only the current chunk is ever materialised, so a 25,600-document context streams in bounded
    memory. The state is two integers, so the env stays picklable mid-episode.
    """

    def __init__(self, pieces: Sequence[str], chunk_tokens: int, counter: TokenCounter):
        self.pieces = pieces
        self.chunk_tokens = chunk_tokens
        self.counter = counter
        self.piece_index = 0  # next piece to read
        self.offset = 0       # characters of that piece already streamed

    @property
    def fraction_read(self) -> float:
        """Fraction of context pieces fully streamed so far."""
        return self.piece_index / len(self.pieces) if len(self.pieces) else 1.0

    def _piece(self, i: int) -> str:
        # The separator belongs to the start of every piece but the first.
        return self.pieces[i] if i == 0 else PIECE_SEPARATOR + self.pieces[i]

    def next_chunk(self) -> tuple[str, int]:
        """The next chunk and its token count; ("", 0) when the context is exhausted."""
        parts: list[str] = []
        budget = self.chunk_tokens
        while budget > 0 and self.piece_index < len(self.pieces):
            rest = self._piece(self.piece_index)[self.offset:]
            n = self.counter.count(rest)
            if n <= budget:
                parts.append(rest)
                budget -= n
                self.piece_index, self.offset = self.piece_index + 1, 0
            else:
                head, _ = self.counter.split(rest, budget)
                parts.append(head)
                self.offset += len(head)
                budget = 0
        used = self.chunk_tokens - budget
        return ("".join(parts), used) if used > 0 else ("", 0)


class LongContextMemoryEnv(gym.Env):
    """Read a long context chunk by chunk into a bounded memory, then answer a question.

    ## Description
    MemAgent's setting (Yu et al., 2025). The question is shown up front; the context (documents,
    a haystack, a story) arrives in chunks of `chunk_tokens` tokens. After each chunk the agent
    writes its new memory, which overwrites the old one (at most `memory_tokens` tokens). When
    the context is exhausted, the agent sees only the question and its memory and answers.

    ## Observation Space
    `Dict` of Unicode text fields: `question`; `chunk` (the new chunk, "" in the answer phase);
    `memory` (the current memory, initially "No previous memory"); `phase` ("update" or
    "answer"); `progress` (a human-readable position in the stream).

    ## Action Space
    Unicode text. In the update phase: the new memory. In the answer phase: the answer, by
    default expected inside `\\boxed{}` (`answer_format="boxed"`). Any string is accepted.

    ## Rewards
    0 at update steps. At the answer step the rubric's weighted sum of:
    `accuracy` (the task's scorer on the answer: the last `\\boxed{}` content, or the whole text
    when there is none; `strict_boxed_em` reads the raw text itself), `format` (1 if the answer is
    in the expected format) and `memory_budget` (fraction of memory writes within budget).
    `info["reward_components"]` holds every component's value, `info["reward_weights"]` the
    weights; `reward == sum(weights[k] * components[k])`.

    ## Episode End
    Terminates after the answer. Never truncates: the number of steps is the number of chunks
    plus one.

    ## Arguments
    tasks: the task source (any sequence of `Task`). chunk_tokens (5000), memory_tokens (1024),
    memory_overflow ("truncate" | "penalize" | "reject"), initial_memory, tokenizer (None/"words"
    offline default, or a transformers tokenizer id/path/object), scorer (name or callable; None
    uses each task's own scorer, falling back to "sub_em"), answer_format ("boxed" | "plain"),
    reward_weights (overrides of DEFAULT_REWARD_WEIGHTS), source (a description for `info`).

    `reset(seed=s, options={"task_id": t})` plays task t (file order) deterministically; without a
    task_id the task is drawn from `np_random`.

    ## Version History
    v0: initial release.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, tasks: Sequence[Task], *, chunk_tokens: int = 5000,
                 memory_tokens: int = 1024, memory_overflow: str = "truncate",
                 initial_memory: str = NO_MEMORY, tokenizer: Any = None,
                 scorer: Any = None, answer_format: str = "boxed",
                 reward_weights: Mapping[str, float] | None = None,
                 source: str = "", render_mode: str | None = None):
        if len(tasks) == 0:
            raise ConfigError(f"the task source {source or '(unnamed)'} holds no tasks")
        if chunk_tokens <= 0:
            raise ConfigError(f"chunk_tokens must be positive, got {chunk_tokens}")
        if answer_format not in ("boxed", "plain"):
            raise ConfigError(f"answer_format={answer_format!r}; choose 'boxed' or 'plain'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}; choose None or 'ansi'")
        self.tasks = tasks
        self.chunk_tokens = chunk_tokens
        self.counter = load_token_counter(tokenizer)
        self.slot = OverwriteSlot(memory_tokens, memory_overflow, initial_memory, self.counter)
        if isinstance(scorer, str):
            get_scorer(scorer)  # fail at construction on an unknown name
        self.scorer = scorer
        self.answer_format = answer_format
        self.rubric = Rubric.from_weights(DEFAULT_REWARD_WEIGHTS, reward_weights)
        self.source = source
        self.render_mode = render_mode
        self.observation_space = spaces.Dict({
            "question": UnicodeText(), "chunk": UnicodeText(), "memory": UnicodeText(),
            "phase": UnicodeText(), "progress": UnicodeText(),
        })
        self.action_space = UnicodeText()
        self.task: Task | None = None
        self._stream: ChunkStream | None = None

    # -- public facts ---------------------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        """How many tasks the source holds; valid task ids are 0 .. num_tasks - 1."""
        return len(self.tasks)

    @property
    def memory(self) -> str:
        """The current memory text."""
        return self.slot.text

    # -- Gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode on `options["task_id"]` (or a task drawn from `np_random`)."""
        super().reset(seed=seed)
        options = options or {}
        task_id = options.get("task_id")
        if task_id is None:
            task_id = int(self.np_random.integers(self.num_tasks))
        if not isinstance(task_id, (int,)) or isinstance(task_id, bool) or not (
                0 <= task_id < self.num_tasks):
            raise ConfigError(
                f"options['task_id']={task_id!r} is out of range: this env has {self.num_tasks} "
                f"tasks (ids 0..{self.num_tasks - 1})"
            )
        self.task = self.tasks[task_id]
        self.slot.reset()
        self._stream = ChunkStream(self.task.context, self.chunk_tokens, self.counter)
        self._question_tokens = self.counter.count(self.task.question)
        self._chunk_index = 0
        self._chunk, self._chunk_tokens = self._stream.next_chunk()
        self._phase = UPDATE if self._chunk_tokens else ANSWER
        self._peak_context = 0
        self._note_context()
        info = self._info()
        info["source"] = self.source
        return self._obs(), info

    def step(self, action: str):
        """Apply a memory write (update phase) or score the answer (answer phase)."""
        if self.task is None or self._phase == "done":
            raise gym.error.ResetNeeded("call reset() before step() (the episode has ended)")
        if not isinstance(action, str):
            action = "" if action is None else str(action)
        if self._phase == UPDATE:
            return self._update(action)
        return self._answer(action)

    def render(self) -> str | None:
        """The current observation as text (render_mode="ansi")."""
        if self.render_mode != "ansi" or self.task is None:
            return None
        obs = self._obs()
        return "\n".join(f"[{k}] {v}" for k, v in obs.items())

    # -- internals ------------------------------------------------------------------------------
    def _update(self, memory: str):
        write = self.slot.write(memory)
        self._chunk_index += 1
        self._chunk, self._chunk_tokens = self._stream.next_chunk()
        if not self._chunk_tokens:
            self._phase = ANSWER
        self._note_context()
        info = self._info()
        info["memory_overflowed"] = write.overflowed
        info["memory_offered_tokens"] = write.offered_tokens
        zeros = dict.fromkeys(self.rubric.names, 0.0)
        info["reward_components"], info["reward_weights"] = zeros, dict(self.rubric.weights)
        return self._obs(), 0.0, False, False, info

    def _answer(self, text: str):
        boxed = extract_boxed(text)
        answer = boxed if boxed is not None else text.strip()
        problems = []
        if self.answer_format == "boxed" and boxed is None:
            problems.append("no closed \\boxed{} in the answer")
        if not answer.strip():
            problems.append("empty answer")
        scorer_name = self.scorer if self.scorer is not None else (self.task.scorer or "sub_em")
        scorer = get_scorer(scorer_name)
        prediction = text if scorer_name == "strict_boxed_em" else answer
        components = {
            "accuracy": float(scorer(prediction, self.task.answers)),
            "format": float(not problems),
            "memory_budget": self.slot.budget_use,
        }
        reward = self.rubric.total(components)
        self._phase = "done"
        info = self._info()
        info.update(answer=answer, golds=list(self.task.answers), reward_components=components,
                    reward_weights=dict(self.rubric.weights),
                    scorer=scorer_name if isinstance(scorer_name, str) else scorer.__name__,
                    format_errors=problems)
        obs = {"question": self.task.question, "chunk": "", "memory": self.slot.text,
               "phase": "done", "progress": "episode finished"}
        return obs, reward, True, False, info

    def _note_context(self) -> None:
        # The largest prompt an agent needs: question + memory + chunk (templates excluded).
        self._peak_context = max(self._peak_context,
                                 self._question_tokens + self.slot.tokens + self._chunk_tokens)

    def _obs(self) -> dict[str, str]:
        pct = int(100 * self._stream.fraction_read)
        progress = (f"chunk {self._chunk_index + 1}, {pct}% of the context read"
                    if self._phase == UPDATE else f"all {self._chunk_index} chunks read")
        return {"question": self.task.question, "chunk": self._chunk, "memory": self.slot.text,
                "phase": self._phase, "progress": progress}

    def _info(self) -> dict[str, Any]:
        return {
            "task_id": self.task.task_id,
            "task_type": self.task.task_type,
            "phase": self._phase,
            "chunk_index": self._chunk_index,
            "chunk_tokens": self._chunk_tokens,
            "fraction_read": self._stream.fraction_read,
            "memory_tokens": self.slot.tokens,
            "peak_context_tokens": self._peak_context,
        }
