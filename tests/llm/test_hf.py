"""TransformersBackend on the tiny model: batched == one-by-one greedy decoding (also for rows
joining a running batch), sampler logprobs against a forward pass, seeds, stop strings, EOS,
id/text round trip, error isolation, shared weights and loading by path."""

import asyncio
import time

import pytest
import torch

from memgym.errors import ConfigError
from memgym.llm import (
    GenerationRequest,
    LLMBackend,
    SamplingParams,
    TransformersBackend,
    hf,
    make_backend,
)
from memgym.llm.hf import _Engine, _Job, sample_tokens
from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

TOK = build_tiny_tokenizer()
MODEL = build_tiny_model(TOK)
GREEDY = SamplingParams(max_new_tokens=12, temperature=0.0)
PROMPTS = [
    "Hello",
    "The question is: which city was the author of the book born in?",
    "a b c d e f g",
    "Document 1: The river flows through the old town and into the sea. " * 3,
    "x",
]


def _chat(text, sampling=GREEDY):
    return GenerationRequest(messages=({"role": "user", "content": text},), sampling=sampling)


@pytest.fixture(scope="module")
def backend():
    with TransformersBackend(MODEL, TOK, batch_wait_ms=20) as b:
        yield b


@pytest.fixture(scope="module")
def sequential(backend):
    """Each prompt completed alone (batch of one): the reference for batched runs."""
    return [backend.generate_batch([_chat(p)])[0] for p in PROMPTS]


def _forward_logits(completion):
    ids = torch.tensor([completion.prompt_ids + completion.completion_ids])
    with torch.no_grad():
        logits = MODEL(ids).logits[0].float()
    start = len(completion.prompt_ids) - 1
    return logits[start : start + len(completion.completion_ids)]  # [n, V]


def test_backend_satisfies_the_protocol(backend):
    assert isinstance(backend, LLMBackend) and backend.name == "transformers"


def test_concurrent_greedy_equals_sequential(backend, sequential):
    async def run():
        return await asyncio.gather(*(backend.generate(_chat(p)) for p in PROMPTS))

    batched = asyncio.run(run())
    for alone, together in zip(sequential, batched):
        assert together.completion_ids == alone.completion_ids
        assert together.prompt_ids == alone.prompt_ids
        assert together.text == alone.text
        torch.testing.assert_close(together.logprobs, alone.logprobs, atol=1e-4, rtol=0)


def test_rows_joining_a_running_batch_decode_as_if_alone(backend):
    """Drive the engine step by step: rows join mid-flight and leave at different lengths."""
    reqs = [
        GenerationRequest(
            prompt=p, sampling=SamplingParams(max_new_tokens=4 + 3 * i, temperature=0)
        )
        for i, p in enumerate(PROMPTS)
    ]
    alone = [backend.generate_batch([r])[0] for r in reqs]
    engine, results = _Engine(backend), {}

    def submit(i):
        engine.pending.append(
            _Job(reqs[i], lambda c, i=i: results.__setitem__(i, c), lambda: False)
        )

    submit(0), submit(3)
    for _ in range(3):
        engine.step()
    submit(1), submit(2)  # join a batch whose cache is longer than their prompts
    for _ in range(4):
        engine.step()
    submit(4)
    while engine.step():
        pass
    assert engine.batch is None
    for i, ref in enumerate(alone):
        assert results[i].completion_ids == ref.completion_ids, i
        assert results[i].finish_reason == "length" and len(ref.completion_ids) == 4 + 3 * i


def test_caches_that_cannot_merge_run_batch_after_batch(monkeypatch, sequential):
    """Sliding-window / linear-attention caches cannot take rows mid-flight: later rows wait."""
    monkeypatch.setattr(hf, "_plain_layers", lambda cache: None)
    with TransformersBackend(MODEL, TOK, max_prefill_tokens=60, batch_wait_ms=50) as b:
        out = b.generate_batch([_chat(p) for p in PROMPTS])
    for got, ref in zip(out, sequential):
        assert got.completion_ids == ref.completion_ids


def test_greedy_logprobs_are_the_max_log_softmax_of_a_forward_pass(sequential):
    for c in sequential:
        logp = _forward_logits(c).log_softmax(-1)
        assert logp.argmax(-1).tolist() == c.completion_ids
        torch.testing.assert_close(torch.tensor(c.logprobs), logp.max(-1).values, atol=1e-4, rtol=0)


