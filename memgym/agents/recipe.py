"""Agent recipes: YAML files (or dicts) validated into a kind's config and built into an Agent.

    >>> agent = load_agent("agents/memagent.yaml", backend, overrides=["temperature=0"])

A recipe names its `kind` and sets that kind's fields; nothing else is allowed:

    kind: memagent
    memory_max_new_tokens: 1024
    temperature: 0.7

Each kind is a strict dataclass (every field documented below it) plus a builder that turns it
into components; the config objects stop here and never reach the components. Unknown keys and
unknown kinds are ConfigErrors naming the file, the key and the closest valid name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memgym.agents.base import Agent
from memgym.agents.baselines import ContextAnswerer, FullContextAgent, OracleAgent, RetrievalAgent
from memgym.agents.overwrite import ANSWER_FIELDS, UPDATE_FIELDS, make_mem1, make_memagent
from memgym.agents.policy import ScriptedPolicyAgent, import_callable
from memgym.agents.prompts import get_template
from memgym.agents.retrieval import BM25Retriever
from memgym.config import from_dict, load_yaml, merge, parse_overrides
from memgym.errors import ConfigError, unknown_name
from memgym.llm.base import LLMBackend, SamplingParams
from memgym.tokenizers import HFTokenCounter, TokenCounter, load_token_counter

__all__ = [
    "AGENT_KINDS",
    "AgentKind",
    "AgentRecipe",
    "BackendSpec",
    "BankOracleConfig",
    "DialogueComponentConfig",
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
    "build_agent",
    "load_agent",
    "load_recipe",
    "register_agent_kind",
]


# -- configs -------------------------------------------------------------------------------------
@dataclass
class MemAgentConfig:
    """MemAgent: overwrite the memory after every chunk, answer from it (boxed or "the answer is")."""

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
    temperature: float = 0.7
    """Sampling temperature (MemAgent's evaluation: 0.7); 0 is greedy."""
    top_p: float = 0.95
    """Nucleus sampling (MemAgent's evaluation: 0.95)."""
    top_k: int = 0
    """Top-k sampling; 0 disables it."""
    chat: bool = True
    """Send prompts as chat messages, templated by the backend's tokenizer."""
    trainable: bool = True
    """Whether the trainer optimises these calls (MemAgent trains the updates and the answer)."""


@dataclass
class Mem1Config:
    """MEM1-style: rewrite one internal state <IS> per chunk, everything else pruned."""

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
    temperature: float = 0.01
    """Sampling temperature (MEM1's inference client: 0.01)."""
    top_p: float = 1.0
    """Nucleus sampling."""
    top_k: int = 0
    """Top-k sampling; 0 disables it."""
    chat: bool = True
    """Send prompts as chat messages."""
    trainable: bool = True
    """Whether the trainer optimises these calls."""


@dataclass
class FullContextConfig:
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
    """Tokenizer for truncation: None uses the backend's when it has one, else 'words'."""
    temperature: float = 0.7
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling."""
    top_k: int = 0
    """Top-k sampling; 0 disables it."""
    chat: bool = True
    """Send the prompt as a chat message."""
    trainable: bool = True
    """Whether the trainer optimises the call."""


@dataclass
class RagBM25Config:
    """BM25 retrieval baseline: split the chunks into passages, answer from the top-k."""

    name: str = "rag_bm25"
    """The agent's name in results."""
    template: str = "context_answer"
    """Template of the answer call (slots question, context)."""
    passage_tokens: int = 512
    """Passage size in tokens (the retrieval unit)."""
    top_k: int = 8
    """Passages retrieved for the answer."""
    k1: float = 1.5
    """BM25 k1."""
    b: float = 0.75
    """BM25 b."""
    method: str = "lucene"
    """bm25s scoring variant: lucene, robertson, atire, bm25l, bm25+."""
    stopwords: str | None = "en"
    """Stopword list for BM25 tokenisation (None keeps every word)."""
    max_context_tokens: int = 120000
    """The prompt's token limit (a guard; top_k * passage_tokens is usually far below it)."""
    answer_max_new_tokens: int = 1024
    """Cap of the answer, in tokens."""
    tokenizer: str | None = None
    """Tokenizer for passages and truncation: None uses the backend's, else 'words'."""
    temperature: float = 0.7
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling."""
    sampling_top_k: int = 0
    """Top-k sampling of the answer call; 0 disables it."""
    chat: bool = True
    """Send the prompt as a chat message."""
    trainable: bool = True
    """Whether the trainer optimises the call."""


@dataclass
class OracleConfig:
    """Oracle upper bound: answer from the task's gold context only."""

    name: str = "oracle"
    """The agent's name in results."""
    template: str = "context_answer"
    """Template of the answer call (slots question, context)."""
    max_context_tokens: int = 120000
    """The prompt's token limit."""
    answer_max_new_tokens: int = 1024
    """Cap of the answer, in tokens."""
    tokenizer: str | None = None
    """Tokenizer for truncation: None uses the backend's, else 'words'."""
    temperature: float = 0.7
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling."""
    top_k: int = 0
    """Top-k sampling; 0 disables it."""
    chat: bool = True
    """Send the prompt as a chat message."""
    trainable: bool = False
    """Whether the trainer optimises the call (an upper bound is not a policy to train)."""


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


@dataclass
class RMMConfig:
    """RMM: prospective reflection (per-speaker topic summaries, Add()/Merge()) at each session
    end, retrospective reflection (reranked top-M, answer with citations); see memgym.agents.rmm."""

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
    temperature: float = 0.0
    """Sampling temperature of the LLM calls (0: greedy)."""
    top_p: float = 1.0
    """Nucleus sampling."""
    top_k: int = 0
    """Top-k sampling; 0 disables it."""
    chat: bool = True
    """Send prompts as chat messages."""
    trainable: bool = False
    """Whether the LLM trainer optimises the LLM calls (the reranker trains apart from them)."""


# -- dialogue agents (memgym.agents.memory_r1, memgym.agents.dialogue_baselines) ----------------
@dataclass
class BackendSpec:
    """A component's own LLM backend, instead of the one `memgym eval --backend` builds.

    For example a frozen API model as the extractor while the trained policy manages:
    `extractor: {backend: openai, model: gpt-4o-mini, base_url: http://127.0.0.1:8000/v1}`.
    """

    backend: str
    """transformers (hf), vllm, openai or scripted, as `memgym eval --backend`."""
    model: str | None = None
    """A named model, local path or hub id; the served name (openai); a policy import path
    'package.module:function' (scripted)."""
    base_url: str | None = None
    """The server's URL (openai only)."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """More backend arguments, as `--backend-kwargs`."""


@dataclass
class DialogueComponentConfig:
    """One LLM component of a dialogue agent; a field left None takes the kind's default."""

    template: str | None = None
    """Its prompt template (see memgym.agents.dialogue_prompts)."""
    max_new_tokens: int | None = None
    """Cap of each call, in tokens."""
    temperature: float | None = None
    """Sampling temperature; 0 is greedy."""
    top_p: float = 1.0
    """Nucleus sampling."""
    top_k: int = 0
    """Top-k sampling; 0 disables it."""
    chat: bool = True
    """Send the prompt as a chat message."""
    trainable: bool | None = None
    """Whether the trainer optimises its calls."""
    backend: BackendSpec | None = None
    """Its own backend, frozen (trainable must be false); None: the run's backend
    (`memgym eval --backend/--model`, the trainer's policy)."""


@dataclass
class MemoryR1Config:
    """Memory-R1: fact extraction, a manager with one ADD/UPDATE/DELETE/NOOP per fact (trainable),
    an answerer that selects memories then answers after **Answer:** (trainable)."""

    name: str = "memory_r1"
    """The agent's name in results."""
    extractor: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """Fact extraction per turn (component "extractor"; default template
    dialogue_fact_extraction, 256 tokens, greedy, not trainable)."""
    manager: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """The memory manager (component "manager"; dialogue_memory_manager, 512 tokens,
    temperature 1.0 as a GRPO policy, trainable)."""
    answerer: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """The answer agent (component "answerer"; memory_r1_answer, 256 tokens, temperature 1.0,
    trainable)."""
    fact_fallback: str = "none"
    """"none": an unparseable extraction stores nothing (mem0); "turn": the turn is the fact."""


@dataclass
class Mem0StyleConfig:
    """mem0-style extract-then-update (no RL): mem0's extraction, update and answer prompts."""

    name: str = "mem0_style"
    """The agent's name in results."""
    extractor: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """Fact extraction (dialogue_fact_extraction, 256 tokens, greedy, not trainable)."""
    manager: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """mem0's update step (mem0_update_memory, 1024 tokens, greedy, not trainable)."""
    answerer: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """mem0's answer step (dialogue_answer, 64 tokens, greedy, not trainable)."""
    fact_fallback: str = "none"
    """As for memory_r1."""


@dataclass
class RagTurnsConfig:
    """RAG over raw turns: every turn ADDed verbatim, the env's retriever (bm25 or dense) picks
    the memories shown at a question, one answer call."""

    name: str = "rag_turns"
    """The agent's name in results."""
    answerer: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """The answer call (dialogue_answer, 64 tokens, greedy, trainable)."""
    max_entry_chars: int = 2048
    """A turn is cut to this many characters (the env's max_entry_chars)."""


@dataclass
class DialogueFullContextConfig:
    """Full context: the conversation so far, middle-truncated to the window (the prompt says so)."""

    name: str = "dialogue_full_context"
    """The agent's name in results."""
    answerer: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """The answer call (dialogue_context_answer, 64 tokens, greedy, trainable)."""
    max_context_tokens: int = 8000
    """The prompt's token limit: the model's window minus room to answer (SmolLM2: 8192)."""
    tokenizer: str | None = None
    """Tokenizer for truncation: None uses the answerer backend's, else 'words'."""


@dataclass
class DialogueOracleConfig:
    """Evidence oracle (privileged: reads the question's evidence turns from the task)."""

    name: str = "dialogue_oracle"
    """The agent's name in results."""
    answerer: DialogueComponentConfig = field(default_factory=DialogueComponentConfig)
    """The answer call (dialogue_context_answer, 64 tokens, greedy, not trainable)."""
    max_context_tokens: int = 8000
    """The prompt's token limit."""
    tokenizer: str | None = None
    """Tokenizer for truncation: None uses the answerer backend's, else 'words'."""


# -- builders ------------------------------------------------------------------------------------
def _counter(spec: str | None, backend: LLMBackend | None) -> TokenCounter:
    if spec is None and backend is not None and getattr(backend, "tokenizer", None) is not None:
        return HFTokenCounter(backend.tokenizer)
    return load_token_counter(spec)


def _answerer(c: Any, backend: LLMBackend, top_k: int) -> ContextAnswerer:
    return ContextAnswerer(
        backend, counter=_counter(c.tokenizer, backend), max_context_tokens=c.max_context_tokens,
        template=get_template(c.template, ("question", "context")), chat=c.chat,
        trainable=c.trainable,
        sampling=SamplingParams(max_new_tokens=c.answer_max_new_tokens,
                                temperature=c.temperature, top_p=c.top_p, top_k=top_k))


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


def _build_full_context(c: FullContextConfig, backend: LLMBackend) -> Agent:
    return FullContextAgent(_answerer(c, backend, c.top_k), name=c.name)


def _build_rag_bm25(c: RagBM25Config, backend: LLMBackend) -> Agent:
    if c.top_k < 1 or c.passage_tokens < 1:
        raise ConfigError(f"rag_bm25: top_k={c.top_k} and passage_tokens={c.passage_tokens} "
                          "must both be at least 1")
    return RetrievalAgent(_answerer(c, backend, c.sampling_top_k),
                          BM25Retriever(k1=c.k1, b=c.b, method=c.method, stopwords=c.stopwords),
                          counter=_counter(c.tokenizer, backend),
                          passage_tokens=c.passage_tokens, top_k=c.top_k, name=c.name)


def _build_oracle(c: OracleConfig, backend: LLMBackend) -> Agent:
    return OracleAgent(_answerer(c, backend, c.top_k), name=c.name)


def _build_scripted(c: ScriptedPolicyConfig, backend: LLMBackend | None) -> Agent:
    return ScriptedPolicyAgent(import_callable(c.memory_fn, key="memory_fn"),
                               import_callable(c.answer_fn, key="answer_fn"),
                               box_answer=c.box_answer, name=c.name)


def _build_bank_oracle(c: BankOracleConfig, backend: LLMBackend | None) -> Agent:
    from memgym.agents.bank_oracle import BankOracleAgent

    return BankOracleAgent(name=c.name, unknown_answer=c.unknown_answer)


def _build_rmm(c: RMMConfig, backend: LLMBackend) -> Agent:
    from memgym.agents.rmm import build_rmm

    def sampling(max_new_tokens: int) -> SamplingParams:
        return SamplingParams(max_new_tokens=max_new_tokens, temperature=c.temperature,
                              top_p=c.top_p, top_k=c.top_k)

    return build_rmm(backend, encoder=c.encoder, reranker_path=c.reranker_path, top_m=c.top_m,
                     tau=c.tau, estimator=c.estimator, make_sampling=sampling,
                     extract_max_new_tokens=c.extract_max_new_tokens,
                     update_max_new_tokens=c.update_max_new_tokens,
                     answer_max_new_tokens=c.answer_max_new_tokens, merge_top_k=c.merge_top_k,
                     max_summaries=c.max_summaries, rerank_sampling=c.rerank_sampling,
                     trainable=c.trainable, chat=c.chat, name=c.name)


_DIALOGUE_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "memory_r1": {
        "extractor": {"template": "dialogue_fact_extraction", "max_new_tokens": 256,
                      "temperature": 0.0, "trainable": False},
        "manager": {"template": "dialogue_memory_manager", "max_new_tokens": 512,
                    "temperature": 1.0, "trainable": True},
        "answerer": {"template": "memory_r1_answer", "max_new_tokens": 256,
                     "temperature": 1.0, "trainable": True}},
    "mem0_style": {
        "extractor": {"template": "dialogue_fact_extraction", "max_new_tokens": 256,
                      "temperature": 0.0, "trainable": False},
        "manager": {"template": "mem0_update_memory", "max_new_tokens": 1024,
                    "temperature": 0.0, "trainable": False},
        "answerer": {"template": "dialogue_answer", "max_new_tokens": 64,
                     "temperature": 0.0, "trainable": False}},
    "rag_turns": {"answerer": {"template": "dialogue_answer", "max_new_tokens": 64,
                               "temperature": 0.0, "trainable": True}},
    "dialogue_full_context": {"answerer": {"template": "dialogue_context_answer",
                                           "max_new_tokens": 64, "temperature": 0.0,
                                           "trainable": True}},
    "dialogue_oracle": {"answerer": {"template": "dialogue_context_answer",
                                     "max_new_tokens": 64, "temperature": 0.0,
                                     "trainable": False}},
}
"""Each dialogue kind's component defaults (what a DialogueComponentConfig field left None takes)."""

