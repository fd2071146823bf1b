"""Overwrite-memory agents: MemAgent and the MEM1-style internal-state agent.

Both read the context one chunk at a time and rewrite a single memory after each chunk, then
answer from the memory alone. They differ only in their components (templates and parsers), so
one class composes them and two builder functions name the combinations.

`make_memagent` follows MemAgent (Yu et al., 2025, arXiv:2507.02259): one independent LLM call
per chunk with the update prompt (problem, previous memory - initially "No previous memory" -
and section), whose whole completion is the new memory, capped at 1024 new tokens; then one
final call that answers from the memory. `answer_format` picks MemAgent's final prompt: "boxed"
(`TEMPLATE_FINAL_BOXED`, its training prompt) or "answer_is" (`TEMPLATE_FINAL` of its released
`recurrent` eval client, "Therefore, the answer is ..."). The whole answer completion goes to the
env, which extracts the answer with the same format's parser (memgym.rewards.extraction); the
agent checks that the env expects the format its prompt asks for (`observation["answer_format"]`).

`make_mem1` is MEM1-style (Zhou et al., 2025, arXiv:2506.15841): a single internal state
`<IS>...</IS>` is rewritten each turn from the previous state and the new input, and everything
else is pruned from the context. Where it departs from MEM1:
  - MEM1's agent chooses its next action (`<query>` to a search tool, or `<answer>`); here the
    env streams the chunks, so each turn's input is the next chunk and the agent only writes
    its state, answering after the last chunk.
  - MEM1 rolls one conversation forward, pruning all but the latest state and input, and trains
    it with a masked 2-D attention over the whole trajectory; here each turn is an independent
    call whose prompt holds exactly the question, the previous state and the new chunk (the same
    context MEM1 keeps after pruning), so training uses memgym's per-turn rows.
  - MEM1's released inference code marks the state with `<think>`; its paper with `<IS>`, which
    is used here. The final turn writes `<IS>` then `<answer>`; the answer is boxed for the env.
"""

from __future__ import annotations

from collections.abc import Mapping

from memgym.agents.base import EpisodeContext
from memgym.agents.calls import call_llm
from memgym.agents.parsing import (
    AnswerParser,
    MemoryParser,
    PlainAnswer,
    PlainMemory,
    TaggedAnswer,
    TaggedMemory,
)
from memgym.agents.prompts import (
    MEM1_ANSWER,
    MEM1_UPDATE,
    MEMAGENT_FINAL_TEMPLATES,
    MEMAGENT_UPDATE,
    PromptTemplate,
    get_template,
)
from memgym.errors import ConfigError
from memgym.llm.base import LLMBackend, SamplingParams
from memgym.rewards.extraction import check_answer_format

__all__ = ["ANSWER_FIELDS", "UPDATE_FIELDS", "OverwriteMemoryAgent", "make_mem1", "make_memagent"]

UPDATE_FIELDS = ("question", "memory", "chunk")
ANSWER_FIELDS = ("question", "memory")


class OverwriteMemoryAgent:
    """Rewrites one memory per chunk with an LLM call, then answers from the memory.

    Update phase: render `update_template` with the question, the current memory and the chunk;
    the completion parsed by `memory_parser` is the new memory. A failed call or a completion
    with no usable memory keeps the previous memory. Answer phase: render `answer_template` with
    the question and the memory; `answer_parser` gives the answer ("" after a failed call, which
    the env scores as a wrong, badly formatted answer).

    Args:
        backend: the LLM backend.
        update_template: slots question, memory, chunk.
        answer_template: slots question, memory.
        memory_parser: completion -> new memory (or None).
        answer_parser: completion -> answer action.
        update_sampling: sampling of update calls; its max_new_tokens caps the memory.
        answer_sampling: sampling of the answer call.
        chat: send prompts as chat messages (templated by the backend).
        trainable: whether the trainer optimises the calls.
        name: the agent's name.
        answer_format: the answer format `answer_template` asks for ("boxed", "answer_is",
            "plain"); an observation whose `answer_format` differs is a ConfigError, so a
            mismatched env fails at the first step instead of scoring every answer 0. None skips
            the check. A "plain" env (which scores the whole text) accepts any format.
    """

    def __init__(self, backend: LLMBackend, *, update_template: PromptTemplate,
                 answer_template: PromptTemplate, memory_parser: MemoryParser,
                 answer_parser: AnswerParser, update_sampling: SamplingParams,
                 answer_sampling: SamplingParams, chat: bool = True, trainable: bool = True,
                 name: str = "overwrite_memory", answer_format: str | None = None):
        self.backend = backend
        self.update_template = update_template
        self.answer_template = answer_template
        self.memory_parser = memory_parser
        self.answer_parser = answer_parser
        self.update_sampling = update_sampling
        self.answer_sampling = answer_sampling
        self.chat = chat
        self.trainable = trainable
        self.name = name
        self.answer_format = None if answer_format is None else check_answer_format(answer_format)

    def _check_format(self, observation: Mapping[str, str]) -> None:
        expected = observation.get("answer_format")
        # A "plain" env scores the whole text, so any format reads there.
        if self.answer_format is None or expected in (None, "", "plain", self.answer_format):
            return
        raise ConfigError(
            f"agent {self.name!r} asks for {self.answer_format!r} answers but the env "
            f"extracts {expected!r}: pass the env answer_format={self.answer_format} "
            f"(memgym eval: --env-kwargs answer_format={self.answer_format}) or use the "
            f"agent's answer_format={expected}")

    async def act(self, observation: Mapping[str, str], ctx: EpisodeContext) -> str:
        """Write the new memory (update phase) or answer (answer phase)."""
        self._check_format(observation)
        question, memory = observation["question"], observation["memory"]
        if observation["phase"] == "update":
            prompt = self.update_template.render(question=question, memory=memory,
                                                 chunk=observation["chunk"])
            completion = await call_llm(self.backend, ctx, component="memory_update",
                                        prompt=prompt, sampling=self.update_sampling,
                                        chat=self.chat, trainable=self.trainable)
            new_memory = self.memory_parser(completion.text) if completion.text else None
            return memory if new_memory is None else new_memory
        prompt = self.answer_template.render(question=question, memory=memory)
        completion = await call_llm(self.backend, ctx, component="answer", prompt=prompt,
                                    sampling=self.answer_sampling, chat=self.chat,
                                    trainable=self.trainable)
        return self.answer_parser(completion.text) if completion.text else ""


