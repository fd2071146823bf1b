"""RMM (Tan et al., 2025, "In Prospect and Retrospect: Reflective Memory Management for
Long-term Personalized Dialogue Agents") as a memgym agent for the dialogue env's "rmm" protocol.

Prospective reflection, at each session end (an env write step):
  1. per speaker, one LLM call extracts topic summaries of what the session revealed about that
     speaker, each with the turn ids it comes from (`- summary [D1:3, D1:5]`), or `NO_TRAIT`;
  2. per summary, the memories similar to it are shown numbered and one LLM call decides
     `Add()` (a new topic) or `Merge(index, merged_summary)` (same topic as memory `index`).
  The decisions become the step's action: `Add(summary)` / `Merge(#position, merged)` lines.
Retrospective reflection, at a question (an env answer step): the env shows the top-K = 20
memories its retriever found; the agent embeds the question and those memories with its encoder,
the reranker (`memgym.agents.reranker.MemoryReranker`) samples the top-M = 5, and one LLM call
answers from them and cites the ones it used (`[0, 2]` or `[NO_CITE]`). The action is the answer
plus `[CITE: <bank ids>]` (`[NO_CITE]`), which the env scores; each question's `RerankSample`
and the bank ids the answer cited are kept in `ctx.scratch["rmm_rerank"]` for the reranker's
trainer (`memgym.trainer.module_policy`).

The prompts are memgym's own, written after RMM's (appendix: the per-speaker extraction with
turn references and NO_TRAIT, the Add()/Merge(index, merged_summary) update, the answer with
[i, j] / [NO_CITE] citations). Departures from the paper, all forced by or chosen for the env:
  - Candidates for a merge: the env retrieves once per session (its `write_top_k` memories for
    the whole session's text); the agent ranks those by its encoder's similarity to each summary
    and shows the best `merge_top_k`, rather than a fresh bank search per summary. Summaries of
    one session are judged against the bank as it was before the session (a summary added in
    this session cannot be merged into by another one of the same session).
  - A decision that does not parse falls back to `Add()`, so an extracted fact is never lost.
  - The turn ids a summary cites are kept in the agent's trace but do not reach the bank: the
    env gives every entry of a session step all of the session's dia_ids as sources (its
    action format has no per-operation sources). Entries carry no speaker (the env sets None
    for session steps); the summaries name the speaker in their text instead.
  - `(` and `)` inside an added summary are written as `[` and `]`, and newlines as spaces: the
    env's `Add(...)` parser ends the summary at the first `)` or line end.
  - Evaluation can rerank greedily (`rerank_sampling: greedy`); RMM samples at all times.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from memgym.agents.base import EpisodeContext
from memgym.agents.calls import call_llm
from memgym.agents.episode import derive_seed
from memgym.agents.reranker import MemoryReranker, RerankSample
from memgym.errors import ConfigError
from memgym.llm.base import GenerationRequest, LLMBackend, SamplingParams
from memgym.memory.operations import parse_rmm_operations
from memgym.memory.view import format_memories, observed_memories

__all__ = [
    "ANSWER_PROMPT",
    "EXTRACT_PROMPT",
    "UPDATE_PROMPT",
    "HashingEncoder",
    "RMMAgent",
    "RerankRecord",
    "parse_answer_citations",
    "parse_summaries",
    "scripted_rmm_llm",
]

EXTRACT_PROMPT = """Task: read one session of a conversation and write down what it reveals about {speaker}: personal facts, preferences, plans and experiences, one topic per line.

For each topic write one line:
- <what {speaker} said about this topic, as a short sentence naming {speaker}> [<the ids of the turns it comes from, e.g. D1:3, D1:5>]

Only facts {speaker} stated about themself count. If the session reveals nothing about {speaker}, write exactly NO_TRAIT.

Session:
{dialogue}

Summaries about {speaker}:"""
"""Prospective reflection, step 1 (one call per speaker); slots speaker, dialogue."""

UPDATE_PROMPT = """Task: decide how a new personal summary enters the memory bank.

