"""The dialogue memory environment: a conversation streamed into a memory bank, then questions."""

from __future__ import annotations

import inspect
import logging
import numbers
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from memgym.data.dialogue import Conversation, DialogueQuestion, DialogueTurn, render_turn_text
from memgym.envs.spaces import MAX_TEXT_LENGTH, UnicodeText
from memgym.errors import ConfigError, DataError, unknown_name
from memgym.memory.bank import (
    MemoryBank,
    MemoryEntry,
    MemoryOperation,
    OperationResult,
    count_operations,
    parse_memory_operations,
    parse_rmm_operations,
)
from memgym.memory.retrieval import Retriever, shared_retriever
from memgym.memory.view import format_memories, shown_memories
from memgym.rewards.locomo import locomo_scores
from memgym.rewards.rubric import EPISODE_RESULT_KEY, Rubric

__all__ = [
    "MAX_ANSWER_CHARS",
    "PROTOCOLS",
    "DialogueMemoryEnv",
    "Judge",
    "Reader",
    "memory_entries_space",
    "parse_citations",
    "render_memories",
]

logger = logging.getLogger(__name__)

WRITE, ANSWER, DONE = "write", "answer", "done"

PROTOCOLS: dict[str, dict[str, Any]] = {
    "memory_r1": {"stream": "turn", "top_k": 60, "per_speaker_k": 30},
    "rmm": {"stream": "session", "top_k": 20, "per_speaker_k": 0},
}
"""Each protocol's operation format and its defaults: Memory-R1 streams turn by turn and shows
60 memories (30 per speaker) at a question; RMM reflects at session end and retrieves K=20."""

ANSWER_COMPONENTS = ("f1", "em", "bleu1", "citation")
WRITE_COMPONENTS = ("op_validity", "bank_size")
DEFAULT_REWARD_WEIGHTS: dict[str, float] = {"f1": 1.0, "em": 0.0, "bleu1": 0.0, "citation": 0.0,
                                            "op_validity": 0.0, "bank_size": 0.0}
"""LoCoMo's F1 alone moves the answer steps' reward by default; with a frozen reader its score
(weight 1) is the write steps' reward (Memory-R1's manager reward); a judge enters at weight 0."""

MAX_ANSWER_CHARS = 16384
"""An answer is scored on its first MAX_ANSWER_CHARS characters (after the citation tag is
removed): LoCoMo's answers are a few words, and a 1 MB answer then scores in milliseconds."""
_CITE_WINDOW = 4096  # the citation tag is looked for in the answer's last characters
_SHORT = 256

BankFactory = Callable[..., MemoryBank]
"""bank_factory(max_entries=..., retriever=...) -> a new, empty MemoryBank (or a subclass): what
the env calls at every reset."""
Reader = Callable[..., str]
"""reader(question, memories) -> answer: the frozen answer agent of frozen-reader mode. A reader
that also takes a keyword `seed` gets one per read, mixed from the episode's reset seed, the
write step and the question id (`memgym.trainer.frozen_reader.FrozenReader` does)."""
Judge = Callable[[str, str, Sequence[str]], "float | None"]
"""judge(question, prediction, golds) -> a score in [0, 1] (an LLM judge, injected), or None
when it has no verdict (a failed request, an unparseable reply): the question's `judge` is then
None (left out of the judge's mean; `memgym eval` counts it as `judge_failed`)."""

_CITE_TAG = re.compile(r"\[\s*(NO_CITE|CITE\s*:([^\]]*))\s*\]", re.IGNORECASE)


def parse_citations(text: str) -> tuple[str, tuple[str, ...] | None]:
    """Split an answer action into the answer and the memory ids it cites.

    The format: the answer, then optionally a trailing tag `[CITE: 3, 7]` (ids of the memories
    the answer used, separated by commas or spaces) or `[NO_CITE]` (RMM's "no memory was
    used"). Only the last tag counts, and only within the last 4096 characters.

    Returns:
        (answer without the tag, stripped; the cited ids: () for [NO_CITE], None without a tag).
    """
    head, tail = text[:-_CITE_WINDOW], text[-_CITE_WINDOW:]
    tags = list(_CITE_TAG.finditer(tail))
    if not tags:
        return text.strip(), None
    tag = tags[-1]
    answer = (head + tail[:tag.start()] + tail[tag.end():]).strip()
    if tag.group(2) is None:
        return answer, ()
    ids = tuple(dict.fromkeys(i for i in re.split(r"[\s,;]+", tag.group(2).strip()) if i))
    return answer, ids


