"""Agent kinds: what a recipe's `kind` names. `AgentKind` (a config dataclass plus a builder),
and the shipped kinds' configs and builders (`AGENT_KINDS`); `memgym.agents.recipe` loads
recipes into them.

Each LLM call of a dialogue kind is an `LLMCall` field whose default is the kind's own setting;
the MemAgent-style kinds share flat sampling keys across their calls (`SharedSampling`). A user's
class or factory becomes a kind from its signature (`AgentKind.from_factory`).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from memgym.agents.base import Agent
from memgym.agents.baselines import ContextAnswerer, FullContextAgent, OracleAgent, RetrievalAgent
from memgym.agents.calls import LLMCall
from memgym.agents.overwrite import ANSWER_FIELDS, UPDATE_FIELDS, make_mem1, make_memagent
from memgym.agents.policy import ScriptedPolicyAgent
from memgym.agents.prompts import get_template
from memgym.agents.retrieval import BM25Retriever
from memgym.errors import ConfigError
from memgym.imports import import_callable
from memgym.llm.base import LLMBackend, SamplingParams
from memgym.tokenizers import HFTokenCounter, TokenCounter, load_token_counter

__all__ = [
    "AGENT_KINDS",
    "AgentKind",
    "BankOracleConfig",
    "DialogueFullContextConfig",
    "DialogueOracleConfig",
    "FullContextConfig",
    "Mem0StyleConfig",
    "Mem1Config",
    "MemAgentConfig",
    "MemoryR1Config",
    "OracleConfig",
    "RMMConfig",
    "RagBM25Config",
    "RagTurnsConfig",
    "ScriptedPolicyConfig",
    "SharedSampling",
]


# -- configs of the kinds whose calls share flat sampling keys -----------------------------------
@dataclass
class SharedSampling:
    """Sampling keys shared by every LLM call of a kind (flat recipe keys, MemAgent-style).

    Its `*_max_new_tokens` fields cap each call; `SAMPLING_TOP_K` names its top-k key.
    """

    SAMPLING_TOP_K: ClassVar[str] = "top_k"
    temperature: float = 0.7
    """Sampling temperature; 0 is greedy."""
    top_p: float = 0.95
    """Nucleus sampling."""
    top_k: int = 0
    """Top-k sampling; 0 disables it."""
    chat: bool = True
    """Send prompts as chat messages, templated by the backend's tokenizer."""
    trainable: bool = True
    """Whether the trainer optimises these calls."""


@dataclass
class MemAgentConfig(SharedSampling):
    """MemAgent: overwrite the memory after every chunk, answer from it (boxed or "the answer is").

    Sampling as MemAgent's evaluation: temperature 0.7, top_p 0.95; it trains the updates and
    the answer."""

    name: str = "memagent"
    """The agent's name in results."""
    update_template: str = "memagent_update"
    """Template of the per-chunk memory update (slots question, memory, chunk)."""
    answer_format: str = "boxed"
    """The answer format the final prompt asks for, and the env must extract: "boxed" (MemAgent's
    training prompt TEMPLATE_FINAL_BOXED) or "answer_is" (its released eval prompt, "Therefore,
    the answer is ...", with which run.py evaluates RL-MemoryAgent-7B/14B)."""
    final_template: str | None = None
    """Template of the final answer (slots question, memory); None: MemAgent's for answer_format
    (memagent_final or memagent_final_answer_is)."""
    memory_max_new_tokens: int = 1024
    """Cap of each memory update, in tokens (MemAgent: 1024)."""
    answer_max_new_tokens: int = 1024
    """Cap of the final answer, in tokens (MemAgent's evaluation: 1024)."""


