"""The long-context memory environment: a context streamed in chunks into an overwrite memory."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from memgym.data.task import PIECE_SEPARATOR, Task
from memgym.envs.spaces import MAX_TEXT_LENGTH, UnicodeText, chars_for_tokens
from memgym.errors import ConfigError, DataError
from memgym.memory.slot import NO_MEMORY, OverwriteSlot
from memgym.rewards.extraction import check_answer_format, extract_answer
from memgym.rewards.rubric import EPISODE_RESULT_KEY, Rubric
from memgym.rewards.scorers import get_scorer, reads_raw_text
from memgym.tokenizers import TokenCounter, load_token_counter

__all__ = ["LongContextMemoryEnv", "ChunkStream", "DEFAULT_REWARD_WEIGHTS", "MAX_ACTION_CHARS"]

logger = logging.getLogger(__name__)

DEFAULT_REWARD_WEIGHTS: dict[str, float] = {"accuracy": 1.0, "format": 0.0, "memory_budget": 0.0}
"""Accuracy alone moves the scalar reward by default (MemAgent's reward); the other components
are measured and logged, and `reward_weights` gives them weight."""

UPDATE, ANSWER, DONE = "update", "answer", "done"

MAX_ACTION_CHARS = MAX_TEXT_LENGTH
"""The action space's bound (1 Mi characters). Longer actions are accepted too: a memory write is
cut to the memory's bound anyway, and an answer is scored on its last MAX_ACTION_CHARS characters."""
_SHORT_FIELD_CHARS = 128  # phase, progress, answer_format


class ChunkStream:
    """A cursor over a task's context pieces that cuts the next chunk of `chunk_tokens` on demand.

    Only the current chunk is ever materialised, so a 25,600-document context streams in bounded
    memory. The state is two integers, so the env stays picklable mid-episode. A chunk also holds
    at most `max_chars` characters (default `chars_for_tokens(chunk_tokens)`, far above real
    text), so the observation space can bound it.
    """

    def __init__(self, pieces: Sequence[str], chunk_tokens: int, counter: TokenCounter,
                 max_chars: int | None = None):
        self.pieces = pieces
        self.chunk_tokens = chunk_tokens
        self.counter = counter
        self.max_chars = chars_for_tokens(chunk_tokens) if max_chars is None else max_chars
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
        while True:
            text, used = self._cut()
            if used > 0 or self.piece_index >= len(self.pieces):
                return (text, used) if used > 0 else ("", 0)

    def _cut(self) -> tuple[str, int]:
        parts: list[str] = []
        budget, room = self.chunk_tokens, self.max_chars
        while budget > 0 and room > 0 and self.piece_index < len(self.pieces):
            rest = self._piece(self.piece_index)[self.offset:]
            n = self.counter.count(rest)
            if n <= budget and len(rest) <= room:
                parts.append(rest)
                budget, room = budget - n, room - len(rest)
                self.piece_index, self.offset = self.piece_index + 1, 0
                continue
            head = self.counter.split(rest, budget)[0] if n > budget else rest
            if len(head) > room:  # a character cut: count what is kept
                head = head[:room]
                budget -= self.counter.count(head)
            else:
                budget = 0
            parts.append(head)
            self.offset += len(head)
            break
        return "".join(parts), self.chunk_tokens - budget


class LongContextMemoryEnv(gym.Env):
    """Read a long context chunk by chunk into a bounded memory, then answer a question.

    ## Description
    MemAgent's setting (Yu et al., 2025). The question is shown up front; the context (documents,
    a haystack, a story) arrives in chunks of `chunk_tokens` tokens. After each chunk the agent
    writes its new memory, which overwrites the old one (at most `memory_tokens` tokens). When
    the context is exhausted, the agent sees only the question and its memory and answers.

    ## Observation Space
    `Dict` of Unicode text fields, each with an honest length bound (so `gym.make_vec(...,
    vectorization_mode="async")` reserves little shared memory):

    | field           | content                                                   | max chars                     |
    |-----------------|-----------------------------------------------------------|-------------------------------|
    | `question`      | the question                                              | `max_question_chars` (16,384) |
    | `chunk`         | the new chunk ("" in the answer phase)                    | `chunk_tokens * 16`           |
    | `memory`        | the current memory, initially "No previous memory"        | `memory_tokens * 16`          |
    | `phase`         | "update", "answer", or "done" after the answer            | 128                           |
    | `progress`      | a human-readable position in the stream                   | 128                           |
    | `answer_format` | the format the answer is read in: "boxed", "answer_is", "plain" | 128                     |

    16 characters per budgeted token (`memgym.envs.spaces.CHARS_PER_TOKEN`) is about 3x real
    text; a pathological chunk or memory write (a 1 MB word) is cut there. A question over
    `max_question_chars` is a DataError at reset. `memgym.rewards.ANSWER_FORMATS` maps each
    `answer_format` to a one-line instruction an agent may show its model.

    ## Action Space
    `UnicodeText(0, 2**20)`. In the update phase: the new memory. In the answer phase: the
    completion holding the answer in `answer_format`. Every string is accepted, longer ones too
    (a memory write is cut to the memory's bound; an answer is scored on its last 2**20
    characters); a non-string action is a ConfigError.

    ## Rewards
    0 at update steps, which score no component (their `info["reward_components"]` is empty).
    At the answer step the rubric's weighted sum of:
      - `accuracy`: the env extracts the answer with `answer_format`'s parser (MemAgent's parsers,
        memgym.rewards.extraction: the last `\\boxed{}`; the text after the last "the answer
        is"; or the whole text for "plain") and scores it with the scorer. When the parser finds
        nothing (or an empty answer), accuracy is 0, as in MemAgent's evaluation; with
        `lenient_extraction=True` the whole text is scored instead. Scorers that do their own
        extraction (`strict_boxed_em`, MemAgent's training reward, and `boxed_em_normalized`;
        see `memgym.rewards.reads_raw_text`) receive the raw completion and alone decide.
      - `format`: 1 if the parser found a non-empty answer.
      - `memory_budget`: fraction of the episode's memory writes within budget.
    `info["reward_components"]` holds the components the step scored, `info["reward_weights"]`
    the weights; `reward == sum(weights[k] * components[k])` over the scored components. The
    answer step's info also holds `episode_result` (`EPISODE_RESULT_KEY`), the episode's result
    (`reward`, `reward_components`: here the answer step's own), which eval and the trainer
    read. The answer step's info also has
    `answer` (the extracted text, "" if none), `answer_extracted`, `scorer` and `format_errors`.

    ## Episode End
    Terminates after the answer. Never truncates: the number of steps is the number of chunks
    plus one.

    ## Arguments
    - `tasks`: the task source (any sequence of `Task`).
    - `chunk_tokens` (5000), `memory_tokens` (1024): the chunk size and the memory budget.
    - `memory_overflow`: "truncate" | "penalize" | "reject".
    - `initial_memory`: the memory before the first write ("No previous memory").
    - `tokenizer`: None/"words" (offline default), or a transformers tokenizer id/path/object;
      `info["token_counter"]` at reset names the counter in use.
    - `scorer`: a name in `memgym.rewards.SCORERS` or a callable; None uses each task's own
      scorer, falling back to "sub_em" (MemAgent's test verifier).
    - `answer_format`: "boxed" (default) | "answer_is" | "plain".
    - `lenient_extraction` (False): score the whole text when the parser extracts nothing.
    - `max_question_chars` (16,384): the question field's bound.
    - `reward_weights`: overrides of DEFAULT_REWARD_WEIGHTS; `source`: a description for `info`.

    `reset(seed=s, options={"task_id": t})` plays task t (file order; any integer, numpy ones
    included) deterministically; without a task_id the task is drawn from `np_random`.

    ## Version History
    v0: initial release. Later in v0: MemAgent's own answer parsers and scorers, accuracy 0
    without an extracted answer, bounded text spaces, the `answer_format` observation field.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, tasks: Sequence[Task], *, chunk_tokens: int = 5000,
                 memory_tokens: int = 1024, memory_overflow: str = "truncate",
                 initial_memory: str = NO_MEMORY, tokenizer: Any = None,
                 scorer: Any = None, answer_format: str = "boxed",
                 lenient_extraction: bool = False, max_question_chars: int = 16384,
                 reward_weights: Mapping[str, float] | None = None,
                 source: str = "", render_mode: str | None = None):
        if len(tasks) == 0:
            raise ConfigError(f"the task source {source or '(unnamed)'} holds no tasks")
        if chunk_tokens <= 0:
            raise ConfigError(f"chunk_tokens must be positive, got {chunk_tokens}")
        if max_question_chars <= 0:
            raise ConfigError(f"max_question_chars must be positive, got {max_question_chars}")
        check_answer_format(answer_format)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}; choose None or 'ansi'")
        self.tasks = tasks
        self.chunk_tokens = chunk_tokens
        self.counter = load_token_counter(tokenizer)
        self.slot = OverwriteSlot(memory_tokens, memory_overflow, initial_memory, self.counter,
                                  max_chars=chars_for_tokens(memory_tokens))
        if isinstance(scorer, str):
            get_scorer(scorer)  # fail at construction on an unknown name
        self.scorer = scorer
        self.answer_format = answer_format
        self.lenient_extraction = bool(lenient_extraction)
        self.max_question_chars = max_question_chars
        self.rubric = Rubric.from_weights(DEFAULT_REWARD_WEIGHTS, reward_weights)
        self.source = source
        self.render_mode = render_mode
        short = UnicodeText(_SHORT_FIELD_CHARS)
        self.observation_space = spaces.Dict({
            "question": UnicodeText(max_question_chars),
            "chunk": UnicodeText(chars_for_tokens(chunk_tokens)),
            "memory": UnicodeText(chars_for_tokens(memory_tokens)),
            "phase": short, "progress": short, "answer_format": short,
        })
        self.action_space = UnicodeText(MAX_ACTION_CHARS)
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
        if not isinstance(task_id, numbers.Integral) or isinstance(task_id, bool):
            raise ConfigError(f"options['task_id']={task_id!r} must be an integer "
                              f"(0..{self.num_tasks - 1}), got {type(task_id).__name__}")
        task_id = int(task_id)
        if not 0 <= task_id < self.num_tasks:
            raise ConfigError(
                f"options['task_id']={task_id!r} is out of range: this env has {self.num_tasks} "
                f"tasks (ids 0..{self.num_tasks - 1})"
            )
        self.task = self.tasks[task_id]
        if len(self.task.question) > self.max_question_chars:
            raise DataError(
                f"task {task_id} of {self.source or 'the task source'}: its question has "
                f"{len(self.task.question)} characters, over max_question_chars="
                f"{self.max_question_chars}; pass a larger max_question_chars")
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
        info["token_counter"] = self.counter.name
        return self._obs(), info

    def step(self, action: str):
        """Apply a memory write (update phase) or score the answer (answer phase)."""
        if self.task is None or self._phase == DONE:
            raise gym.error.ResetNeeded("call reset() before step() (the episode has ended)")
        if not isinstance(action, str):
            raise ConfigError(f"the action must be a str (the memory, or the answer), got "
                              f"{type(action).__name__} {action!r:.80}")
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
        # An update step scores nothing (memory_budget is scored once, at the answer, over
        # every write): no component reads as a failure here.
        info["reward_components"], info["reward_weights"] = {}, dict(self.rubric.weights)
        return self._obs(), 0.0, False, False, info

    def _answer(self, text: str):
        text = text[-MAX_ACTION_CHARS:]
        extracted = extract_answer(text, self.answer_format)
        problems = []
        if extracted is None:
            problems.append(f"no answer in the {self.answer_format!r} format")
        elif not extracted.strip():
            problems.append("empty answer")
        scorer_name = self.scorer if self.scorer is not None else (self.task.scorer or "sub_em")
        scorer = get_scorer(scorer_name)
        if reads_raw_text(scorer):
            prediction = text  # it extracts for itself (strict_boxed_em: MemAgent's reward)
        elif not problems:
            prediction = extracted
        else:
            prediction = text.strip() if self.lenient_extraction else None
        accuracy = 0.0 if prediction is None else float(scorer(prediction, self.task.answers))
        components = {"accuracy": accuracy, "format": float(not problems),
                      "memory_budget": self.slot.budget_use}
        reward = self.rubric.total(components)
        self._phase = DONE
        info = self._info()
        info.update(answer=extracted or "", answer_extracted=not problems,
                    golds=list(self.task.answers), reward_components=components,
                    reward_weights=dict(self.rubric.weights),
                    scorer=scorer_name if isinstance(scorer_name, str) else scorer.__name__,
                    format_errors=problems)
        info[EPISODE_RESULT_KEY] = self.rubric.episode_result(components)
        obs = {"question": self.task.question, "chunk": "", "memory": self.slot.text,
               "phase": DONE, "progress": "episode finished", "answer_format": self.answer_format}
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
                "phase": self._phase, "progress": progress, "answer_format": self.answer_format}

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
