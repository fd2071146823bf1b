"""VLLMBackend without a GPU: the import guard, the pure converters (sampling params, vLLM-shaped
outputs -> Completion, trainer -> vLLM weight names incl. a merged peft LoRA), and the whole
request flow against a fake `vllm` module shaped like vLLM's offline API."""

import asyncio
import copy
import dataclasses
import sys
import types
from dataclasses import dataclass

import pytest
import torch

from memgym.errors import BackendError, ConfigError
from memgym.llm import GenerationRequest, SamplingParams, VLLMBackend, make_backend
from memgym.llm.vllm import (
    completion_from_vllm,
    named_weights_for_vllm,
    vllm_sampling_kwargs,
    vllm_weight_name,
)
from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

TOK = build_tiny_tokenizer()


# -- objects shaped like vLLM's (vllm/outputs.py, vllm/sequence.py) -----------------------------
@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list
    cumulative_logprob: float | None
    logprobs: list | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list
    prompt_logprobs: list | None
    outputs: list
    finished: bool = True


def _output(ids, finish="stop", text=None, logprobs=True, prompt_ids=(1, 2)):
    lps = [{t: Logprob(-0.1 * (i + 1), 1), 999: Logprob(-9.0, 2)} for i, t in enumerate(ids)]
    out = CompletionOutput(
        0,
        TOK.decode(ids, skip_special_tokens=True) if text is None else text,
        list(ids),
        None,
        lps if logprobs else None,
        finish,
    )
    return RequestOutput("0", None, list(prompt_ids), None, [out])


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in `vllm` package: LLM.generate answers each prompt with its reversed last 3 ids."""
    calls = {"generate": [], "loaded": [], "resets": 0, "llm_kwargs": None}

    @dataclass
    class EngineArgs:
        model: str = ""
        logprobs_mode: str = "raw_logprobs"

    class FakeSamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class FakeModel:
        def load_weights(self, weights):
            calls["loaded"].append([name for name, _ in weights])

    class LLM:
        def __init__(self, **kwargs):
            calls["llm_kwargs"] = kwargs
            runner = types.SimpleNamespace(model=FakeModel())
            worker = types.SimpleNamespace(model_runner=runner)
            self.llm_engine = types.SimpleNamespace(
                model_executor=types.SimpleNamespace(driver_worker=worker)
            )

        def get_tokenizer(self):
            return TOK

        def generate(self, prompts, sampling_params, lora_request=None, use_tqdm=True):
            calls["generate"].append((prompts, sampling_params, lora_request))
            outs = []
            for p, sp in zip(prompts, sampling_params):
                ids = p["prompt_token_ids"][::-1][:3][: sp.kwargs["max_tokens"]]
                finish = "length" if len(ids) == sp.kwargs["max_tokens"] else "stop"
                outs.append(_output(ids, finish, prompt_ids=p["prompt_token_ids"]))
            return outs

        def reset_prefix_cache(self):
            calls["resets"] += 1

    @dataclass
    class LoRARequest:
        lora_name: str
        lora_int_id: int
        lora_path: str

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams, vllm.EngineArgs = LLM, FakeSamplingParams, EngineArgs
    lora = types.ModuleType("vllm.lora")
    lora_request = types.ModuleType("vllm.lora.request")
    lora_request.LoRARequest = LoRARequest
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora_request)
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    return calls


def test_import_guard_names_the_extra_and_the_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(BackendError, match=r"CUDA GPU: pip install memgym\[vllm\]"):
        VLLMBackend("Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(BackendError, match="CUDA GPU"):
        make_backend("vllm", model="x")


def test_sampling_kwargs():
    kw = vllm_sampling_kwargs(
        SamplingParams(max_new_tokens=7, temperature=0.5, top_k=0, stop=("x",), seed=3)
    )
    assert kw == {
        "n": 1,
        "temperature": 0.5,
        "top_p": 1.0,
        "top_k": -1,
        "max_tokens": 7,
        "stop": ["x"],
        "seed": 3,
        "logprobs": 0,
    }
    assert vllm_sampling_kwargs(SamplingParams(top_k=5), logprobs=False)["top_k"] == 5
    assert vllm_sampling_kwargs(SamplingParams())["stop"] is None


def test_completion_from_vllm_output():
    ids = TOK.encode("the answer") + [TOK.eos_token_id]
    c = completion_from_vllm(
        _output(ids, "stop", text="<think>x</think> the answer"),
        prompt_ids=[9, 9],
        prompt_text="p",
        latency_s=0.5,
        strip_think_text=True,
    )
    assert c.text == "the answer" and c.completion_ids == ids and c.finish_reason == "stop"
    assert c.logprobs == pytest.approx([-0.1 * (i + 1) for i in range(len(ids))])
    assert (
        c.prompt_ids == [1, 2] and c.prompt_text == "p" and c.latency_s == 0.5
    )  # engine's ids win
    assert completion_from_vllm(_output([5], logprobs=False), prompt_ids=[]).logprobs == []
    aborted = completion_from_vllm(_output([5], "abort"), prompt_ids=[3])
    assert aborted.finish_reason == "error" and "abort" in aborted.error
    broken = _output([5, 6])
    broken.outputs[0].logprobs[1] = {7: Logprob(-1.0)}
    with pytest.raises(BackendError, match=r"logprobs\[1\].*sampled token 6"):
        completion_from_vllm(broken, prompt_ids=[])


def test_weight_names():
    assert (
        vllm_weight_name("base_model.model.model.layers.0.mlp.up_proj.base_layer.weight")
        == "model.layers.0.mlp.up_proj.weight"
    )
    assert (
        vllm_weight_name("base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight")
        is None
    )
    assert (
        vllm_weight_name("base_model.model.lm_head.modules_to_save.default.weight")
        == "lm_head.weight"
    )
    assert vllm_weight_name("base_model.model.lm_head.original_module.weight") is None
    assert vllm_weight_name("_orig_mod.model.norm.weight") == "model.norm.weight"


def test_named_weights_fold_in_a_peft_lora_without_touching_the_model():
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(
        build_tiny_model(TOK),
        peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    q = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    before = q.detach().clone()
    got = dict(named_weights_for_vllm(model))
    assert torch.equal(q, before)  # the trainer's weights are untouched
    merged = copy.deepcopy(model).merge_and_unload()
    expected = dict(merged.named_parameters())
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor.detach(), msg=name)
    assert not torch.equal(got["model.layers.0.self_attn.q_proj.weight"], before)


def test_backend_flow_with_a_fake_engine(fake_vllm, tmp_path):
    import os

    backend = VLLMBackend("tiny-model", enable_lora=True, batch_wait_ms=20)
    kwargs = fake_vllm["llm_kwargs"]
    assert kwargs["model"] == "tiny-model" and kwargs["logprobs_mode"] == "processed_logprobs"
    assert kwargs["enable_prefix_caching"] and kwargs["gpu_memory_utilization"] == 0.5
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"

    requests = [
        GenerationRequest(messages=({"role": "user", "content": "hello"},)),
        GenerationRequest(prompt_ids=(10, 11, 12, 13), sampling=SamplingParams(max_new_tokens=2)),
        GenerationRequest(),  # invalid: answered with an error, the others go on
    ]

    async def run():
        return await asyncio.gather(*(backend.generate(r) for r in requests))

    chat, ids, bad = asyncio.run(run())
    assert len(fake_vllm["generate"]) == 1  # one engine call for the concurrent requests
    prompts, params, lora = fake_vllm["generate"][0]
    templated = TOK.apply_chat_template(
        [{"role": "user", "content": "hello"}], add_generation_prompt=True, tokenize=False
    )
    assert prompts[0]["prompt_token_ids"] == TOK(templated, add_special_tokens=False)["input_ids"]
    assert chat.prompt_text == templated and chat.finish_reason == "stop"
    assert chat.completion_ids == prompts[0]["prompt_token_ids"][::-1][:3]
    assert (ids.completion_ids, ids.finish_reason, ids.prompt_ids) == (
        [13, 12],
        "length",
        [10, 11, 12, 13],
    )
    assert params[1].kwargs["max_tokens"] == 2 and lora is None
    assert bad.finish_reason == "error" and "no messages" in bad.error

    model = build_tiny_model(TOK)
    assert backend.sync_weights(model) == len(list(model.named_parameters()))
    assert fake_vllm["loaded"][0][0] == "model.embed_tokens.weight" and fake_vllm["resets"] == 1

    with pytest.raises(ConfigError, match="not a directory"):
        backend.load_lora(str(tmp_path / "missing"))
    backend.load_lora(str(tmp_path))
    backend.load_lora(str(tmp_path))
    backend.generate_batch([requests[1]])
    lora = fake_vllm["generate"][-1][2]
    assert (lora.lora_int_id, lora.lora_path) == (2, str(tmp_path))
    backend.close()


def test_engine_failure_becomes_error_completions(fake_vllm):
    backend = VLLMBackend("tiny-model")
    backend.llm.generate = lambda *a, **k: (_ for _ in ()).throw(ValueError("prompt too long"))
    out = backend.generate_batch([GenerationRequest(prompt="a"), GenerationRequest(prompt="b")])
    assert all(c.finish_reason == "error" and "prompt too long" in c.error for c in out)
    with pytest.raises(ConfigError, match="enable_lora=True"):
        backend.load_lora("/tmp")
    backend.close()


def test_engine_args_without_logprobs_mode_are_left_alone(fake_vllm):
    @dataclass
    class OldEngineArgs:
        model: str = ""

    sys.modules["vllm"].EngineArgs = OldEngineArgs
    VLLMBackend("tiny-model").close()
    assert "logprobs_mode" not in fake_vllm["llm_kwargs"]
    assert [f.name for f in dataclasses.fields(OldEngineArgs)] == ["model"]