@dataclass
class Mem1Config(SharedSampling):
    """MEM1-style: rewrite one internal state <IS> per chunk, everything else pruned."""

    temperature: float = 0.01
    """Sampling temperature (MEM1's inference client: 0.01)."""
    top_p: float = 1.0
    """Nucleus sampling."""
    name: str = "mem1"
    """The agent's name in results."""
    update_template: str = "mem1_update"
    """Template of a state rewrite (slots question, memory, chunk)."""
    answer_template: str = "mem1_answer"
    """Template of the final turn (slots question, memory)."""
    state_max_new_tokens: int = 1024
    """Cap of each state rewrite, in tokens."""
    answer_max_new_tokens: int = 1024
    """Cap of the final turn (state plus answer), in tokens."""
    state_tag: str = "IS"
    """The tag that holds the state."""
    lenient: bool = True
    """Use the whole completion as the state when the tag is missing."""


@dataclass
class FullContextConfig(SharedSampling):
    """Full-context baseline: answer once from every chunk, middle-truncated to the window."""

    name: str = "full_context"
    """The agent's name in results."""
    template: str = "context_answer"
    """Template of the answer call (slots question, context)."""
    max_context_tokens: int = 120000
    """The prompt's token limit (the model's window minus room to answer)."""
    answer_max_new_tokens: int = 1024
    """Cap of the answer, in tokens."""
    tokenizer: str | None = None
    """Tokenizer for truncation and passages: None uses the backend's when it has one, else
    'words'."""


@dataclass
class RagBM25Config(FullContextConfig):
    """BM25 retrieval baseline: split the chunks into passages, answer from the top-k.

    Its `top_k` is the number of passages; the answer call's top-k is `sampling_top_k`."""

    SAMPLING_TOP_K: ClassVar[str] = "sampling_top_k"
    name: str = "rag_bm25"
    """The agent's name in results."""
    top_k: int = 8
    """Passages retrieved for the answer."""
    sampling_top_k: int = 0
    """Top-k sampling of the answer call; 0 disables it."""
    passage_tokens: int = 512
    """Passage size in tokens (the retrieval unit)."""
    k1: float = 1.5
    """BM25 k1."""
    b: float = 0.75
    """BM25 b."""
    method: str = "lucene"
    """bm25s scoring variant: lucene, robertson, atire, bm25l, bm25+."""
    stopwords: str | None = "en"
    """Stopword list for BM25 tokenisation (None keeps every word)."""


@dataclass
class OracleConfig(FullContextConfig):
    """Oracle upper bound: answer from the task's gold context only (not a policy to train)."""

    name: str = "oracle"
    """The agent's name in results."""
    trainable: bool = False
    """Whether the trainer optimises the call (an upper bound is not a policy to train)."""


@dataclass
class RMMConfig(SharedSampling):
    """RMM: prospective reflection (per-speaker topic summaries, Add()/Merge()) at each session
    end, retrospective reflection (reranked top-M, answer with citations); see memgym.agents.rmm.
    Its LLM calls are greedy and frozen (the reranker trains apart from them)."""

    temperature: float = 0.0
    """Sampling temperature of the LLM calls (0: greedy)."""
    top_p: float = 1.0
    """Nucleus sampling."""
    trainable: bool = False
    """Whether the LLM trainer optimises the LLM calls (the reranker trains apart from them)."""
    name: str = "rmm"
    """The agent's name in results."""
    encoder: str = "all-minilm-l6-v2"
    """The reranker's sentence encoder (a memgym model name or path; "hash" for the offline
    hashed bag of words). RMM retrieves and reranks with the same dense encoder."""
    reranker_path: str | None = None
    """A trained reranker (a checkpoint-<step> folder of train/rmm_reranker.yaml); None: a fresh
    one, which ranks as the encoder does."""
    top_m: int = 5
    """Memories the reranker keeps for the answer (RMM: M = 5, of the env's K = 20)."""
    tau: float = 0.5
    """Gumbel-softmax temperature of the reranker (RMM: 0.5)."""
    estimator: str = "plackett_luce"
    """The reranker's log-probability: "plackett_luce" (exact, of the ordered top-M) or "rmm"
    (the paper's softmax log-prob of each chosen memory over all K)."""
    rerank_sampling: str = "gumbel"
    """"gumbel" (sample the top-M, as RMM) or "greedy" (the M best scores)."""
    merge_top_k: int = 5
    """Memories shown per summary for the Add/Merge decision."""
    max_summaries: int = 10
    """Topic summaries kept per speaker and session."""
    extract_max_new_tokens: int = 512
    """Cap of each extraction call, in tokens."""
    update_max_new_tokens: int = 256
    """Cap of each Add/Merge decision, in tokens."""
    answer_max_new_tokens: int = 64
    """Cap of the answer-and-cite call, in tokens."""