def render_memories(entries: Sequence[MemoryEntry], max_entry_chars: int | None = None, *,
                    numbered: bool = False) -> str:
    """Bank entries as the observation's `memories` text shows them, one per line, each with its id.

    `[3] (Caroline; session 2; 8 May, 2023; updated 9 May, 2023) Caroline moved to Paris`: the
    bank id to name in UPDATE/DELETE and in citations, then who said it, when it was made and
    last changed, then the text; an entry that an UPDATE or MERGE changed adds an indented
    line `    (before: <its previous text>)`. `numbered=True` (RMM's write steps) starts each line with its
    0-based position, `#0 [3] (...) ...`: RMM's `Merge(index, ...)` names that position, as in
    its prompt. "(no memories)" for an empty list. It is `format_memories(..., "memgym")` of
    the entries; agents read `memory_entries` instead (see `memgym.memory.view`).
    """
    return format_memories(shown_memories(entries, max_entry_chars), "memgym", numbered=numbered)


def memory_entries_space(max_entry_chars: int) -> spaces.Sequence:
    """The space of `memory_entries`: a sequence of `ShownMemory` dicts of Unicode text."""
    short = UnicodeText(_SHORT)
    text = UnicodeText(max_entry_chars)
    return spaces.Sequence(spaces.Dict({
        "id": short, "text": text, "speaker": short, "session": short, "created_at": short,
        "updated_at": short, "before": text}), stack=False)


@dataclass(frozen=True)
class _WriteUnit:
    """One write step: the turns it streams and where they sit."""

    turns: tuple[DialogueTurn, ...]
    session: int
    date_time: str
    last_position: int  # stream position of its last turn