Memories on similar topics, numbered:
{memories}

New summary: {summary}

If no memory above is about the same topic, answer Add().
If memory [i] is about the same topic, answer Merge(i, <one summary combining both; where they disagree, the new summary wins>).
Answer with exactly one line: Add() or Merge(i, merged summary).

Decision:"""
"""Prospective reflection, step 2 (one call per summary); slots memories, summary."""

ANSWER_PROMPT = """Task: answer the question from the memories of past conversations below, then cite the memories you used.

Memories, numbered:
{memories}

Question: {question}

Answer in a few words. Then, on the last line, give the numbers of the memories your answer used in square brackets, e.g. [0, 2], or write [NO_CITE] if none of them helped.

Answer:"""
"""Retrospective reflection (one call per question); slots memories, question."""

_TURN_LINE = re.compile(r"^\[([^\]\n]+)\] ([^:\n]+): ", re.MULTILINE)
_REFS = re.compile(r"\[([^\[\]\n]*)\]\s*$")
_CITE = re.compile(r"\[\s*(NO_CITE|\d+(?:\s*[,;\s]\s*\d+)*)\s*\]", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.)])\s*")


# -- parsing ---------------------------------------------------------------------------------
def parse_summaries(text: str, *, max_summaries: int = 10) -> list[tuple[str, tuple[str, ...]]]:
    """Topic summaries of an extraction call: [(summary, cited turn ids)]; [] for NO_TRAIT.

    One summary per line (bullets and numbering stripped); a trailing `[D1:3, D1:5]` lists the
    turns it cites. Lines that say NO_TRAIT or hold no text are skipped; never raises.
    """
    out: list[tuple[str, tuple[str, ...]]] = []
    for line in str(text).splitlines():
        line = _BULLET.sub("", line).strip()
        if not line or "NO_TRAIT" in line.upper():
            continue
        refs: tuple[str, ...] = ()
        match = _REFS.search(line)
        if match:
            refs = tuple(r for r in re.split(r"[\s,;]+", match.group(1)) if r)
            line = line[:match.start()].strip()
        if line:
            out.append((line, refs))
        if len(out) >= max_summaries:
            break
    return out


def parse_answer_citations(text: str, num_memories: int) -> tuple[str, tuple[int, ...] | None]:
    """Split an answer call into (answer, cited positions 0..num_memories-1).

    The last `[i, j]` / `[NO_CITE]` tag counts: () for NO_CITE, None when there is no tag;
    positions outside the shown memories are dropped. Never raises.
    """
    text = str(text)
    tags = list(_CITE.finditer(text))
    if not tags:
        return text.strip(), None
    tag = tags[-1]
    answer = (text[:tag.start()] + text[tag.end():]).strip()
    if tag.group(1).upper() == "NO_CITE":
        return answer, ()
    picks = [int(i) for i in re.split(r"[\s,;]+", tag.group(1)) if i]
    return answer, tuple(dict.fromkeys(i for i in picks if 0 <= i < num_memories))


def _speakers(dialogue: str) -> list[str]:
    return list(dict.fromkeys(m.group(2).strip() for m in _TURN_LINE.finditer(dialogue)))


def _add_text(summary: str) -> str:
    return " ".join(summary.replace("(", "[").replace(")", "]").split())


# -- encoders --------------------------------------------------------------------------------
class HashingEncoder:
    """A deterministic offline sentence encoder: hashed bag of lower-cased words, L2-normalised.

    For tests and CPU smoke runs where the real encoder (all-MiniLM-L6-v2) is not wanted; it has
    no notion of meaning beyond shared words.
    """

    def __init__(self, dim: int = 256):
        self.dim = int(dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32 embeddings."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", str(text).lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out


def load_encoder(name: str) -> Any:
    """"hash" or "hash:<dim>" (HashingEncoder), else memgym.memory.retrieval's sentence encoder."""
    if name == "hash" or name.startswith("hash:"):
        return HashingEncoder(int(name.split(":", 1)[1]) if ":" in name else 256)
    from memgym.memory.retrieval import load_sentence_encoder

    return load_sentence_encoder(name)