@dataclass
class ScriptedPolicyConfig:
    """Plain-function policies, no LLM: memory_fn(question, memory, chunk), answer_fn(question, memory)."""

    memory_fn: str
    """Import path 'package.module:function' of the memory policy."""
    answer_fn: str
    """Import path 'package.module:function' of the answer policy."""
    name: str = "scripted_policy"
    """The agent's name in results."""
    box_answer: bool = True
    """Wrap the answer in \\boxed{} unless it holds one."""


@dataclass
class BankOracleConfig:
    """Dialogue-env oracle, no LLM: the task's gold memory operations, answers verified against
    the memories the env shows (privileged: reads the Conversation; see memgym.agents.bank_oracle)."""

    name: str = "bank_oracle"
    """The agent's name in results."""
    unknown_answer: str = "unknown"
    """The answer it gives when the memories shown do not hold the facts the question needs."""


# -- dialogue agents: one LLMCall field per call, the kind's settings as its default -------------
EXTRACTOR = LLMCall("dialogue_fact_extraction", max_new_tokens=256, temperature=0.0,
                    trainable=False)
"""Fact extraction per turn (mem0's prompt), greedy and frozen."""
_R1_MANAGER = LLMCall("dialogue_memory_manager", max_new_tokens=512)
_R1_ANSWERER = LLMCall("memory_r1_answer", max_new_tokens=256)
_MEM0_MANAGER = LLMCall("mem0_update_memory", max_new_tokens=1024, temperature=0.0,
                        trainable=False)
_GREEDY_ANSWER = LLMCall("dialogue_answer", max_new_tokens=64, temperature=0.0)
_FROZEN_ANSWER = dataclasses.replace(_GREEDY_ANSWER, trainable=False)
_CONTEXT_ANSWER = LLMCall("dialogue_context_answer", max_new_tokens=64, temperature=0.0)
_FROZEN_CONTEXT_ANSWER = dataclasses.replace(_CONTEXT_ANSWER, trainable=False)


@dataclass
class MemoryR1Config:
    """Memory-R1: fact extraction, a manager with one ADD/UPDATE/DELETE/NOOP per fact (trainable),
    an answerer that selects memories then answers after **Answer:** (trainable)."""

    name: str = "memory_r1"
    """The agent's name in results."""
    extractor: LLMCall = EXTRACTOR
    """Fact extraction per turn (component "extractor"; slots date, dialogue)."""
    manager: LLMCall = _R1_MANAGER
    """The memory manager (component "manager"; slots memories, facts), temperature 1.0 as a
    GRPO policy."""
    answerer: LLMCall = _R1_ANSWERER
    """The answer agent (component "answerer"; slots memories, question)."""
    fact_fallback: str = "none"
    """"none": an unparseable extraction stores nothing (mem0); "turn": the turn is the fact."""


@dataclass
class Mem0StyleConfig:
    """mem0-style extract-then-update (no RL): mem0's extraction, update and answer prompts."""

    name: str = "mem0_style"
    """The agent's name in results."""
    extractor: LLMCall = EXTRACTOR
    """Fact extraction (as memory_r1's)."""
    manager: LLMCall = _MEM0_MANAGER
    """mem0's update step, greedy and frozen."""
    answerer: LLMCall = _FROZEN_ANSWER
    """mem0's answer step, greedy and frozen."""
    fact_fallback: str = "none"
    """As for memory_r1."""