def make_memagent(backend: LLMBackend, *, memory_max_new_tokens: int = 1024,
                  answer_max_new_tokens: int = 1024, temperature: float = 0.7,
                  top_p: float = 0.95, top_k: int = 0,
                  update_template: PromptTemplate = MEMAGENT_UPDATE,
                  answer_template: PromptTemplate | None = None, chat: bool = True,
                  trainable: bool = True, name: str = "memagent",
                  answer_format: str = "boxed") -> OverwriteMemoryAgent:
    """MemAgent: the whole update completion is the memory; the answer in `answer_format`.

    Defaults are MemAgent's evaluation settings: at most 1024 new tokens per memory update and
    per final answer (`RECURRENT_MAX_NEW`), temperature 0.7, top-p 0.95.

    Args:
        answer_format: "boxed" (MemAgent's training prompt) or "answer_is" (its released eval
            prompt); picks the final template when `answer_template` is None.
        answer_template: a final template to use instead (it must ask for `answer_format`).
    """
    if check_answer_format(answer_format) not in MEMAGENT_FINAL_TEMPLATES:
        raise ConfigError(f"answer_format={answer_format!r}: MemAgent's final prompts ask for "
                          f"{' or '.join(MEMAGENT_FINAL_TEMPLATES)}")
    if answer_template is None:
        answer_template = get_template(MEMAGENT_FINAL_TEMPLATES[answer_format])
    return OverwriteMemoryAgent(
        backend, update_template=update_template, answer_template=answer_template,
        memory_parser=PlainMemory(), answer_parser=PlainAnswer(),
        update_sampling=SamplingParams(max_new_tokens=memory_max_new_tokens,
                                       temperature=temperature, top_p=top_p, top_k=top_k),
        answer_sampling=SamplingParams(max_new_tokens=answer_max_new_tokens,
                                       temperature=temperature, top_p=top_p, top_k=top_k),
        chat=chat, trainable=trainable, name=name, answer_format=answer_format)


def make_mem1(backend: LLMBackend, *, state_max_new_tokens: int = 1024,
              answer_max_new_tokens: int = 1024, temperature: float = 0.01, top_p: float = 1.0,
              top_k: int = 0, state_tag: str = "IS", lenient: bool = True,
              update_template: PromptTemplate = MEM1_UPDATE,
              answer_template: PromptTemplate = MEM1_ANSWER, chat: bool = True,
              trainable: bool = True, name: str = "mem1") -> OverwriteMemoryAgent:
    """MEM1-style agent: the memory is the `<IS>` state; the answer is read from `<answer>`.

    Args:
        state_max_new_tokens: cap of each state rewrite (the memory budget).
        answer_max_new_tokens: cap of the final turn (state plus answer).
        temperature, top_p, top_k: sampling (MEM1's inference client uses temperature 0.01).
        state_tag: the state's tag name.
        lenient: use the whole completion as the state when the tag is missing.
        update_template, answer_template, chat, trainable, name: as for OverwriteMemoryAgent.
    """
    return OverwriteMemoryAgent(
        backend, update_template=update_template, answer_template=answer_template,
        memory_parser=TaggedMemory(state_tag, lenient), answer_parser=TaggedAnswer("answer"),
        update_sampling=SamplingParams(max_new_tokens=state_max_new_tokens,
                                       temperature=temperature, top_p=top_p, top_k=top_k),
        answer_sampling=SamplingParams(max_new_tokens=answer_max_new_tokens,
                                       temperature=temperature, top_p=top_p, top_k=top_k),
        chat=chat, trainable=trainable, name=name)