_DIALOGUE_SLOTS = {"extractor": ("date", "dialogue"), "manager": ("memories", "facts")}


def _spec_backend(spec: BackendSpec) -> LLMBackend:
    """Build a component's own backend from its spec (as `memgym eval` builds --backend)."""
    from memgym.eval.cli import build_backend

    model = spec.model
    if spec.backend in ("transformers", "hf", "vllm") and model:
        from memgym.models import resolve_model_path

        model = resolve_model_path(model)
    return build_backend(spec.backend, model, spec.base_url, dict(spec.kwargs))


def _dialogue_component(kind: str, role: str, c: DialogueComponentConfig,
                        backend: LLMBackend | None, built: dict[str, LLMBackend],
                        slots: tuple[str, ...]) -> Any:
    """An LLMComponent for `role` of `kind`: defaults filled in, its backend chosen."""
    from memgym.agents.memory_r1 import LLMComponent

    defaults = _DIALOGUE_DEFAULTS[kind][role]
    if c.backend is not None:
        key = repr(dataclasses.asdict(c.backend))
        if key not in built:
            built[key] = _spec_backend(c.backend)
        backend = built[key]
    if backend is None:
        raise ConfigError(f"{kind}.{role}: no backend: pass --backend/--model to memgym eval or "
                          f"set {role}.backend in the recipe")
    template = get_template(c.template or defaults["template"], slots)
    sampling = SamplingParams(
        max_new_tokens=c.max_new_tokens or defaults["max_new_tokens"],
        temperature=defaults["temperature"] if c.temperature is None else c.temperature,
        top_p=c.top_p, top_k=c.top_k)
    trainable = defaults["trainable"] if c.trainable is None else c.trainable
    if trainable and c.backend is not None:
        raise ConfigError(f"{kind}.{role}: a component with its own backend is frozen (the "
                          "trainer trains the run's policy backend only); set "
                          f"{role}.trainable=false or drop {role}.backend")
    return LLMComponent(backend, template, sampling, component=role, chat=c.chat,
                        trainable=trainable)