def test_tis_weight_is_exactly_one_with_identical_weights_under_top_p(backend):
    # The sampler's logprobs are the temperature-scaled full softmax, as the trainer computes
    # them, so truncation (top_p 0.95, top_k) never biases the importance weight.
    from memgym.trainer.loss import tis_weights

    prompts = PROMPTS * 4
    reqs = [_chat(p, SamplingParams(max_new_tokens=24, temperature=0.8, top_p=0.95, seed=i))
            for i, p in enumerate(prompts)]
    reqs.append(_chat("Hello", SamplingParams(max_new_tokens=24, temperature=0.8, top_k=5, seed=99)))
    sampler, trainer = [], []
    for c in backend.generate_batch(reqs):
        logp = (_forward_logits(c) / 0.8).log_softmax(-1)
        trainer.append(logp.gather(1, torch.tensor(c.completion_ids)[:, None]).squeeze(1))
        sampler.append(torch.tensor(c.logprobs))
    sampler, trainer = torch.cat(sampler), torch.cat(trainer)
    assert sampler.numel() > 200
    w = tis_weights(trainer[None], sampler[None], torch.ones(1, sampler.numel()), cap=2.0)
    torch.testing.assert_close(w, torch.ones_like(w), atol=1e-5, rtol=0)
    assert w.mean().item() == pytest.approx(1.0, abs=1e-6)


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    for _ in range(20):
        tok, lp = sample_tokens(
            logits, torch.tensor([1.0]), torch.tensor([0]), torch.tensor([0.75]), [None]
        )
        assert tok.item() in (0, 1)  # 0.5 + 0.3 >= 0.75: the tail is cut
        expected = {0: 0.5, 1: 0.3}[tok.item()]  # the full softmax's, not the nucleus's
        assert lp.item() == pytest.approx(torch.log(torch.tensor(expected)).item(), abs=1e-5)


def test_sampling_follows_the_processed_distribution():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])).repeat(20000, 1)  # [B, 4]
    ones = torch.ones(20000)
    tokens, _ = sample_tokens(
        logits, ones, torch.zeros(20000, dtype=torch.long), ones, [None] * 20000
    )
    freq = torch.bincount(tokens, minlength=4) / 20000
    torch.testing.assert_close(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015, rtol=0)
    hot, _ = sample_tokens(logits, ones * 0.5, torch.full((20000,), 3), ones, [None] * 20000)
    freq = torch.bincount(hot, minlength=4) / 20000  # T=0.5 squares the odds; top-3 drops 0.1
    torch.testing.assert_close(freq, torch.tensor([0, 4, 9, 16]) / 29, atol=0.015, rtol=0)


def test_seeded_sampling_is_reproducible_alone_or_batched(backend):
    sp = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=0.9, seed=7)
    first = backend.generate_batch([_chat("Hello", sp)])[0]
    others = [_chat(p, SamplingParams(max_new_tokens=6, temperature=1.0)) for p in PROMPTS]
    again = backend.generate_batch(others + [_chat("Hello", sp)])[-1]
    assert again.completion_ids == first.completion_ids


def test_text_is_the_decoded_ids(sequential):
    for c in sequential:
        assert TOK.decode(c.completion_ids, skip_special_tokens=True) == c.text
        assert c.prompt_text == TOK.decode(c.prompt_ids)
        assert len(c.logprobs) == len(c.completion_ids) and c.latency_s > 0


def test_prompt_ids_and_raw_prompts(backend, sequential):
    c = backend.generate_batch(
        [GenerationRequest(prompt_ids=tuple(sequential[1].prompt_ids), sampling=GREEDY)]
    )[0]
    assert c.completion_ids == sequential[1].completion_ids
    raw = backend.generate_batch(
        [GenerationRequest(prompt=sequential[1].prompt_text, sampling=GREEDY)]
    )[0]
    assert raw.prompt_ids == sequential[1].prompt_ids


def test_stop_string_cuts_text_and_ids(backend, sequential):
    full = sequential[3]
    stop = full.text[4:7]
    assert stop and stop in full.text
    c = backend.generate_batch(
        [_chat(PROMPTS[3], SamplingParams(max_new_tokens=12, temperature=0, stop=(stop,)))]
    )[0]
    assert c.finish_reason == "stop"
    assert c.text == full.text[: full.text.index(stop)]
    n = len(c.completion_ids)
    assert c.completion_ids == full.completion_ids[:n]  # up to the token completing the stop
    assert stop in TOK.decode(c.completion_ids) and stop not in TOK.decode(c.completion_ids[:-1])


def test_eos_ends_the_completion_and_is_included(sequential):
    third = sequential[0].completion_ids[2]
    with TransformersBackend(MODEL, TOK, stop_token_ids=[third], batch_wait_ms=0) as b:
        c = b.generate_batch([_chat(PROMPTS[0])])[0]
    n = sequential[0].completion_ids.index(third) + 1
    assert c.completion_ids == sequential[0].completion_ids[:n] and c.finish_reason == "stop"


