"""ScriptedBackend: list and callable policies, token ids, stop/length handling, errors."""

import asyncio

import pytest

from memgym.errors import BackendError, ConfigError
from memgym.llm import Completion, GenerationRequest, LLMBackend, SamplingParams, ScriptedBackend
from memgym.testing.tiny_lm import build_tiny_tokenizer


def _req(text="hi", **sampling):
    return GenerationRequest(
        messages=({"role": "user", "content": text},), sampling=SamplingParams(**sampling)
    )


def test_list_policy_answers_in_order_then_fails_clearly():
    backend = ScriptedBackend(["one", "two"])
    assert isinstance(backend, LLMBackend)
    assert [c.text for c in backend.generate_batch([_req(), _req()])] == ["one", "two"]
    with pytest.raises(BackendError, match="ran out of responses"):
        backend.generate_batch([_req()])
    assert len(backend.requests) == 3


def test_callable_policy_sees_the_request_and_runs_concurrently():
    backend = ScriptedBackend(lambda r: r.messages[-1]["content"].upper(), latency_s=0.01)

    async def run():
        return await asyncio.gather(*(backend.generate(_req(t)) for t in ["a", "b", "c"]))

    out = asyncio.run(run())
    assert [c.text for c in out] == ["A", "B", "C"]
    assert all(c.latency_s >= 0.01 for c in out)


def test_byte_ids_round_trip_and_logprobs_are_zero():
    text = "héllo wörld 🙂"
    c = ScriptedBackend([text]).generate_batch([_req()])[0]
    assert bytes(c.completion_ids).decode("utf-8") == text == c.text
    assert c.logprobs == [0.0] * len(c.completion_ids)
    assert c.finish_reason == "stop"
    assert c.prompt_text.startswith("<|im_start|>user\nhi<|im_end|>")
    assert bytes(c.prompt_ids).decode("utf-8") == c.prompt_text


def test_tokenizer_ids_and_chat_template():
    tok = build_tiny_tokenizer()
    c = ScriptedBackend(["the answer is 42"], tokenizer=tok).generate_batch([_req("q?")])[0]
    assert tok.decode(c.completion_ids) == "the answer is 42"
    assert c.prompt_text == tok.apply_chat_template(
        [{"role": "user", "content": "q?"}], add_generation_prompt=True, tokenize=False
    )
    assert c.prompt_ids == tok(c.prompt_text, add_special_tokens=False)["input_ids"]


def test_max_new_tokens_truncates_ids_and_reports_length():
    c = ScriptedBackend(["abcdef"]).generate_batch([_req(max_new_tokens=3)])[0]
    assert (c.text, c.completion_ids, c.finish_reason) == ("abc", [97, 98, 99], "length")


def test_stop_string_cuts_text():
    c = ScriptedBackend(["answer: 7</answer> trailing"]).generate_batch(
        [_req(stop=("</answer>",))]
    )[0]
    assert c.text == "answer: 7" and c.finish_reason == "stop"


def test_strip_think_only_touches_text():
    raw = "<think>hmm</think>\nfinal"
    c = ScriptedBackend([raw], strip_think=True).generate_batch([_req()])[0]
    assert c.text == "final"
    assert bytes(c.completion_ids).decode() == raw


def test_policy_can_script_an_error_completion():
    backend = ScriptedBackend(lambda r: Completion("", finish_reason="error", error="boom"))
    c = backend.generate_batch([GenerationRequest(prompt="x")])[0]
    assert c.finish_reason == "error" and c.error == "boom" and c.prompt_ids == [120]


def test_prompt_ids_are_used_verbatim():
    c = ScriptedBackend(["ok"]).generate_batch([GenerationRequest(prompt_ids=(104, 105))])[0]
    assert c.prompt_ids == [104, 105] and c.prompt_text == "hi"


def test_bad_policies_are_rejected():
    with pytest.raises(ConfigError, match="expected a callable"):
        ScriptedBackend("just a string")
    with pytest.raises(ConfigError, match=r"policy\[1\]"):
        ScriptedBackend(["ok", 3])
    with pytest.raises(BackendError, match="must return a str"):
        ScriptedBackend(lambda r: 5).generate_batch([_req()])
    with pytest.raises(BackendError, match="no messages, prompt or prompt_ids"):
        ScriptedBackend(["x"]).generate_batch([GenerationRequest()])