@dataclass
class RagTurnsConfig:
    """RAG over raw turns: every turn ADDed verbatim, the env's retriever (bm25 or dense) picks
    the memories shown at a question, one answer call."""

    name: str = "rag_turns"
    """The agent's name in results."""
    answerer: LLMCall = _GREEDY_ANSWER
    """The answer call (slots memories, question; greedy, trainable)."""
    max_entry_chars: int = 2048
    """A turn is cut to this many characters (the env's max_entry_chars)."""


@dataclass
class DialogueFullContextConfig:
    """Full context: the conversation so far, middle-truncated to the window (the prompt says so)."""

    name: str = "dialogue_full_context"
    """The agent's name in results."""
    answerer: LLMCall = _CONTEXT_ANSWER
    """The answer call (slots context, question; greedy, trainable)."""
    max_context_tokens: int = 8000
    """The prompt's token limit: the model's window minus room to answer (SmolLM2: 8192)."""
    tokenizer: str | None = None
    """Tokenizer for truncation: None uses the answerer backend's, else 'words'."""


@dataclass
class DialogueOracleConfig(DialogueFullContextConfig):
    """Evidence oracle (privileged: reads the question's evidence turns from the task)."""

    name: str = "dialogue_oracle"
    """The agent's name in results."""
    answerer: LLMCall = _FROZEN_CONTEXT_ANSWER
    """The answer call (greedy, not trainable: an upper bound)."""


# -- builders ------------------------------------------------------------------------------------
def _counter(spec: str | None, backend: LLMBackend | None) -> TokenCounter:
    if spec is None and backend is not None and getattr(backend, "tokenizer", None) is not None:
        return HFTokenCounter(backend.tokenizer)
    return load_token_counter(spec)


def _shared_sampling(c: SharedSampling, max_new_tokens: int) -> SamplingParams:
    return SamplingParams(max_new_tokens=max_new_tokens, temperature=c.temperature,
                          top_p=c.top_p, top_k=getattr(c, c.SAMPLING_TOP_K))


def _answerer(c: FullContextConfig, backend: LLMBackend) -> ContextAnswerer:
    return ContextAnswerer(
        backend, counter=_counter(c.tokenizer, backend), max_context_tokens=c.max_context_tokens,
        template=get_template(c.template, ("question", "context")), chat=c.chat,
        trainable=c.trainable, sampling=_shared_sampling(c, c.answer_max_new_tokens))


def _build_memagent(c: MemAgentConfig, backend: LLMBackend) -> Agent:
    return make_memagent(
        backend, memory_max_new_tokens=c.memory_max_new_tokens,
        answer_max_new_tokens=c.answer_max_new_tokens, temperature=c.temperature, top_p=c.top_p,
        top_k=c.top_k, update_template=get_template(c.update_template, UPDATE_FIELDS),
        answer_template=(None if c.final_template is None
                         else get_template(c.final_template, ANSWER_FIELDS)),
        chat=c.chat, trainable=c.trainable, name=c.name, answer_format=c.answer_format)


def _build_mem1(c: Mem1Config, backend: LLMBackend) -> Agent:
    return make_mem1(
        backend, state_max_new_tokens=c.state_max_new_tokens,
        answer_max_new_tokens=c.answer_max_new_tokens, temperature=c.temperature, top_p=c.top_p,
        top_k=c.top_k, state_tag=c.state_tag, lenient=c.lenient,
        update_template=get_template(c.update_template, UPDATE_FIELDS),
        answer_template=get_template(c.answer_template, ANSWER_FIELDS), chat=c.chat,
        trainable=c.trainable, name=c.name)


def _build_context_baseline(c: FullContextConfig, backend: LLMBackend) -> Agent:
    if isinstance(c, RagBM25Config):
        if c.top_k < 1 or c.passage_tokens < 1:
            raise ConfigError(f"rag_bm25: top_k={c.top_k} and passage_tokens={c.passage_tokens} "
                              "must both be at least 1")
        return RetrievalAgent(_answerer(c, backend),
                              BM25Retriever(k1=c.k1, b=c.b, method=c.method,
                                            stopwords=c.stopwords),
                              counter=_counter(c.tokenizer, backend),
                              passage_tokens=c.passage_tokens, top_k=c.top_k, name=c.name)
    cls = OracleAgent if isinstance(c, OracleConfig) else FullContextAgent
    return cls(_answerer(c, backend), name=c.name)


