"""Agent components: MemAgent's prompts verbatim, template checks, parsers, the recorded LLM call
and BM25 ranking (passage splitting and middle truncation: tests/data/test_text.py)."""

import asyncio

import pytest

from memgym.agents import EpisodeContext, call_llm, get_template
from memgym.agents.episode import derive_seed
from memgym.agents.parsing import PlainAnswer, PlainMemory, TaggedAnswer, TaggedMemory, box
from memgym.agents.prompts import (
    MEMAGENT_FINAL,
    MEMAGENT_FINAL_ANSWER_IS,
    MEMAGENT_UPDATE,
    PromptTemplate,
)
from memgym.agents.retrieval import BM25Retriever
from memgym.errors import ConfigError, UnknownNameError
from memgym.llm import Completion, SamplingParams, ScriptedBackend

# MemAgent's templates as published (quickstart.py / recurrent client), written out by hand.
MEMAGENT_TEMPLATE = (
    "You are presented with a problem, a section of an article that may contain the answer to "
    "the problem, and a previous memory. Please read the provided section carefully and update "
    "the memory with the new information that helps to answer the problem. Be sure to retain all "
    "relevant details from the previous memory while adding any new, useful information.\n\n"
    "<problem> \n{prompt}\n</problem>\n\n<memory>\n{memory}\n</memory>\n\n"
    "<section>\n{chunk}\n</section>\n\nUpdated memory:\n"
)
MEMAGENT_TEMPLATE_FINAL_BOXED = (
    "You are presented with a problem and a previous memory. Please answer the problem based on "
    "the previous memory and put the answer in \\boxed{{}}.\n\n"
    "<problem> \n{prompt}\n</problem>\n\n<memory>\n{memory}\n</memory>\n\nYour answer:\n"
)


MEMAGENT_TEMPLATE_FINAL = (  # taskutils/memory_eval/utils/recurrent.py, the released eval client
    "You are presented with a problem and a previous memory. Please answer the problem based on "
    "the previous memory and format your response as follows \"Therefore, the answer is (insert "
    "answer here)\".\n\n"
    "<problem> \n{prompt}\n</problem>\n\n<memory>\n{memory}\n</memory>\n\nYour answer:\n"
)


def test_memagent_released_eval_final_prompt_is_byte_exact():
    assert MEMAGENT_FINAL_ANSWER_IS.render(question="Q?", memory="m") == \
        MEMAGENT_TEMPLATE_FINAL.format(prompt="Q?", memory="m")


def test_memagent_prompts_are_memagents_own_character_for_character():
    values = {"memory": "No previous memory", "chunk": "Document 1:\nT\n{braces} stay"}
    assert MEMAGENT_UPDATE.render(question="Q?", **values) == MEMAGENT_TEMPLATE.format(
        prompt="Q?", **values)
    assert MEMAGENT_FINAL.render(question="Q?", memory="m") == \
        MEMAGENT_TEMPLATE_FINAL_BOXED.format(prompt="Q?", memory="m")
    assert "\\boxed{}" in MEMAGENT_FINAL.render(question="Q?", memory="m")


def test_template_fields_are_checked():
    assert MEMAGENT_UPDATE.fields == ("question", "memory", "chunk")
    with pytest.raises(ConfigError, match="missing \\['chunk'\\]"):
        MEMAGENT_UPDATE.render(question="q", memory="m")
    with pytest.raises(ConfigError, match="unexpected \\['extra'\\]"):
        MEMAGENT_FINAL.render(question="q", memory="m", extra="x")
    with pytest.raises(ConfigError, match="plain field name"):
        PromptTemplate("bad", "{a.b}")
    with pytest.raises(UnknownNameError, match="memagent_final"):
        get_template("memagent_finall")
    with pytest.raises(ConfigError, match="slots"):
        get_template("memagent_final", ("question", "memory", "chunk"))


def test_parsers():
    assert PlainMemory()("<think>hmm</think>\n  facts  ") == "facts"
    assert PlainMemory()("   ") is None
    assert TaggedMemory()("reasoning <IS>state one</IS> more <IS> state two </IS>") == "state two"
    assert TaggedMemory()("no tags here") == "no tags here"
    assert TaggedMemory(lenient=False)("no tags here") is None
    assert PlainAnswer()("<think>x</think>It is \\boxed{4}.") == "It is \\boxed{4}."
    assert TaggedAnswer()("<IS>s</IS><answer> Paris </answer>") == "\\boxed{Paris}"
    assert TaggedAnswer()("plain \\boxed{x}") == "plain \\boxed{x}"
    assert box("Paris") == "\\boxed{Paris}" and box("\\boxed{a}") == "\\boxed{a}" and box("") == ""


def test_call_llm_records_the_turn_with_ids_logprobs_and_a_derived_seed():
    backend = ScriptedBackend(["hello there"])
    ctx = EpisodeContext(step=3, sampling_seed=11)
    completion = asyncio.run(call_llm(backend, ctx, component="answer", prompt="Say hi",
                                      sampling=SamplingParams(max_new_tokens=50)))
    assert completion.text == "hello there"
    (turn,) = ctx.turns
    assert (turn.component, turn.step, turn.completion) == ("answer", 3, "hello there")
    assert "Say hi" in turn.prompt and turn.prompt_ids == completion.prompt_ids
    assert turn.completion_ids == list(b"hello there") and len(turn.logprobs) == 11
    assert turn.trainable and turn.finish_reason == "stop" and turn.error is None
    assert backend.requests[0].sampling.seed == derive_seed(11, 0)
    assert backend.requests[0].messages == ({"role": "user", "content": "Say hi"},)
    assert derive_seed(11, 0) != derive_seed(11, 1) != derive_seed(12, 0)


def test_call_llm_turns_backend_failures_into_error_turns():
    def policy(request):
        if "raise" in request.prompt:
            raise RuntimeError("connection refused")
        return Completion("partial", finish_reason="error", error="bad response")

    ctx = EpisodeContext()
    backend = ScriptedBackend(policy)
    for prompt in ("raise", "error completion"):
        completion = asyncio.run(call_llm(backend, ctx, component="memory_update", prompt=prompt,
                                          sampling=SamplingParams(), chat=False))
        assert completion.text == "" and completion.finish_reason == "error"
    assert [t.error for t in ctx.turns] == ["RuntimeError: connection refused", "bad response"]
    assert all(t.finish_reason == "error" and not t.trainable for t in ctx.turns)


def test_bm25_ranks_the_matching_passage_first_and_is_deterministic():
    passages = ["the cat sat on the mat", "a dog barked at the mailman",
                "birds fly south in winter", "the the the", ""]
    retriever = BM25Retriever()
    assert retriever.rank("where do birds fly?", passages, 2)[0] == 2
    assert retriever.rank("dog mailman", passages, 10)[:1] == [1]
    assert len(retriever.rank("dog", passages, 10)) == 5
    # no query term matches: stream order
    assert retriever.rank("zebra", passages, 3) == [0, 1, 2]
    assert retriever.rank("the a of", passages, 2) == [0, 1]
    assert retriever.rank("cat", [], 3) == []