# -- the agent -------------------------------------------------------------------------------
@dataclass
class RerankRecord:
    """One question's retrospective reflection, for the reranker's trainer.

    `cited_ids` are the bank ids the answer cited (None: the answer had no citation tag).
    """

    sample: RerankSample
    cited_ids: tuple[str, ...] | None = None


@dataclass
class _Calls:
    extract: SamplingParams
    update: SamplingParams
    answer: SamplingParams
    trainable: bool = False
    chat: bool = True


class RMMAgent:
    """RMM's prospective and retrospective reflection over the dialogue env's "rmm" protocol.

    Args:
        backend: the LLM that reflects and answers.
        encoder: object with `encode(texts) -> [n, D]` (the reranker's inputs).
        reranker: the `MemoryReranker` (its `dim` must be the encoder's).
        sampling: SamplingParams of the extract, update and answer calls.
        merge_top_k: memories shown per summary for the Add/Merge decision.
        max_summaries: summaries kept per speaker and session.
        rerank_sampling: "gumbel" (RMM) or "greedy" (the top-M scores, no noise).
        trainable: whether the trainer optimises the LLM calls (the reranker trains separately).
        name: the agent's name in results.
    """

    def __init__(self, backend: LLMBackend, *, encoder: Any, reranker: MemoryReranker,
                 extract_sampling: SamplingParams, update_sampling: SamplingParams,
                 answer_sampling: SamplingParams, merge_top_k: int = 5, max_summaries: int = 10,
                 rerank_sampling: str = "gumbel", trainable: bool = False, chat: bool = True,
                 name: str = "rmm"):
        if rerank_sampling not in ("gumbel", "greedy"):
            raise ConfigError(f"rmm: rerank_sampling={rerank_sampling!r}; choose gumbel or greedy")
        if merge_top_k < 1 or max_summaries < 1:
            raise ConfigError(f"rmm: merge_top_k={merge_top_k} and max_summaries={max_summaries} "
                              "must both be at least 1")
        self.backend, self.encoder, self.reranker = backend, encoder, reranker
        self.calls = _Calls(extract_sampling, update_sampling, answer_sampling, trainable, chat)
        self.merge_top_k, self.max_summaries = int(merge_top_k), int(max_summaries)
        self.rerank_sampling, self.name = rerank_sampling, name

    @property
    def trainable_module(self) -> MemoryReranker:
        """The non-LLM policy `memgym.trainer.module_policy` trains: the reranker."""
        return self.reranker

    def _embed(self, texts: Sequence[str]) -> torch.Tensor:
        return torch.as_tensor(np.asarray(self.encoder.encode(list(texts)), dtype=np.float32))

    async def _llm(self, ctx: EpisodeContext, component: str, prompt: str,
                   sampling: SamplingParams) -> str:
        done = await call_llm(self.backend, ctx, component=component, prompt=prompt,
                              sampling=sampling, chat=self.calls.chat,
                              trainable=self.calls.trainable)
        return done.text

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Reflect at a session's end (write step) or answer and cite (answer step)."""
        phase = observation.get("phase", "")
        if phase == "write":
            if observation.get("action_format") != "rmm":
                raise ConfigError(f"the rmm agent writes RMM's Add()/Merge() operations, but the "
                                  f"env asks for {observation.get('action_format')!r}; make the "
                                  "env with protocol=rmm (e.g. --env-kwargs protocol=rmm)")
            return await self._prospective(observation, ctx)
        if phase == "answer":
            return await self._retrospective(observation, ctx)
        return ""

    # -- prospective reflection ------------------------------------------------------------
    async def _prospective(self, obs: Mapping[str, str], ctx: EpisodeContext) -> str:
        dialogue = obs.get("dialogue", "")
        shown = observed_memories(obs, self.name)
        summaries: list[tuple[str, tuple[str, ...]]] = []
        for speaker in _speakers(dialogue):
            text = await self._llm(ctx, "rmm_extract", EXTRACT_PROMPT.format(
                speaker=speaker, dialogue=dialogue), self.calls.extract)
            summaries += parse_summaries(text, max_summaries=self.max_summaries)
        ctx.scratch.setdefault("rmm_summaries", []).append(summaries)
        if not summaries:
            return "NO_TRAIT"
        # Each shown memory's running text: a second summary merged into the same memory is
        # judged against (and merged into) the first merge's result, and the session writes
        # one Merge per memory, so the env's MERGE (which replaces the text) loses neither.
        texts = [m["text"] for m in shown]
        shown_emb = self._embed(texts) if shown else None
        lines: list[str] = []
        merge_line: dict[int, int] = {}  # shown position -> its Merge line in `lines`
        for summary, _refs in summaries:
            positions = list(range(len(shown)))
            if shown_emb is not None:
                sims = shown_emb @ self._embed([summary])[0]
                positions = torch.argsort(sims, descending=True)[:self.merge_top_k].tolist()
            listed = format_memories([{**shown[p], "text": texts[p]} for p in positions],
                                     "rmm_update")
            decision = await self._llm(ctx, "rmm_update", UPDATE_PROMPT.format(
                memories=listed, summary=summary), self.calls.update)
            ops, _ = parse_rmm_operations(decision, summary=summary,
                                          candidate_ids=[str(p) for p in positions])
            op = ops[0] if ops else None
            if op is None or op.event != "MERGE" or not op.text:  # Add(), or unparsed: keep it
                lines.append(f"Add({_add_text(summary)})")
                continue
            p = int(op.id)
            texts[p] = " ".join(op.text.split())
            shown_emb[p] = self._embed([texts[p]])[0]
            if p not in merge_line:
                merge_line[p] = len(lines)
                lines.append("")
            lines[merge_line[p]] = f"Merge({p}, {texts[p]})"
        return "\n".join(lines)

    # -- retrospective reflection ----------------------------------------------------------
    async def _retrospective(self, obs: Mapping[str, str], ctx: EpisodeContext) -> str:
        question = obs.get("question", "")
        shown = observed_memories(obs, self.name)
        if not shown:
            text = await self._llm(ctx, "rmm_answer", ANSWER_PROMPT.format(
                memories="(no memories)", question=question), self.calls.answer)
            answer, _ = parse_answer_citations(text, 0)
            return f"{answer} [NO_CITE]"
        embs = self._embed([question] + [m["text"] for m in shown])
        generator = torch.Generator()
        if ctx.sampling_seed is None:  # unseeded: fresh noise (seed 0 made every episode alike)
            generator.seed()
        else:
            generator.manual_seed(derive_seed(ctx.sampling_seed, ctx.step, 7919))
        sample = self.reranker.sample(embs[0], embs[1:], generator=generator,
                                      greedy=self.rerank_sampling == "greedy",
                                      candidate_ids=tuple(m["id"] for m in shown), step=ctx.step)
        picked = [shown[i] for i in sample.chosen]
        text = await self._llm(ctx, "rmm_answer", ANSWER_PROMPT.format(
            memories=format_memories(picked, "rmm_answer"), question=question), self.calls.answer)
        answer, cited = parse_answer_citations(text, len(picked))
        cited_ids = None if cited is None else tuple(picked[i]["id"] for i in cited)
        ctx.scratch.setdefault("rmm_rerank", []).append(RerankRecord(sample, cited_ids))
        if cited_ids is None:
            return answer
        return f"{answer} [CITE: {', '.join(cited_ids)}]" if cited_ids else f"{answer} [NO_CITE]"