def _build_scripted(c: ScriptedPolicyConfig, backend: LLMBackend | None) -> Agent:
    return ScriptedPolicyAgent(import_callable(c.memory_fn, key="memory_fn"),
                               import_callable(c.answer_fn, key="answer_fn"),
                               box_answer=c.box_answer, name=c.name)


def _build_bank_oracle(c: BankOracleConfig, backend: LLMBackend | None) -> Agent:
    from memgym.agents.bank_oracle import BankOracleAgent

    return BankOracleAgent(name=c.name, unknown_answer=c.unknown_answer)


def _build_rmm(c: RMMConfig, backend: LLMBackend) -> Agent:
    from memgym.agents.rmm import build_rmm

    return build_rmm(backend, encoder=c.encoder, reranker_path=c.reranker_path, top_m=c.top_m,
                     tau=c.tau, estimator=c.estimator,
                     make_sampling=lambda max_new_tokens: _shared_sampling(c, max_new_tokens),
                     extract_max_new_tokens=c.extract_max_new_tokens,
                     update_max_new_tokens=c.update_max_new_tokens,
                     answer_max_new_tokens=c.answer_max_new_tokens, merge_top_k=c.merge_top_k,
                     max_summaries=c.max_summaries, rerank_sampling=c.rerank_sampling,
                     trainable=c.trainable, chat=c.chat, name=c.name)


def _build_memory_r1(c: MemoryR1Config | Mem0StyleConfig, backend: LLMBackend | None) -> Agent:
    from memgym.agents.dialogue_baselines import make_mem0_style
    from memgym.agents.memory_r1 import MemoryR1Agent

    built: dict[str, LLMBackend] = {}  # components with the same own backend share it
    extractor = c.extractor.bind(backend, component="extractor", slots=("date", "dialogue"),
                                 built=built)
    manager = c.manager.bind(backend, component="manager", slots=("memories", "facts"),
                             built=built)
    answerer = c.answerer.bind(backend, component="answerer", slots=("memories", "question"),
                               built=built)
    make = make_mem0_style if isinstance(c, Mem0StyleConfig) else MemoryR1Agent
    return make(extractor, manager, answerer, fact_fallback=c.fact_fallback, name=c.name)


def _build_rag_turns(c: RagTurnsConfig, backend: LLMBackend | None) -> Agent:
    from memgym.agents.dialogue_baselines import RagTurnsAgent

    if c.max_entry_chars < 1:
        raise ConfigError(f"rag_turns: max_entry_chars={c.max_entry_chars} must be at least 1")
    answerer = c.answerer.bind(backend, component="answerer", slots=("memories", "question"))
    return RagTurnsAgent(answerer, max_entry_chars=c.max_entry_chars, name=c.name)


def _build_dialogue_context(c: DialogueFullContextConfig, backend: LLMBackend | None) -> Agent:
    from memgym.agents.dialogue_baselines import DialogueFullContextAgent, DialogueOracleAgent

    if c.max_context_tokens < 1:
        raise ConfigError(f"{c.name}: max_context_tokens={c.max_context_tokens} must be at "
                          "least 1")
    answerer = c.answerer.bind(backend, component="answerer", slots=("context", "question"))
    cls = DialogueOracleAgent if isinstance(c, DialogueOracleConfig) else DialogueFullContextAgent
    return cls(answerer, counter=_counter(c.tokenizer, answerer.backend),
               max_context_tokens=c.max_context_tokens, name=c.name)


