"""Single-call baselines: full context, BM25 retrieval over chunks, and the gold-context oracle.

None of them writes memory: in the update phase they return the env's memory unchanged (a no-op
write) and keep what they need in `ctx.scratch`; they make one LLM call, at the answer step,
through a shared `ContextAnswerer`. They bracket the memory agents: full context is what memory
is meant to beat at long lengths, the oracle (reading only the gold paragraphs) is the upper
bound of the reader model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from memgym.agents.base import EpisodeContext
from memgym.agents.calls import call_llm
from memgym.agents.parsing import AnswerParser, PlainAnswer
from memgym.agents.prompts import CONTEXT_ANSWER, PromptTemplate
from memgym.agents.retrieval import Retriever, split_passages, truncate_middle
from memgym.data.task import PIECE_SEPARATOR
from memgym.errors import DataError
from memgym.llm.base import LLMBackend, SamplingParams
from memgym.tokenizers import TokenCounter

__all__ = ["ContextAnswerer", "FullContextAgent", "OracleAgent", "RetrievalAgent"]


class ContextAnswerer:
    """Answers a question from a given context in one LLM call, truncating the context's middle.

    Args:
        backend: the LLM backend.
        sampling: sampling of the answer call.
        counter: counts tokens for truncation (ideally the model's tokenizer).
        max_context_tokens: the most tokens the rendered prompt may hold (chat template
            excluded); the context's middle is cut to fit, never the question.
        template: slots question, context.
        answer_parser: completion -> answer action.
        chat: send the prompt as a chat message.
        trainable: whether the trainer optimises the call.
    """

    def __init__(self, backend: LLMBackend, *, sampling: SamplingParams, counter: TokenCounter,
                 max_context_tokens: int, template: PromptTemplate = CONTEXT_ANSWER,
                 answer_parser: AnswerParser | None = None, chat: bool = True,
                 trainable: bool = True):
        self.backend = backend
        self.sampling = sampling
        self.counter = counter
        self.max_context_tokens = max_context_tokens
        self.template = template
        self.answer_parser = answer_parser or PlainAnswer()
        self.chat = chat
        self.trainable = trainable

    async def answer(self, question: str, context: str, ctx: EpisodeContext) -> str:
        """Render, truncate, call and parse; "" when the call fails."""
        overhead = self.counter.count(self.template.render(question=question, context=""))
        context, _ = truncate_middle(context, self.max_context_tokens - overhead, self.counter)
        prompt = self.template.render(question=question, context=context)
        completion = await call_llm(self.backend, ctx, component="answer", prompt=prompt,
                                    sampling=self.sampling, chat=self.chat,
                                    trainable=self.trainable)
        return self.answer_parser(completion.text) if completion.text else ""


class FullContextAgent:
    """Keeps every chunk and answers once from the whole context (middle-truncated to fit).

    Args:
        answerer: the one-call answerer (its max_context_tokens is the model's window).
        name: the agent's name.
    """

    def __init__(self, answerer: ContextAnswerer, *, name: str = "full_context"):
        self.answerer = answerer
        self.name = name

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Store the chunk (update phase) or answer from all stored chunks."""
        chunks = ctx.scratch.setdefault("chunks", [])
        if observation["phase"] == "update":
            chunks.append(observation["chunk"])
            return observation["memory"]
        # the env's chunks are consecutive slices of the context: joined, they are the context
        return await self.answerer.answer(observation["question"], "".join(chunks), ctx)


class RetrievalAgent:
    """Splits the streamed chunks into passages and answers from the top-k by `retriever`.

    The retrieved passages are shown in stream order (not rank order), which keeps multi-hop
    evidence in its original sequence.

    Args:
        answerer: the one-call answerer.
        retriever: ranks passages for the question (e.g. BM25Retriever).
        counter: counts tokens when splitting chunks into passages.
        passage_tokens: passage size in tokens (the retrieval unit).
        top_k: how many passages the answer call reads.
        name: the agent's name.
    """

    def __init__(self, answerer: ContextAnswerer, retriever: Retriever, *, counter: TokenCounter,
                 passage_tokens: int = 512, top_k: int = 8, name: str = "rag_bm25"):
        self.answerer = answerer
        self.retriever = retriever
        self.counter = counter
        self.passage_tokens = passage_tokens
        self.top_k = top_k
        self.name = name

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Store the chunk's passages (update phase) or retrieve and answer."""
        passages: list[str] = ctx.scratch.setdefault("passages", [])
        if observation["phase"] == "update":
            passages.extend(split_passages(observation["chunk"], self.passage_tokens,
                                           self.counter))
            return observation["memory"]
        question = observation["question"]
        chosen = sorted(self.retriever.rank(question, passages, self.top_k))
        context = PIECE_SEPARATOR.join(passages[i].strip() for i in chosen)
        return await self.answerer.answer(question, context, ctx)


class OracleAgent:
    """Answers from the task's gold context only (the gold paragraphs or needles): an upper bound.

    Declares `needs_task = True`, so the episode runner hands it `ctx.task`; no other agent sees
    the task. It reads none of the stream.
    """

    needs_task = True

    def __init__(self, answerer: ContextAnswerer, *, name: str = "oracle"):
        self.answerer = answerer
        self.name = name

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """No-op write (update phase) or answer from `ctx.task.gold_context`."""
        if observation["phase"] == "update":
            return observation["memory"]
        task = ctx.task
        if task is None:
            raise DataError("the oracle agent needs ctx.task; run it with memgym's episode runner "
                            "(run_episode sets ctx.task for agents with needs_task = True)")
        gold: Sequence[str] = task.gold_context
        if not gold:
            raise DataError(f"task {task.task_id} has no gold_context; the oracle agent needs "
                            "tasks whose source records their gold pieces")
        return await self.answerer.answer(observation["question"], PIECE_SEPARATOR.join(gold),
                                          ctx)