# -- a scripted stand-in for the LLM (tests, smoke runs) -------------------------------------
def _words(text: str) -> set[str]:
    stop = {"the", "a", "an", "is", "of", "to", "in", "and", "what", "does", "do", "who",
            "which", "i", "my", "you", "for", "as", "at", "now", "has", "have"}
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in stop}


def _last_user(request: GenerationRequest) -> str:
    if request.messages:
        return str(request.messages[-1]["content"])
    return str(request.prompt or "")


def scripted_rmm_llm(request: GenerationRequest) -> str:
    """A rule-based stand-in for the LLM of RMM's three prompts (`--backend scripted --model
    memgym.agents.rmm:scripted_rmm_llm`): it needs no weights and follows the formats exactly.

    - extraction: every turn of the speaker that states something ("I ...", "My ...") becomes
      a summary "<speaker>: <text>" citing that turn; NO_TRAIT when there is none;
    - update: Merge into the listed memory sharing the most words with the summary's first
      four words (the fact's subject, e.g. "Sami: I started a new job"), when it shares two,
      else Add();
    - answer: the memory sharing the most words with the question: its last words as the
      answer, cited; [NO_CITE] and "unknown" when no memory shares a word.
    """
    prompt = _last_user(request)
    if "Summaries about " in prompt:
        speaker = prompt.rsplit("Summaries about ", 1)[1].split(":")[0].strip()
        body = prompt.split("Session:\n", 1)[1].rsplit("\n\nSummaries about", 1)[0]
        lines = []
        for match in re.finditer(rf"^\[([^\]\n]+)\] {re.escape(speaker)}: (.*)$", body,
                                 re.MULTILINE):
            text = match.group(2).strip()
            if re.match(r"(?i)^(i|i'm|i've|my|we)\b", text) and len(text.split()) > 3:
                lines.append(f"- {speaker}: {text} [{match.group(1)}]")
        return "\n".join(lines) or "NO_TRAIT"
    if "New summary: " in prompt:
        summary = prompt.split("New summary: ", 1)[1].split("\n", 1)[0]
        key = _words(" ".join(summary.split()[:4]))
        best, best_overlap = None, 1
        for match in re.finditer(r"^\[(\d+)\] (.*)$", prompt, re.MULTILINE):
            overlap = len(key & _words(match.group(2)))
            if overlap > best_overlap:
                best, best_overlap = match.group(1), overlap
        return "Add()" if best is None else f"Merge({best}, {summary})"
    if "Question: " in prompt:
        question = prompt.split("Question: ", 1)[1].split("\n", 1)[0]
        q = _words(question)
        best, best_overlap, best_text = None, 0, ""
        for match in re.finditer(r"^\[(\d+)\] (?:\([^)]*\) )?(.*)$", prompt, re.MULTILINE):
            overlap = len(q & _words(match.group(2)))
            if overlap > best_overlap:
                best, best_overlap, best_text = match.group(1), overlap, match.group(2)
        if best is None:
            return "unknown\n[NO_CITE]"
        answer = " ".join(best_text.rstrip(".!?").split()[-2:])
        return f"{answer}\n[{best}]"
    return ""


def build_rmm(backend: LLMBackend, *, encoder: str = "all-minilm-l6-v2",
              reranker_path: str | None = None, top_m: int = 5, tau: float = 0.5,
              estimator: str = "plackett_luce", make_sampling: Callable[[int], SamplingParams],
              extract_max_new_tokens: int = 512, update_max_new_tokens: int = 256,
              answer_max_new_tokens: int = 64, **agent_kwargs: Any) -> RMMAgent:
    """Build an RMMAgent: load the encoder, a fresh reranker of its size (or a trained one)."""
    enc = load_encoder(encoder)
    if reranker_path:
        reranker = MemoryReranker.from_pretrained(reranker_path)
    else:
        dim = int(np.asarray(enc.encode(["dimension probe"])).shape[1])
        reranker = MemoryReranker(dim, top_m=top_m, tau=tau, estimator=estimator)
    return RMMAgent(backend, encoder=enc, reranker=reranker,
                    extract_sampling=make_sampling(extract_max_new_tokens),
                    update_sampling=make_sampling(update_max_new_tokens),
                    answer_sampling=make_sampling(answer_max_new_tokens), **agent_kwargs)