# -- registry ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentKind:
    """A recipe kind: its config dataclass, its builder and whether it needs an LLM backend.

    Attributes:
        config: a dataclass; the recipe's keys are its fields (an `LLMCall` field's default is
            the kind's own setting, a recipe mapping is applied over it key by key).
        build: `build(config, backend) -> Agent`.
        needs_backend: whether it makes LLM calls on the run's backend (`--backend`).
        description: one line for `memgym agents` and error messages ("": the first line of
            the config's docstring).
    """

    config: type
    build: Callable[[Any, LLMBackend | None], Agent]
    needs_backend: bool = True
    description: str = ""

    def __post_init__(self) -> None:
        if not self.description:
            doc = inspect.getdoc(self.config) or ""
            object.__setattr__(self, "description", (doc.splitlines() or [""])[0])

    @classmethod
    def from_factory(cls, factory: Callable[..., Agent], *, where: str = "") -> AgentKind:
        """The kind of a user's agent class or factory, read from its signature.

        Each keyword parameter is a recipe field (typed by its annotation, its default the
        field's default; one annotated `LLMCall` is an LLM call the trainer reaches); a `backend`
        parameter gets the run's backend (without one, the kind needs no `--backend`).
        """
        config, backend = _signature_config(factory)

        def build(c: Any, run_backend: LLMBackend | None) -> Agent:
            kwargs = {f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
            return factory(**kwargs, **({"backend": run_backend} if backend else {}))

        name = getattr(factory, "__name__", "UserAgent")
        doc = (inspect.getdoc(factory) or where or name).splitlines()[0]
        return cls(config, build, backend is not None and backend.default is backend.empty, doc)


def _signature_config(factory: Callable[..., Any]) -> tuple[type, inspect.Parameter | None]:
    """A dataclass of `factory`'s keyword parameters but `backend`, and its `backend` parameter.

    A parameter without an annotation is typed by its default when that is a config (an
    LLMCall), else Any; an annotation that does not resolve is taken as Any.
    """
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - an unresolvable annotation is validated as Any
        hints = {}
    params = [p for p in inspect.signature(factory).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def hint(p: inspect.Parameter) -> Any:
        is_config = dataclasses.is_dataclass(p.default) and not isinstance(p.default, type)
        return hints.get(p.name, type(p.default) if is_config else Any)

    fields = [(p.name, hint(p)) if p.default is p.empty
              else (p.name, hint(p), _field_default(p.default))
              for p in params if p.name != "backend"]
    fields.sort(key=len)  # required fields (name, type) before defaulted ones, as dataclasses want
    name = getattr(factory, "__name__", "UserAgent")
    backend = next((p for p in params if p.name == "backend"), None)
    return dataclasses.make_dataclass(f"{name}Recipe", fields), backend


def _field_default(value: Any) -> Any:
    """A dataclass field defaulting to `value` (a fresh copy each time when it is mutable)."""
    if isinstance(value, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(value))
    return dataclasses.field(default=value)


AGENT_KINDS: dict[str, AgentKind] = {
    "memagent": AgentKind(MemAgentConfig, _build_memagent),
    "mem1": AgentKind(Mem1Config, _build_mem1),
    "full_context": AgentKind(FullContextConfig, _build_context_baseline),
    "rag_bm25": AgentKind(RagBM25Config, _build_context_baseline),
    "oracle": AgentKind(OracleConfig, _build_context_baseline),
    "scripted_policy": AgentKind(ScriptedPolicyConfig, _build_scripted, False),
    "bank_oracle": AgentKind(BankOracleConfig, _build_bank_oracle, False),
    "rmm": AgentKind(RMMConfig, _build_rmm),
    "memory_r1": AgentKind(MemoryR1Config, _build_memory_r1),
    "mem0_style": AgentKind(Mem0StyleConfig, _build_memory_r1),
    "rag_turns": AgentKind(RagTurnsConfig, _build_rag_turns),
    "dialogue_full_context": AgentKind(DialogueFullContextConfig, _build_dialogue_context),
    "dialogue_oracle": AgentKind(DialogueOracleConfig, _build_dialogue_context),
}
"""Recipe kinds by name."""