def _build_memory_r1(c: MemoryR1Config | Mem0StyleConfig, backend: LLMBackend | None) -> Agent:
    import memgym.agents.dialogue_prompts  # noqa: F401  (registers the dialogue templates)
    from memgym.agents.dialogue_baselines import make_mem0_style
    from memgym.agents.memory_r1 import MemoryR1Agent

    kind = "memory_r1" if isinstance(c, MemoryR1Config) else "mem0_style"
    built: dict[str, LLMBackend] = {}
    extractor, manager = (_dialogue_component(kind, role, getattr(c, role), backend, built,
                                              _DIALOGUE_SLOTS[role])
                          for role in ("extractor", "manager"))
    answerer = _dialogue_component(kind, "answerer", c.answerer, backend, built,
                                   ("memories", "question"))
    if kind == "mem0_style":
        return make_mem0_style(extractor, manager, answerer, fact_fallback=c.fact_fallback,
                               name=c.name)
    return MemoryR1Agent(extractor, manager, answerer, fact_fallback=c.fact_fallback,
                         name=c.name)


def _build_rag_turns(c: RagTurnsConfig, backend: LLMBackend | None) -> Agent:
    import memgym.agents.dialogue_prompts  # noqa: F401
    from memgym.agents.dialogue_baselines import RagTurnsAgent

    if c.max_entry_chars < 1:
        raise ConfigError(f"rag_turns: max_entry_chars={c.max_entry_chars} must be at least 1")
    answerer = _dialogue_component("rag_turns", "answerer", c.answerer, backend, {},
                                   ("memories", "question"))
    return RagTurnsAgent(answerer, max_entry_chars=c.max_entry_chars, name=c.name)