class DialogueMemoryEnv(gym.Env):
    """Stream a conversation into a memory bank through memory operations, then answer questions.

    ## Description
    The dialogue-memory setting of Memory-R1 (Yan et al., 2025) and RMM (Tan et al., 2025) on
    LoCoMo, LongMemEval, MemoryAgentBench or the synthetic task. A task is one `Conversation`.
    The env streams it turn by turn (`stream="turn"`, Memory-R1) or session by session
    (`stream="session"`, RMM's reflection at session end); at each such write step the agent
    edits the bank the env owns with memory operations. Then the conversation's questions are
    asked one per step (all, or a subset), each with the memories retrieved for it, and the
    agent answers. The bank is new at every reset: nothing carries over between episodes.

    ## Observation Space
    `Dict` of Unicode text fields with honest bounds:

    | field           | write step                                   | answer step              | max chars |
    |-----------------|----------------------------------------------|--------------------------|-----------|
    | `phase`         | "write"                                      | "answer" ("done" after)  | 256 |
    | `dialogue`      | the new turn(s), "[dia_id] speaker: text", under a "Session n (date)" line | "" | `max_dialogue_chars` (65,536) |
    | `date`          | the session's date-time                      | the question date, else the last session's | 256 |
    | `memories`      | the `write_top_k` entries retrieved for the new turn(s) | the entries retrieved for the question | see below |
    | `memory_entries`| the same entries as data: a tuple of `ShownMemory` dicts | the same | see below |
    | `question`      | ""                                           | the question             | `max_question_chars` (16,384) |
    | `progress`      | "turn 3 of 419, session 1 of 19" / "session 2 of 19" | "question 2 of 152" | 256 |
    | `action_format` | the protocol: "memory_r1" or "rmm"           | "answer"                 | 256 |

    `memory_entries` is what agents read: a `Sequence` of `Dict`s of text, one per memory shown,
    in order, with `id`, `text`, `speaker` ("" for none), `session` (digits, "" for none),
    `created_at`, `updated_at` and `before` (the text an UPDATE or MERGE replaced, "" if
    none); `memgym.memory.format_memories` turns them into each protocol's prompt block. No
    memory text can change the ids, speakers, dates or number of entries an agent sees.
    `memories` is the same entries rendered (`format_memories(..., "memgym")`, for people and
    text-only policies), one per line with id, speaker, session and timestamps (and the text an
    UPDATE replaced, indented below; line breaks inside a text become spaces); it holds at most
    `2 * max(top_k, per_speaker_k * speakers, write_top_k) * (max_entry_chars + 256)` characters. A turn longer than `max_dialogue_chars` is cut there (`info["dialogue_cut"]`).

    ## Action Space
    `UnicodeText(0, 2**20)`; longer strings are accepted too. Every string is scored, none
    raises (a non-string is a ConfigError).
      - Write step, protocol "memory_r1": Memory-R1/mem0 JSON, `{"memory": [{"id": "3", "text":
        "...", "event": "ADD"|"UPDATE"|"DELETE"|"NOOP"}]}` (NONE = NOOP; a bare list, code fences
        and prose around it are tolerated); protocol "rmm": RMM's `Add()` / `Merge(index,
        merged_summary)` lines, where `index` is the 0-based position (`#i`) of a memory shown
        at this step, as in RMM's prompt, and `Add(summary)` holds the new summary; `NO_TRAIT`
        (RMM's "the session reveals nothing") stores nothing and is valid. An operation
        registered with `memgym.memory.register_operation` is read in the formats it names
        (both by default: `{"event": "APPEND", "id": "3", ...}`; `Append(0, ...)`). Each operation is
        validated on its own (unknown id, duplicate
        add, missing text, text over `max_entry_chars`, bank full): refused ones are listed with
        their reason in `info["operations"]`, the others apply. New entries get the turn's
        speaker (turn stream; None for a session), the session, its date and the dia_ids.
      - Answer step: the answer, optionally followed by `[CITE: 3, 7]` (the ids of the memories
        it used) or `[NO_CITE]` (see `parse_citations`).

    ## Rewards
    `info["reward_components"]` holds every component; the reward is their weighted sum
    (`info["reward_weights"]`, DEFAULT_REWARD_WEIGHTS overridden by `reward_weights`).
      - Answer steps: `f1`, `em`, `bleu1` by LoCoMo's rules per category
        (`memgym.rewards.locomo.locomo_scores`: stemmed token F1, token-set EM, mem0's BLEU-1);
        `citation`: with a tag, the fraction of cited ids among the memories shown at that step
        (1 for `[NO_CITE]`), 0 without a tag; `judge` (only with `judge=`): its score (0 in
        the step's reward when it gave no verdict; None in the question's record).
      - Write steps: `op_validity`: the fraction of the action's operations applied (0 when
        nothing parses; 1 for an explicit empty list, "nothing to store"; each refusal's reason
        is in `info["op_errors"]` and `info["operations"]`); `bank_size`: 1 - entries / capacity,
        capacity = `max_entries`, else the conversation's number of turns (clipped to [0, 1]);
        `reader` (only with `reader=`): frozen-reader mode, below.
      - A step's `info["reward_components"]` holds only the components it scores (the
        answer components at an answer step, the write components at a write step): one that
        is absent was not scored there, and adds nothing to that step's reward. With the
        default weights (F1 alone) a write step's reward is therefore 0: it is not a failure,
        the write is scored through the answers (or, in frozen-reader mode, by `reader`).
    **Frozen-reader mode** (`reader=`, Memory-R1's manager reward): after a write step's edit,
    the reader answers each question *linked* to the step from the memories retrieved for it
    (as an answer step would show them), and `reader` is the mean of `reader_metric` (LoCoMo EM
    by default, as Memory-R1) over them; 0 when no question is linked. `reader_scope="linked"`
    (default) links the questions whose `answer_after` turn is in the step (their last
    evidence just arrived); `"seen"` links every asked question whose `answer_after` is at or
    before the step. `info["reader_answers"]` lists them.

    The last step's info also holds `episode_result` (`EPISODE_RESULT_KEY`): the episode's
    result and aggregates, the one result that `memgym eval`, the trainer and their logs read:
    `reward` (the weighted sum of
    the episode's components; with the default weights the mean F1 over the questions),
    `reward_components` (answer components averaged over questions, `op_validity` over write steps, `reader` over write steps with a
    linked question, `bank_size` after the last write), `questions` (per question: id,
    category, prediction, golds, f1, em, bleu1, judge, recall of evidence sessions and turns by
    the memories shown), `bank_size`, `op_counts` (`memgym.memory.count_operations`
    summed over the episode: "ADD/applied", ..., "MALFORMED/refused"), `num_write_steps` and `num_questions`.

    ## Episode End
    Terminates after the last question (after the last write step when no question is asked).
    Never truncates: an episode has one step per turn (or session) plus one per question.

    ## Arguments
    - `conversations`: the task source (a sequence of `Conversation`).
    - `protocol`: "memory_r1" (default) or "rmm": the operation format and the defaults below.
    - `stream`: "turn" or "session" (default: the protocol's: turn for Memory-R1, session RMM).
    - `retrieval`: "bm25" (default, offline) or "dense"; `encoder`: the dense encoder's name or
      path (default all-minilm-l6-v2); both go to `memgym.memory.retrieval.shared_retriever`
      (one dense retriever, encoder and embedding cache per process and encoder name).
      `retriever`: a ready `Retriever` instead (any object with `rank(query, passages, k)`;
      envs may share one).
    - `bank_factory`: what builds the bank at every reset, called as
      `bank_factory(max_entries=..., retriever=...)` (default `MemoryBank`; pass a subclass
      or a function to inject your own substrate). Operations a user registers
      (`memgym.memory.register_operation`) need no factory: the default bank applies them.
    - `top_k`: memories shown at a question (Memory-R1 60, RMM 20); `per_speaker_k`: retrieve
      that many per speaker instead (Memory-R1: 30 each; 0 turns it off; default: the
      protocol's, used in the turn stream only; a positive per_speaker_k with
      stream="session" is a ConfigError, since session entries have no speaker);
      `write_top_k` (10): memories shown at a write.
    - `reader`, `reader_metric` ("em" | "f1" | "bleu1"), `reader_scope`: frozen-reader mode.
    - `judge`: an LLM judge `judge(question, prediction, golds) -> [0, 1]` (the env imports no
      model). Injected callables must pickle for the env to pickle. With a reader or a judge
      the env's `step_blocks` is True: `step` waits on a model, so `run_episode` steps it on a
      worker thread (the callables must be thread-safe; `FrozenReader` and `LLMJudge` are).
    - `questions`: None (all), an int n (n questions drawn with the reset seed, kept in order)
      or a list of question ids / indices; `reset(options={"questions": ...})` overrides it.
    - `max_entries`: the bank's bound (None: unbounded); `max_entry_chars` (2048): the longest
      memory text an operation may write.
    - `max_dialogue_chars` (65,536), `max_question_chars` (16,384): field bounds.
    - `reward_weights`, `source`, `render_mode` ("ansi").

    `reset(seed=s, options={"task_id": t})` plays conversation t (any integer) deterministically;
    without a task_id one is drawn from `np_random`.

    ## Version History
    v0: initial release.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, conversations: Sequence[Conversation], *, protocol: str = "memory_r1",
                 stream: str | None = None, retrieval: str = "bm25", encoder: str | None = None,
                 top_k: int | None = None, per_speaker_k: int | None = None,
                 write_top_k: int = 10, reader: Reader | None = None,
                 reader_metric: str = "em", reader_scope: str = "linked",
                 judge: Judge | None = None, questions: int | Sequence[int | str] | None = None,
                 max_entries: int | None = None, max_entry_chars: int = 2048,
                 max_dialogue_chars: int = 65536, max_question_chars: int = 16384,
                 reward_weights: Mapping[str, float] | None = None, source: str = "",
                 render_mode: str | None = None, retriever: Retriever | None = None,
                 bank_factory: BankFactory | None = None):
        if len(conversations) == 0:
            raise ConfigError(f"the conversation source {source or '(unnamed)'} holds none")
        if protocol not in PROTOCOLS:
            raise unknown_name("protocol", str(protocol), PROTOCOLS)
        defaults = PROTOCOLS[protocol]
        self.stream = defaults["stream"] if stream is None else stream
        if self.stream not in ("turn", "session"):
            raise ConfigError(f"stream={stream!r}; choose 'turn' or 'session'")
        if reader_metric not in ("em", "f1", "bleu1"):
            raise ConfigError(f"reader_metric={reader_metric!r}; choose 'em', 'f1' or 'bleu1'")
        if reader_scope not in ("linked", "seen"):
            raise ConfigError(f"reader_scope={reader_scope!r}; choose 'linked' or 'seen'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}; choose None or 'ansi'")
        self.top_k = defaults["top_k"] if top_k is None else int(top_k)
        per_speaker = defaults["per_speaker_k"] if per_speaker_k is None else int(per_speaker_k)
        self.per_speaker_k = per_speaker if self.stream == "turn" or per_speaker_k else 0
        for name, value in (("top_k", self.top_k), ("write_top_k", write_top_k),
                            ("max_entry_chars", max_entry_chars),
                            ("max_dialogue_chars", max_dialogue_chars),
                            ("max_question_chars", max_question_chars)):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if self.per_speaker_k < 0:
            raise ConfigError(f"per_speaker_k must be 0 (off) or positive, got {per_speaker_k}")
        if self.stream == "session" and self.per_speaker_k:  # it showed "(no memories)"
            raise ConfigError(
                f"per_speaker_k={per_speaker_k} needs stream='turn': a session's entries have "
                "no single speaker, so retrieving per speaker finds none; pass per_speaker_k=0 "
                f"(top_k={self.top_k} memories of any speaker) or stream='turn'")
        if max_entries is not None and max_entries < 1:
            raise ConfigError(f"max_entries must be None or at least 1, got {max_entries}")
        self.conversations = conversations
        self.protocol = protocol
        self.write_top_k = int(write_top_k)
        self.reader, self.reader_metric, self.reader_scope = reader, reader_metric, reader_scope
        self._reader_takes_seed = reader is not None and _takes_seed(reader)
        self.judge = judge
        # An injected model (reader, judge) makes step() wait on it: run_episode then steps
        # this env on a worker thread, so other episodes go on meanwhile.
        self.step_blocks = reader is not None or judge is not None
        self.questions = questions
        self.max_entries = max_entries
        self.max_entry_chars = int(max_entry_chars)
        self.max_dialogue_chars = int(max_dialogue_chars)
        self.max_question_chars = int(max_question_chars)
        self.source = source
        self.render_mode = render_mode
        self.rubric = self._rubric(reward_weights)
        if retriever is not None and not isinstance(retriever, Retriever):
            raise ConfigError(f"retriever must have rank(query, passages, k), got "
                              f"{type(retriever).__name__} (see memgym.memory.make_retriever)")
        if bank_factory is not None and not callable(bank_factory):
            raise ConfigError(f"bank_factory must be callable as bank_factory(max_entries=..., "
                              f"retriever=...), got {type(bank_factory).__name__}")
        self.retriever = (retriever if retriever is not None
                          else shared_retriever(retrieval, encoder=encoder))  # one encoder per process
        self.retrieval = retrieval if retriever is None else type(retriever).__name__
        self.bank_factory: BankFactory = bank_factory or MemoryBank
        speakers = max(len(c.speakers) for c in conversations)
        shown = max(self.top_k, self.per_speaker_k * max(speakers, 1), self.write_top_k)
        short = UnicodeText(_SHORT)
        self.observation_space = spaces.Dict({
            "phase": short,
            "dialogue": UnicodeText(max_dialogue_chars + _SHORT),
            "date": short,
            "memories": UnicodeText(shown * 2 * (max_entry_chars + _SHORT)),
            "memory_entries": memory_entries_space(max_entry_chars),
            "question": UnicodeText(max_question_chars),
            "progress": short,
            "action_format": short,
        })
        self.action_space = UnicodeText(MAX_TEXT_LENGTH)
        self.task: Conversation | None = None
        self.bank: MemoryBank | None = None
        self._phase = DONE

    def _rubric(self, overrides: Mapping[str, float] | None) -> Rubric:
        defaults = dict(DEFAULT_REWARD_WEIGHTS)
        if self.judge is not None:
            defaults["judge"] = 0.0
        if self.reader is not None:
            defaults["reader"] = 1.0
        for name, needs in (("judge", self.judge), ("reader", self.reader)):
            if overrides and name in overrides and needs is None:
                raise ConfigError(f"reward_weights[{name!r}] needs an injected {name}: pass "
                                  f"{name}=<callable> to the env, or drop the weight")
        return Rubric.from_weights(defaults, overrides)

    # -- public facts ---------------------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        """How many conversations the source holds; valid task ids are 0 .. num_tasks - 1."""
        return len(self.conversations)

    @property
    def conversation(self) -> Conversation | None:
        """The conversation of the current episode (also `task`)."""
        return self.task

    # -- Gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode on `options["task_id"]` with a new, empty bank."""
        super().reset(seed=seed)
        options = options or {}
        task_id = self._task_id(options.get("task_id"))
        self.task = conversation = self.conversations[task_id]
        self._task_id_value = task_id
        self.bank = self.bank_factory(max_entries=self.max_entries, retriever=self.retriever)
        self._units = self._write_units(conversation)
        self._positions = {t.dia_id: i for i, t in enumerate(conversation.turns())}
        self._turn_session = {t.dia_id: t.session for t in conversation.turns()}
        self._asked = self._select_questions(conversation, options.get("questions",
                                                                         self.questions))
        for q in self._asked:
            if len(q.question) > self.max_question_chars:
                raise DataError(
                    f"conversation {conversation.conversation_id} question {q.question_id}: "
                    f"{len(q.question)} characters, over max_question_chars="
                    f"{self.max_question_chars}; pass a larger max_question_chars")
        self._unit_index = self._question_index = 0
        self._phase = WRITE if self._units else (ANSWER if self._asked else DONE)
        self._write_log: list[dict[str, Any]] = []
        self._question_log: list[dict[str, Any]] = []
        self._op_counts: dict[str, int] = {}
        self._obs_cache = self._observe()
        info = {"task_id": task_id, "conversation_id": conversation.conversation_id,
                "phase": self._phase, "source": self.source, "protocol": self.protocol,
                "stream": self.stream, "num_write_steps": len(self._units),
                "num_questions": len(self._asked),
                "question_ids": [q.question_id for q in self._asked]}
        return self._obs_cache, info

    def step(self, action: str):
        """Apply memory operations (write step) or score an answer (answer step)."""
        if self.task is None or self._phase == DONE:
            raise gym.error.ResetNeeded("call reset() before step() (the episode has ended)")
        if not isinstance(action, str):
            raise ConfigError(f"the action must be a str (memory operations, or the answer), "
                              f"got {type(action).__name__} {action!r:.80}")
        if self._phase == WRITE:
            components, info = self._write(action)
        else:
            components, info = self._answer(action)
        # Only the components this step scores: an answer step's f1 is not a write's failure.
        reward = self.rubric.total(components)
        info["reward_components"], info["reward_weights"] = components, dict(self.rubric.weights)
        (self._write_log if info["phase"] == WRITE else self._question_log)[-1]["reward"] = reward
        self._advance()
        terminated = self._phase == DONE
        if terminated:
            info[EPISODE_RESULT_KEY] = self._episode_summary()
        self._obs_cache = self._observe()
        return self._obs_cache, reward, terminated, False, info

    def render(self) -> str | None:
        """The current observation as text (render_mode="ansi")."""
        if self.render_mode != "ansi" or self.task is None:
            return None
        return "\n".join(f"[{k}] {v}" for k, v in self._obs_cache.items())

    # -- episode layout -------------------------------------------------------------------------
    def _task_id(self, task_id: Any) -> int:
        if task_id is None:
            return int(self.np_random.integers(self.num_tasks))
        if not isinstance(task_id, numbers.Integral) or isinstance(task_id, bool):
            raise ConfigError(f"options['task_id']={task_id!r} must be an integer "
                              f"(0..{self.num_tasks - 1}), got {type(task_id).__name__}")
        if not 0 <= int(task_id) < self.num_tasks:
            raise ConfigError(f"options['task_id']={task_id!r} is out of range: this env has "
                              f"{self.num_tasks} conversations (ids 0..{self.num_tasks - 1})")
        return int(task_id)

    def _write_units(self, conversation: Conversation) -> list[_WriteUnit]:
        units, position = [], -1
        for session in conversation.sessions:
            if not session.turns:
                continue
            if self.stream == "session":
                position += len(session.turns)
                units.append(_WriteUnit(session.turns, session.index, session.date_time, position))
                continue
            for turn in session.turns:
                position += 1
                units.append(_WriteUnit((turn,), session.index, session.date_time, position))
        return units

    def _select_questions(self, conversation: Conversation, choice: Any
                          ) -> list[DialogueQuestion]:
        questions = list(conversation.questions)
        if choice is None:
            return questions
        if isinstance(choice, numbers.Integral) and not isinstance(choice, bool):
            n = int(choice)
            if n < 0:
                raise ConfigError(f"questions={choice}: ask a non-negative number of questions")
            if n >= len(questions):
                return questions
            picks = sorted(int(i) for i in self.np_random.choice(len(questions), n,
                                                                 replace=False))
            return [questions[i] for i in picks]
        if isinstance(choice, (str, bytes)) or not isinstance(choice, Sequence):
            raise ConfigError(f"questions={choice!r:.80}: give None, a count, or a list of "
                              "question ids or indices")
        by_id = {q.question_id: i for i, q in enumerate(questions)}
        picks = []
        for item in choice:
            if isinstance(item, str):
                if item not in by_id:
                    raise ConfigError(f"questions: {conversation.conversation_id} has no "
                                      f"question {item!r}"
                                      f"{' (ids look like ' + questions[0].question_id + ')' if questions else ''}")
                picks.append(by_id[item])
            elif isinstance(item, numbers.Integral) and 0 <= int(item) < len(questions):
                picks.append(int(item))
            else:
                raise ConfigError(f"questions: {item!r} is neither a question id nor an index "
                                  f"0..{len(questions) - 1} of {conversation.conversation_id}")
        return [questions[i] for i in dict.fromkeys(picks)]

    def _advance(self) -> None:
        if self._phase == WRITE:
            self._unit_index += 1
            if self._unit_index >= len(self._units):
                self._phase = ANSWER if self._asked else DONE
        else:
            self._question_index += 1
            if self._question_index >= len(self._asked):
                self._phase = DONE

    # -- write steps ----------------------------------------------------------------------------
    def _parse(self, text: str) -> tuple[list[MemoryOperation], list[OperationResult]]:
        if self.protocol == "rmm":
            return parse_rmm_operations(text, candidate_ids=self._write_shown)
        return parse_memory_operations(text)

    def _write(self, action: str) -> tuple[dict[str, float], dict[str, Any]]:
        unit = self._units[self._unit_index]
        ops, results = self._parse(action)  # results: the items that did not parse
        speaker = unit.turns[0].speaker if self.stream == "turn" else None
        context = {"speaker": speaker, "session": unit.session, "timestamp": unit.date_time,
                   "source_ids": tuple(t.dia_id for t in unit.turns)}
        for op in ops:  # in the order written, each on its own
            if op.text is not None and len(op.text) > self.max_entry_chars:
                results.append(OperationResult(op, False, f"{op.event} text of {len(op.text)} "
                                               f"characters is over max_entry_chars="
                                               f"{self.max_entry_chars}", None))
            else:
                results.extend(self.bank.apply([op], **context))
        applied = [r for r in results if r.applied]
        for key, value in count_operations(results).items():
            self._op_counts[key] = self._op_counts.get(key, 0) + value
        components = {"op_validity": len(applied) / len(results) if results else 1.0,
                      "bank_size": self._bank_room()}
        info = {"phase": WRITE, "step_dia_ids": [t.dia_id for t in unit.turns],
                "session": unit.session, "operations": [_result_row(r) for r in results],
                "op_errors": [r.reason for r in results if not r.applied],
                "bank_size": len(self.bank), "memory_trace": self.bank.describe_changes(applied)}
        if self.reader is not None:
            components["reader"], info["reader_answers"] = self._reader_reward(unit)
        self._write_log.append({"op_validity": components["op_validity"],
                                "bank_size": components["bank_size"],
                                "reader": components.get("reader"),
                                "reader_questions": len(info.get("reader_answers", ()))})
        return components, info

    def _bank_room(self) -> float:
        capacity = self.max_entries or max(self.task.num_turns, 1)
        return min(1.0, max(0.0, 1.0 - len(self.bank) / capacity))

    def _linked_questions(self, unit: _WriteUnit) -> list[DialogueQuestion]:
        dia_ids = {t.dia_id for t in unit.turns}
        linked = []
        for q in self._asked:
            if q.answer_after is None or q.answer_after not in self._positions:
                continue
            if self.reader_scope == "linked":
                if q.answer_after in dia_ids:
                    linked.append(q)
            elif self._positions[q.answer_after] <= unit.last_position:
                linked.append(q)
        return linked

    def _reader_reward(self, unit: _WriteUnit) -> tuple[float, list[dict[str, Any]]]:
        rows = []
        for q in self._linked_questions(unit):
            memories = self._retrieve_for_question(q.question)
            answer = str(self._read(q, memories))[:MAX_ANSWER_CHARS]
            score = locomo_scores(answer, q.answers, q.category)[self.reader_metric]
            rows.append({"question_id": q.question_id, "answer": answer, "score": score})
        mean = sum(r["score"] for r in rows) / len(rows) if rows else 0.0
        return mean, rows

    def _read(self, q: DialogueQuestion, memories: Sequence[MemoryEntry]) -> str:
        """The reader's answer; a reader that takes `seed` gets one from (episode seed, step,
        question), so its sampling depends on neither the pool's scheduling nor other envs."""
        if not self._reader_takes_seed:
            return self.reader(q.question, memories)
        from memgym.agents.episode import derive_seed  # the one seed helper (envs sit below)

        seed = derive_seed(self.np_random_seed, self._unit_index,
                           zlib.crc32(q.question_id.encode()))
        return self.reader(q.question, memories, seed=seed)

    # -- answer steps ---------------------------------------------------------------------------
    def _retrieve_for_question(self, question: str) -> list[MemoryEntry]:
        if self.per_speaker_k:
            return list(self.bank.retrieve_per_speaker(question, self.per_speaker_k,
                                                       list(self.task.speakers)))
        return list(self.bank.retrieve(question, self.top_k))

    def _answer(self, action: str) -> tuple[dict[str, float], dict[str, Any]]:
        q = self._asked[self._question_index]
        shown = self._shown
        answer, cited = parse_citations(action)
        answer = answer[:MAX_ANSWER_CHARS]
        scores = locomo_scores(answer, q.answers, q.category)
        shown_ids = [e.id for e in shown]
        if cited is None:
            citation = 0.0
        elif not cited:
            citation = 1.0
        else:
            citation = sum(i in shown_ids for i in cited) / len(cited)
        components = {**scores, "citation": citation}
        judge = None  # no judge, or no verdict (the judge returned None or NaN: a failure)
        if self.judge is not None:
            verdict = self.judge(q.question, answer, list(q.answers))
            if verdict is not None and float(verdict) == float(verdict):
                judge = min(1.0, max(0.0, float(verdict)))
            components["judge"] = 0.0 if judge is None else judge
        recall_session, recall_turn = self._recall(q, shown)
        record = {"question_id": q.question_id, "category": q.category, "prediction": answer,
                  "golds": list(q.answers), "abstention": q.abstention,
                  **{k: components[k] for k in ("f1", "em", "bleu1", "citation")},
                  "judge": judge, "recall_session": recall_session,
                  "recall_turn": recall_turn, "num_retrieved": len(shown)}
        self._question_log.append(record)
        info = {"phase": ANSWER, "question_id": q.question_id, "category": q.category,
                "answer": answer, "golds": list(q.answers), "cited_ids": list(cited or ()),
                "cited_tag": cited is not None, "retrieved_ids": shown_ids,
                "recall_session": recall_session, "recall_turn": recall_turn,
                "memory_trace": "read " + " ".join(f"[{i}]" for i in shown_ids)}
        return components, info

    def _recall(self, q: DialogueQuestion, shown: Sequence[MemoryEntry]
                ) -> tuple[float | None, float | None]:
        """Whether an evidence session is among the shown memories' sessions (LongMemEval's
        recall@k), and the fraction of evidence turns among their source turns (LoCoMo's)."""
        by_id = {s.session_id: s.index for s in self.task.sessions if s.session_id}
        sessions = {by_id[s] for s in q.evidence_sessions if s in by_id}
        sessions |= {self._turn_session[e] for e in q.evidence if e in self._turn_session}
        shown_sessions = {e.session for e in shown}
        shown_turns = {s for e in shown for s in e.source_ids}
        recall_session = float(bool(sessions & shown_sessions)) if sessions else None
        recall_turn = (sum(e in shown_turns for e in q.evidence) / len(q.evidence)
                       if q.evidence else None)
        return recall_session, recall_turn

    # -- observations and summaries -------------------------------------------------------------
    def _observe(self) -> dict[str, Any]:
        if self._phase == WRITE:
            return self._observe_write()
        if self._phase == ANSWER:
            q = self._asked[self._question_index]
            self._shown = self._retrieve_for_question(q.question)
            date = q.question_date or (self.task.sessions[-1].date_time
                                       if self.task.sessions else "")
            return {"phase": ANSWER, "dialogue": "", "date": date[:_SHORT],
                    **self._memory_fields(self._shown), "question": q.question,
                    "progress": f"question {self._question_index + 1} of {len(self._asked)}",
                    "action_format": "answer"}
        entries = list(self.bank) if self.bank is not None else []
        return {"phase": DONE, "dialogue": "", "date": "",
                **self._memory_fields(entries[:self.top_k]), "question": "",
                "progress": "episode finished", "action_format": ""}

    def _observe_write(self) -> dict[str, Any]:
        unit = self._units[self._unit_index]
        dialogue, self._cut = self._render_unit(unit)
        shown = list(self.bank.retrieve("\n".join(t.text for t in unit.turns), self.write_top_k))
        self._write_shown = [e.id for e in shown]
        n = len(self._units)
        where = (f"turn {self._unit_index + 1} of {n}, session {unit.session} of "
                 f"{len(self.task.sessions)}" if self.stream == "turn"
                 else f"session {self._unit_index + 1} of {n}")
        return {"phase": WRITE, "dialogue": dialogue, "date": unit.date_time[:_SHORT],
                **self._memory_fields(shown, numbered=self.protocol == "rmm"),
                "question": "", "progress": where[:_SHORT], "action_format": self.protocol}

    def _memory_fields(self, entries: Sequence[MemoryEntry], numbered: bool = False
                       ) -> dict[str, Any]:
        """The shown memories twice: as data (`memory_entries`, what agents read) and as the
        rendered text (`memories`, for people and text-only policies)."""
        data = shown_memories(entries, self.max_entry_chars)
        return {"memories": format_memories(data, "memgym", numbered=numbered),
                "memory_entries": data}

    def _render_unit(self, unit: _WriteUnit) -> tuple[str, bool]:
        lines = [f"Session {unit.session} ({unit.date_time})"]
        lines += [f"[{t.dia_id}] {render_turn_text(t, with_speaker=True)}" for t in unit.turns]
        text = "\n".join(lines)
        if len(text) <= self.max_dialogue_chars:
            return text, False
        logger.warning("conversation %s: the turn(s) at %s are cut to max_dialogue_chars=%d",
                       self.task.conversation_id, unit.turns[0].dia_id, self.max_dialogue_chars)
        return text[:self.max_dialogue_chars], True

    def _episode_summary(self) -> dict[str, Any]:
        questions = self._question_log
        writes = self._write_log
        components: dict[str, float] = {}
        for name in self.rubric.names:
            if name in WRITE_COMPONENTS or name == "reader":
                continue
            values = [q[name] for q in questions if q.get(name) is not None]
            components[name] = sum(values) / len(values) if values else 0.0
        components["op_validity"] = (sum(w["op_validity"] for w in writes) / len(writes)
                                     if writes else 0.0)
        components["bank_size"] = writes[-1]["bank_size"] if writes else 1.0
        if self.reader is not None:
            scored = [w["reader"] for w in writes if w["reader_questions"]]
            components["reader"] = sum(scored) / len(scored) if scored else 0.0
        return {**self.rubric.episode_result(components),
                "questions": [{k: v for k, v in q.items() if k != "reward"} for q in questions],
                "bank_size": len(self.bank), "op_counts": dict(sorted(self._op_counts.items())),
                "num_write_steps": len(writes), "num_questions": len(questions),
                "top_k": self.top_k, "per_speaker_k": self.per_speaker_k}


def _takes_seed(reader: Callable[..., Any]) -> bool:
    try:
        return "seed" in inspect.signature(reader).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False


def _result_row(result: OperationResult) -> dict[str, Any]:
    op = result.operation
    return {"event": op.event if op else None, "id": op.id if op else None,
            "applied": result.applied, "reason": result.reason, "entry_id": result.entry_id}