def test_length_limits(backend):
    zero = backend.generate_batch([_chat("hi", SamplingParams(max_new_tokens=0))])[0]
    assert (zero.text, zero.completion_ids, zero.finish_reason) == ("", [], "length")
    with TransformersBackend(MODEL, TOK, max_model_len=20, batch_wait_ms=0) as b:
        prompt = GenerationRequest(
            prompt_ids=tuple(range(5, 15)),
            sampling=SamplingParams(max_new_tokens=50, temperature=0),
        )
        c = b.generate_batch([prompt])[0]
        assert len(c.completion_ids) == 10 and c.finish_reason == "length"


def test_bad_requests_fail_alone(backend, sequential):
    bad = [
        GenerationRequest(),
        _chat("x", SamplingParams(top_p=0.0)),
        _chat("x", SamplingParams(temperature=-1.0)),
        GenerationRequest(prompt_ids=()),
    ]
    out = backend.generate_batch([bad[0], _chat(PROMPTS[0]), *bad[1:], _chat(PROMPTS[2])])
    errors = [out[0], *out[2:5]]
    assert all(c.finish_reason == "error" and c.error for c in errors)
    assert "no messages, prompt or prompt_ids" in out[0].error and "top_p" in out[2].error
    assert out[1].completion_ids == sequential[0].completion_ids
    assert out[5].completion_ids == sequential[2].completion_ids


def test_a_failing_prefill_errors_only_its_rows(sequential):
    class Flaky(TransformersBackend):
        def _forward(self, ids, mask, positions, cache):
            if ids.shape[1] > 40:
                raise RuntimeError("CUDA out of memory (simulated)")
            return super()._forward(ids, mask, positions, cache)

    with Flaky(MODEL, TOK, max_prefill_tokens=60, batch_wait_ms=50) as b:
        out = b.generate_batch([_chat(p) for p in PROMPTS])
    assert out[3].finish_reason == "error" and "out of memory" in out[3].error
    for i in (0, 1, 2, 4):
        assert out[i].completion_ids == sequential[i].completion_ids


def test_weights_are_shared_not_copied(sequential):
    model = build_tiny_model(TOK)
    with TransformersBackend(model, TOK, batch_wait_ms=0) as b:
        before = b.generate_batch([_chat(PROMPTS[1])])[0]
        assert before.completion_ids == sequential[1].completion_ids
        with torch.no_grad():
            model.get_input_embeddings().weight.mul_(-1.0)  # as an optimizer step would
        after = b.generate_batch([_chat(PROMPTS[1])])[0]
    assert after.completion_ids != before.completion_ids


def test_training_mode_is_restored_after_generation():
    model = build_tiny_model(TOK).train()
    with TransformersBackend(model, TOK, batch_wait_ms=0) as b:
        b.generate_batch([_chat("hi", SamplingParams(max_new_tokens=2, temperature=0))])
        deadline = time.time() + 120  # a guard against a hang, not a speed bound
        while not model.training and time.time() < deadline:
            time.sleep(0.01)
    assert model.training


def test_load_by_path_matches_the_object(tmp_path, sequential):
    MODEL.save_pretrained(tmp_path)
    TOK.save_pretrained(tmp_path)
    with TransformersBackend(str(tmp_path), dtype="float32", device="cpu", batch_wait_ms=0) as b:
        c = b.generate_batch([_chat(PROMPTS[1])])[0]
    assert c.completion_ids == sequential[1].completion_ids


def test_configuration_errors():
    with pytest.raises(ConfigError, match="dtype"):
        TransformersBackend(MODEL, TOK, dtype="bfloat16")
    with pytest.raises(ConfigError, match="could not be loaded"):
        TransformersBackend("/nonexistent/model/path")
    with pytest.raises(ConfigError, match="max_batch_size"):
        TransformersBackend(MODEL, TOK, max_batch_size=0)


def test_closed_backend_answers_with_errors():
    b = TransformersBackend(MODEL, TOK)
    b.generate_batch([_chat("hi", SamplingParams(max_new_tokens=1))])
    b.close()
    c = b.generate_batch([_chat("hi")])[0]
    assert c.finish_reason == "error" and "closed" in c.error


def test_make_backend_hf_alias(sequential):
    with make_backend("hf", model=MODEL, tokenizer=TOK, batch_wait_ms=0) as b:
        assert isinstance(b, TransformersBackend)
        assert (
            b.generate_batch([_chat(PROMPTS[0])])[0].completion_ids == sequential[0].completion_ids
        )


def test_engine_leaves_the_mode_alone_when_the_caller_owns_it(monkeypatch):
    calls = []
    monkeypatch.setattr(type(MODEL), "train", lambda self, mode=True: calls.append(mode) or self)
    MODEL.training = True
    try:
        with TransformersBackend(MODEL, TOK, manage_mode=False, batch_wait_ms=0) as b:
            c = b.generate_batch([_chat("Hello")])[0]
            time.sleep(0.05)  # the idle engine would restore the mode here
    finally:
        MODEL.training = False
    assert c.finish_reason != "error" and calls == []