def _build_dialogue_context(c: DialogueFullContextConfig | DialogueOracleConfig,
                            backend: LLMBackend | None) -> Agent:
    import memgym.agents.dialogue_prompts  # noqa: F401
    from memgym.agents.dialogue_baselines import DialogueFullContextAgent, DialogueOracleAgent

    full = isinstance(c, DialogueFullContextConfig)
    kind = "dialogue_full_context" if full else "dialogue_oracle"
    if c.max_context_tokens < 1:
        raise ConfigError(f"{kind}: max_context_tokens={c.max_context_tokens} must be at least 1")
    answerer = _dialogue_component(kind, "answerer", c.answerer, backend, {},
                                   ("context", "question"))
    cls = DialogueFullContextAgent if full else DialogueOracleAgent
    return cls(answerer, counter=_counter(c.tokenizer, answerer.backend),
               max_context_tokens=c.max_context_tokens, name=c.name)


# -- registry ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentKind:
    """A recipe kind: its config dataclass, its builder and whether it needs an LLM backend."""

    config: type
    build: Callable[[Any, LLMBackend | None], Agent]
    needs_backend: bool = True
    description: str = ""


AGENT_KINDS: dict[str, AgentKind] = {
    "memagent": AgentKind(MemAgentConfig, _build_memagent, True, MemAgentConfig.__doc__),
    "mem1": AgentKind(Mem1Config, _build_mem1, True, Mem1Config.__doc__),
    "full_context": AgentKind(FullContextConfig, _build_full_context, True,
                              FullContextConfig.__doc__),
    "rag_bm25": AgentKind(RagBM25Config, _build_rag_bm25, True, RagBM25Config.__doc__),
    "oracle": AgentKind(OracleConfig, _build_oracle, True, OracleConfig.__doc__),
    "scripted_policy": AgentKind(ScriptedPolicyConfig, _build_scripted, False,
                                 ScriptedPolicyConfig.__doc__),
    "bank_oracle": AgentKind(BankOracleConfig, _build_bank_oracle, False,
                             BankOracleConfig.__doc__),
    "rmm": AgentKind(RMMConfig, _build_rmm, True, RMMConfig.__doc__),
    "memory_r1": AgentKind(MemoryR1Config, _build_memory_r1, True, MemoryR1Config.__doc__),
    "mem0_style": AgentKind(Mem0StyleConfig, _build_memory_r1, True, Mem0StyleConfig.__doc__),
    "rag_turns": AgentKind(RagTurnsConfig, _build_rag_turns, True, RagTurnsConfig.__doc__),
    "dialogue_full_context": AgentKind(DialogueFullContextConfig, _build_dialogue_context, True,
                                       DialogueFullContextConfig.__doc__),
    "dialogue_oracle": AgentKind(DialogueOracleConfig, _build_dialogue_context, True,
                                 DialogueOracleConfig.__doc__),
}
"""Recipe kinds by name."""


def register_agent_kind(name: str, kind: AgentKind) -> None:
    """Make a new agent kind available to recipes (`kind: name`)."""
    if name in AGENT_KINDS:
        raise ConfigError(f"agent kind {name!r} is already registered")
    if not dataclasses.is_dataclass(kind.config):
        raise ConfigError(f"agent kind {name!r}: config must be a dataclass")
    AGENT_KINDS[name] = kind


# -- loading -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentRecipe:
    """A validated recipe: its kind, its config and where it came from.

    Attributes:
        kind: a key of AGENT_KINDS.
        config: the kind's config dataclass, defaults filled in and overrides applied.
        source: the recipe file, or "<dict>".
        text: the recipe file's text as read ("" for a dict), kept with results.
    """

    kind: str
    config: Any
    source: str = "<dict>"
    text: str = ""

    @property
    def needs_backend(self) -> bool:
        """Whether building this agent needs an LLM backend."""
        return AGENT_KINDS[self.kind].needs_backend

    def to_dict(self) -> dict[str, Any]:
        """The resolved recipe as a plain dict (kind first), as written next to results."""
        return {"kind": self.kind, **dataclasses.asdict(self.config)}


def load_recipe(recipe: str | Path | Mapping[str, Any],
                overrides: Sequence[str] | Mapping[str, Any] = ()) -> AgentRecipe:
    """Read and validate a recipe file or dict, applying `key=value` overrides.

    Raises:
        ConfigError: a missing or unknown `kind`, an unknown key, or a value of the wrong type;
            the message names the file, the key and the closest valid name.
    """
    if isinstance(recipe, Mapping):
        data, source, text = dict(recipe), "<dict>", ""
    else:
        path = Path(recipe)
        data, source = load_yaml(path), str(path)
        text = path.read_text(encoding="utf-8")
    extra = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
    data = merge(data, extra)
    kind = data.pop("kind", None)
    if kind is None:
        raise ConfigError(f"{source}: the recipe has no 'kind'; set one of "
                          f"{', '.join(sorted(AGENT_KINDS))}")
    if kind not in AGENT_KINDS:
        err = unknown_name("agent kind", str(kind), AGENT_KINDS)
        raise ConfigError(f"{source}: kind: {err}") from err
    try:
        config = from_dict(AGENT_KINDS[kind].config, data)
    except ConfigError as exc:
        raise ConfigError(f"{source} (kind {kind}): {exc}") from exc
    return AgentRecipe(kind, config, source, text)


def build_agent(recipe: AgentRecipe, backend: LLMBackend | None) -> Agent:
    """Build the agent a validated recipe describes, on `backend`."""
    kind = AGENT_KINDS[recipe.kind]
    if kind.needs_backend and backend is None:
        raise ConfigError(f"{recipe.source}: agent kind {recipe.kind!r} calls an LLM; "
                          "pass a backend (memgym eval: --backend and --model)")
    return kind.build(recipe.config, backend)


def load_agent(recipe: str | Path | Mapping[str, Any], backend: LLMBackend | None,
               overrides: Sequence[str] | Mapping[str, Any] = ()) -> Agent:
    """Build an agent from a recipe file or dict, with `key=value` overrides.

    Args:
        recipe: a YAML recipe path (e.g. "agents/memagent.yaml") or the recipe as a dict.
        backend: the LLM backend the agent calls (None for kinds that make no LLM calls).
        overrides: ["temperature=0", ...] or a dict, applied over the recipe.
    """
    return build_agent(load_recipe(recipe, overrides), backend)
