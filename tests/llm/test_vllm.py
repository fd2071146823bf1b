"""VLLMBackend without a GPU: the import guard and version pin, the pure converters (sampling and
engine kwargs, vLLM-shaped outputs -> Completion, trainer -> vLLM weight names incl. a folded peft
LoRA, packed tensors), and the request and weight-sync flows against a fake `vllm` module.

The fake models the V1 constraints the backend relies on: `LLM(**kwargs)` accepts only
`EngineArgs` fields; `generate` validates every prompt before running any and raises on one
longer than `max_model_len`; the engine lives in this process (a driver worker) only with
tensor_parallel_size 1 and VLLM_ENABLE_V1_MULTIPROCESSING=0; otherwise `collective_rpc` is the
only way in, it refuses a callable (V1's msgpack encoder does) or non-plain arguments (V1 decodes
a utility call's arguments untyped), and the worker class gets `worker_extension_cls` mixed in,
resolved from its qualified name as vLLM does.
"""

import asyncio
import copy
import dataclasses
import importlib
import logging
import os
import sys
import types
import weakref
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from memgym.errors import BackendError, ConfigError
from memgym.llm import GenerationRequest, SamplingParams, VLLMBackend, make_backend
from memgym.llm.vllm import (
    SUPPORTED_VLLM,
    check_vllm_version,
    completion_from_vllm,
    logprobs_are_truncated,
    named_weights_for_vllm,
    vllm_engine_kwargs,
    vllm_sampling_kwargs,
    vllm_weight_name,
)
from memgym.llm.vllm_worker import pack_tensor, unpack_tensor
from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

TOK = build_tiny_tokenizer()
MODEL_MAX_LEN = 64  # the fake model's own context length


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


# -- the fake vllm package ------------------------------------------------------------------------
@dataclass
class EngineArgs:
    model: str = ""
    tokenizer: str | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    enable_prefix_caching: bool | None = None
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    dtype: str = "auto"
    seed: int | None = 0
    enable_lora: bool = False
    max_lora_rank: int = 16
    logprobs_mode: str = "raw_logprobs"
    worker_extension_cls: str = ""
    enforce_eager: bool = False
    distributed_executor_backend: str | None = None


_PLAIN = (str, bytes, int, float, bool, type(None))


def _msgpack_plain(value) -> bool:
    """What survives V1's untyped msgpack decoding unchanged."""
    if isinstance(value, (list, tuple)):
        return all(_msgpack_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_msgpack_plain(k) and _msgpack_plain(v) for k, v in value.items())
    return isinstance(value, _PLAIN)


class FakeModel:
    """Records what `load_weights` received (copies only, so sent tensors can be freed)."""

    def __init__(self, calls):
        self.calls = calls
        self.param = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        return iter([self.param])

    def load_weights(self, weights):
        self.calls["load"].append([(name, t.detach().clone()) for name, t in weights])
        for hook in self.calls["on_load"]:
            hook(weights)


class FakeWorkerBase:
    def __init__(self, calls):
        self.model_runner = types.SimpleNamespace(model=FakeModel(calls))


def _resolve_qualname(qualname):
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _install_fake_vllm(monkeypatch, version="0.30.0", engine_args=EngineArgs):
    calls = {"generate": [], "load": [], "rpc": [], "resets": 0, "llm_kwargs": None, "on_load": []}

    class FakeSamplingParams:
        def __init__(self, **kwargs):
            if kwargs["max_tokens"] < 1:
                raise ValueError(f"max_tokens must be at least 1, got {kwargs['max_tokens']}.")
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs):
            args = engine_args(**kwargs)  # TypeError on an unknown engine argument, like V1
            calls["llm_kwargs"] = kwargs
            self.max_model_len = args.max_model_len or MODEL_MAX_LEN
            config = types.SimpleNamespace(max_model_len=self.max_model_len)
            multiproc = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") != "0"
            extension = getattr(args, "worker_extension_cls", "")
            bases = (FakeWorkerBase,) + ((_resolve_qualname(extension),) if extension else ())
            worker_cls = type("Worker", bases, {})
            self.workers = [worker_cls(calls) for _ in range(args.tensor_parallel_size)]
            self.llm_engine = types.SimpleNamespace(model_config=config)
            if args.tensor_parallel_size == 1 and not multiproc:
                self.llm_engine.model_executor = types.SimpleNamespace(
                    driver_worker=self.workers[0]
                )

        def get_tokenizer(self):
            return TOK

        def generate(self, prompts, sampling_params, lora_request=None, use_tqdm=True):
            calls["generate"].append((prompts, sampling_params, lora_request))
            for p in prompts:  # V1 validates every request before scheduling any
                n = len(p["prompt_token_ids"])
                if n > self.max_model_len:
                    raise ValueError(
                        f"The decoder prompt (length {n}) is longer than the maximum model "
                        f"length of {self.max_model_len}."
                    )
            outs = []
            for p, sp in zip(prompts, sampling_params):
                ids = p["prompt_token_ids"][::-1][:3][: sp.kwargs["max_tokens"]]
                finish = "length" if len(ids) == sp.kwargs["max_tokens"] else "stop"
                outs.append(_output(ids, finish, prompt_ids=p["prompt_token_ids"]))
            return outs

        def collective_rpc(self, method, timeout=None, args=(), kwargs=None):
            if not isinstance(method, str):  # V1: msgpack refuses a function
                raise TypeError(
                    f"Object of type {type(method)} is not serializable. Set "
                    "VLLM_ALLOW_INSECURE_SERIALIZATION=1 to allow fallback to pickle."
                )
            if not _msgpack_plain(list(args)) or not _msgpack_plain(kwargs or {}):
                raise TypeError("collective_rpc arguments must be plain msgpack data")
            calls["rpc"].append(method)
            return [getattr(w, method)(*args, **(kwargs or {})) for w in self.workers]

        def reset_prefix_cache(self):
            calls["resets"] += 1

    @dataclass
    class LoRARequest:
        lora_name: str
        lora_int_id: int
        lora_path: str

    vllm = types.ModuleType("vllm")
    vllm.__version__ = version
    vllm.LLM, vllm.SamplingParams, vllm.EngineArgs = LLM, FakeSamplingParams, engine_args
    lora = types.ModuleType("vllm.lora")
    lora_request = types.ModuleType("vllm.lora.request")
    lora_request.LoRARequest = LoRARequest
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora_request)
    return calls


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in `vllm` 0.30.0: LLM.generate answers each prompt with its reversed last 3 ids."""
    monkeypatch.delenv("VLLM_ENABLE_V1_MULTIPROCESSING", raising=False)
    return _install_fake_vllm(monkeypatch)


def _tiny_lora_model(**lora_kwargs):
    peft = pytest.importorskip("peft")
    return peft.get_peft_model(
        build_tiny_model(TOK),
        peft.LoraConfig(
            r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False, **lora_kwargs
        ),
    )


def _expected_weights(model):
    """What vLLM must end up with: the trainer's weights, LoRA merged, by vLLM name."""
    if hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    return {name: t.detach() for name, t in model.named_parameters()}


# -- versions and logprobs ----------------------------------------------------------------------
def test_import_guard_names_the_extra_and_the_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(BackendError, match=r"pip install memgym\[vllm\] on a machine with an NVIDIA"):
        VLLMBackend("Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(BackendError, match=r"scripts/install_vllm_cpu\.sh"):
        make_backend("vllm", model="x")


def test_supported_range_is_stated_once_and_both_extras_agree():
    low, high = SUPPORTED_VLLM
    assert (low, high) == ("0.22.0", "0.32.0")  # TRL 1.16's 0.22.0..0.31.0 plus tested 0.32.0
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert f'vllm = ["vllm>={low},<={high}"]' in text
    assert f'vllm-cpu = ["vllm-cpu>={low},<={high}"]' in text


def test_installed_vllm_names_the_cpu_distribution_too(monkeypatch):
    from importlib import metadata

    from memgym.eval.records import PACKAGES
    from memgym.llm.vllm import installed_vllm

    def version(name):
        if name == "vllm-cpu":
            return "0.32.0"
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", version)
    assert installed_vllm() == ("vllm-cpu", "0.32.0")
    assert {"vllm", "vllm-cpu"} <= set(PACKAGES)  # run records name whichever is installed


def test_cpu_env_defaults_never_override_the_users(monkeypatch):
    from memgym.llm.vllm import CPU_ENV_DEFAULTS, apply_cpu_env_defaults

    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-1")
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    assert apply_cpu_env_defaults() == {"VLLM_CPU_KVCACHE_SPACE": "2"}
    assert os.environ["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    assert CPU_ENV_DEFAULTS["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"


@pytest.mark.parametrize("version", ["0.10.1", "0.21.9", "0.8.5.post1"])
def test_vllm_older_than_the_supported_range_is_refused_naming_both(monkeypatch, version):
    _install_fake_vllm(monkeypatch, version=version)
    with pytest.raises(BackendError, match=rf"vLLM {version} is installed.*vllm>=0.22.0,<=0.32.0"):
        VLLMBackend("tiny-model")


def test_vllm_in_range_is_accepted_and_a_newer_one_warns(caplog):
    check_vllm_version("0.22.0")
    check_vllm_version("0.32.0+cpu")  # a local build tag is not "newer"
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="memgym.llm.vllm"):
        check_vllm_version("0.33.0")
    assert "newer than memgym's tested range" in caplog.text
    with pytest.raises(BackendError, match="not a version number"):
        check_vllm_version("banana")


def test_engine_without_logprobs_mode_is_refused_not_silently_raw(monkeypatch):
    fields = [
        (f.name, f.type, dataclasses.field(default=f.default))
        for f in dataclasses.fields(EngineArgs)
        if f.name != "logprobs_mode"
    ]
    old_args = dataclasses.make_dataclass("OldEngineArgs", fields)
    calls = _install_fake_vllm(monkeypatch, engine_args=old_args)
    with pytest.raises(BackendError, match="no engine argument logprobs_mode"):
        VLLMBackend("tiny-model")
    assert calls["llm_kwargs"] is None  # never started


def test_logprobs_are_truncated_exactly_when_top_p_or_top_k_cut(fake_vllm):
    assert not logprobs_are_truncated(1.0, 0)
    assert logprobs_are_truncated(0.95, 0) and logprobs_are_truncated(1.0, 20)
    backend = VLLMBackend("tiny-model")
    assert backend.logprobs_are_truncated(0.9, 0) and not backend.logprobs_are_truncated(1.0, 0)
    backend.close()


# -- pure conversions ---------------------------------------------------------------------------
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
    assert vllm_sampling_kwargs(SamplingParams(max_new_tokens=9), max_tokens=4)["max_tokens"] == 4


def test_engine_kwargs_carry_lengths_mode_and_extension():
    kw = vllm_engine_kwargs(
        "m", max_model_len=8192, max_num_batched_tokens=4096, extra={"enforce_eager": True}
    )
    assert kw["max_model_len"] == 8192 and kw["max_num_batched_tokens"] == 4096
    assert kw["logprobs_mode"] == "processed_logprobs" and kw["enforce_eager"]
    assert kw["worker_extension_cls"] == "memgym.llm.vllm_worker.WeightSyncExtension"
    assert _resolve_qualname(kw["worker_extension_cls"]).memgym_apply_weights
    assert "max_num_batched_tokens" not in vllm_engine_kwargs("m")  # vLLM's default
    EngineArgs(**vllm_engine_kwargs("m", enable_lora=True))  # every key is an engine argument


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"extra": {"logprobs_mode": "raw_logprobs"}}, "logprobs_mode='raw_logprobs'"),
        ({"extra": {"worker_extension_cls": "x.Y"}}, "worker_extension_cls='x.Y'"),
        ({"max_model_len": 0}, "max_model_len=0"),
        ({"max_num_batched_tokens": -5}, "max_num_batched_tokens=-5"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization=1.5"),
    ],
)
def test_engine_kwargs_refuse_what_would_break_memgym(bad, match):
    with pytest.raises(ConfigError, match=match):
        vllm_engine_kwargs("m", **bad)


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
    model = _tiny_lora_model()
    q = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    before = q.detach().clone()
    got = dict(named_weights_for_vllm(model))
    assert torch.equal(q, before)  # the trainer's weights are untouched
    expected = _expected_weights(model)
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, msg=name)
    assert not torch.equal(got["model.layers.0.self_attn.q_proj.weight"], before)


def test_a_dora_adapter_is_refused_rather_than_folded_wrong():
    model = _tiny_lora_model(use_dora=True)
    with pytest.raises(BackendError, match="DoRA"):
        named_weights_for_vllm(model)


@pytest.mark.parametrize(
    "tensor",
    [
        torch.randn(3, 5).to(torch.bfloat16),
        torch.randn(4),
        torch.arange(6, dtype=torch.int64).reshape(2, 3),
        torch.tensor(2.5),
        torch.empty(0, 4),
        torch.randn(4, 6)[:, ::2],  # not contiguous
    ],
)
def test_packed_tensors_are_plain_data_and_round_trip_exactly(tensor):
    packed = pack_tensor("w", tensor)
    assert _msgpack_plain(packed)
    name, back = unpack_tensor(packed)
    assert name == "w" and back.dtype == tensor.dtype and back.shape == tensor.shape
    assert torch.equal(back, tensor)


# -- requests -------------------------------------------------------------------------------------
def test_backend_flow_with_a_fake_engine(fake_vllm, tmp_path):
    backend = VLLMBackend("tiny-model", enable_lora=True, batch_wait_ms=20)
    kwargs = fake_vllm["llm_kwargs"]
    assert kwargs["model"] == "tiny-model" and kwargs["logprobs_mode"] == "processed_logprobs"
    assert kwargs["enable_prefix_caching"] and kwargs["gpu_memory_utilization"] == 0.5
    assert os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert backend.max_model_len == MODEL_MAX_LEN  # read back from the engine

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

    with pytest.raises(ConfigError, match="not a directory"):
        backend.load_lora(str(tmp_path / "missing"))
    backend.load_lora(str(tmp_path))
    backend.load_lora(str(tmp_path))
    backend.generate_batch([requests[1]])
    lora = fake_vllm["generate"][-1][2]
    assert (lora.lora_int_id, lora.lora_path) == (2, str(tmp_path))
    backend.close()


def test_max_model_len_and_max_num_batched_tokens_reach_the_engine(fake_vllm):
    backend = VLLMBackend("tiny-model", max_model_len=32, max_num_batched_tokens=4096)
    assert fake_vllm["llm_kwargs"]["max_model_len"] == 32
    assert fake_vllm["llm_kwargs"]["max_num_batched_tokens"] == 4096
    assert backend.max_model_len == 32
    backend.close()


def test_a_prompt_over_max_model_len_fails_alone_and_the_rest_of_the_batch_runs(fake_vllm):
    backend = VLLMBackend("tiny-model", max_model_len=16)
    sampling = SamplingParams(max_new_tokens=8)
    out = backend.generate_batch(
        [
            GenerationRequest(prompt_ids=tuple(range(1, 5)), sampling=sampling),
            GenerationRequest(prompt_ids=tuple(range(1, 17)), sampling=sampling),  # 16 = max
            GenerationRequest(prompt_ids=tuple(range(1, 30)), sampling=sampling),  # over
            GenerationRequest(prompt_ids=tuple(range(1, 16)), sampling=sampling),  # room for 1
        ]
    )
    assert [c.finish_reason for c in out] == ["stop", "error", "error", "length"]
    assert "16 tokens, at or over max_model_len=16" in out[1].error
    assert "29 tokens" in out[2].error
    assert len(fake_vllm["generate"]) == 1  # checked first: the engine never saw a bad prompt
    prompts, params, _ = fake_vllm["generate"][0]
    assert [len(p["prompt_token_ids"]) for p in prompts] == [4, 15]
    assert [sp.kwargs["max_tokens"] for sp in params] == [8, 1]  # capped to the room left
    assert out[3].completion_ids == [15]
    backend.close()


def test_a_prompt_over_max_model_len_is_recorded_on_its_turn(fake_vllm):
    from memgym.agents.calls import call_llm  # how every agent calls a backend

    backend = VLLMBackend("tiny-model", max_model_len=8)
    ctx = types.SimpleNamespace(turns=[], step=0, sampling_seed=None)
    completion = asyncio.run(
        call_llm(
            backend,
            ctx,
            component="answer",
            prompt="word " * 40,
            sampling=SamplingParams(max_new_tokens=4),
        )
    )
    assert completion.text == "" and len(ctx.turns) == 1
    turn = ctx.turns[0]
    assert turn.finish_reason == "error" and "max_model_len=8" in turn.error
    assert not turn.trainable
    backend.close()


def test_a_batch_the_engine_rejects_is_retried_one_by_one(fake_vllm):
    backend = VLLMBackend("tiny-model")
    real = backend.llm.generate

    def picky(prompts, **kwargs):  # rejects any call holding token 99, before running any
        if any(99 in p["prompt_token_ids"] for p in prompts):
            raise ValueError("token 99 is out of vocabulary")
        return real(prompts, **kwargs)

    backend.llm.generate = picky
    out = backend.generate_batch(
        [
            GenerationRequest(prompt_ids=(1, 2)),
            GenerationRequest(prompt_ids=(99,)),
            GenerationRequest(prompt_ids=(3, 4)),
        ]
    )
    assert [c.finish_reason for c in out] == ["stop", "error", "stop"]
    assert "token 99" in out[1].error and out[1].prompt_ids == [99]
    assert out[0].completion_ids == [2, 1] and out[2].completion_ids == [4, 3]
    backend.close()


def test_engine_failure_becomes_error_completions(fake_vllm):
    backend = VLLMBackend("tiny-model")
    backend.llm.generate = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("engine died"))
    out = backend.generate_batch([GenerationRequest(prompt="a"), GenerationRequest(prompt="b")])
    assert all(c.finish_reason == "error" and "engine died" in c.error for c in out)
    with pytest.raises(ConfigError, match="enable_lora=True"):
        backend.load_lora("/tmp")
    backend.close()


# -- weights --------------------------------------------------------------------------------------
def _loaded(calls):
    """{name: tensor} of everything `load_weights` received, on the first worker."""
    return {name: t for batch in calls["load"] for name, t in batch}


def test_sync_in_process_pushes_each_weight_and_resets_the_prefix_cache(fake_vllm):
    backend = VLLMBackend("tiny-model")
    model = build_tiny_model(TOK)
    assert backend.sync_weights(model) == len(list(model.named_parameters()))
    assert all(len(batch) == 1 for batch in fake_vllm["load"])  # one tensor per call, like TRL
    assert fake_vllm["rpc"] == []  # straight into the in-process model
    loaded = _loaded(fake_vllm)
    for name, tensor in _expected_weights(model).items():
        assert torch.equal(loaded[name], tensor), name
    assert fake_vllm["resets"] == 1 and backend.weight_syncs == 1
    backend.close()


def test_sync_folds_one_lora_layer_at_a_time_and_frees_it_before_the_next(fake_vllm):
    backend = VLLMBackend("tiny-model")
    model = _tiny_lora_model()
    events, pushed = [], []
    lora_names = set()
    for module_name, module in model.named_modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "base_layer"):
            lora_names.add(vllm_weight_name(f"{module_name}.base_layer.weight"))
            real = module.get_delta_weight

            def delta(adapter, _real=real, _name=module_name):
                alive = [r for r in pushed if r() is not None]
                assert not alive, "a folded weight was still alive when the next was computed"
                events.append("fold")
                return _real(adapter)

            module.get_delta_weight = delta

    def on_load(weights):
        for name, tensor in weights:
            if name in lora_names:
                events.append("push")
                pushed.append(weakref.ref(tensor))

    fake_vllm["on_load"].append(on_load)
    backend.sync_weights(model)
    assert len(lora_names) == 4 and events == ["fold", "push"] * 4  # interleaved, not all first
    loaded = _loaded(fake_vllm)
    for name, tensor in _expected_weights(model).items():
        torch.testing.assert_close(loaded[name], tensor, msg=name)
    backend.close()


@pytest.mark.parametrize("setting", ["tensor_parallel", "multiprocessing"])
def test_sync_without_an_in_process_engine_goes_through_the_worker_extension(
    fake_vllm, monkeypatch, setting
):
    if setting == "multiprocessing":
        monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
        backend = VLLMBackend("tiny-model", weight_sync_bucket_mb=0.05)
    else:
        backend = VLLMBackend("tiny-model", tensor_parallel_size=2, weight_sync_bucket_mb=0.05)
    assert backend._engine_worker() is None  # no driver worker: the old code sent a function
    model = _tiny_lora_model()
    expected = _expected_weights(model)
    assert backend.sync_weights(model) == len(expected)
    n_workers = len(backend.llm.workers)
    assert n_workers == (2 if setting == "tensor_parallel" else 1)
    calls = fake_vllm["rpc"]
    # by name, in buckets, then one apply (vLLM processes a layer once all its tensors are in)
    assert calls[:-1] == ["memgym_receive_weights"] * (len(calls) - 1) and len(calls) > 2
    assert calls[-1] == "memgym_apply_weights"
    received = {}
    for batch in fake_vllm["load"]:
        for name, tensor in batch:
            received.setdefault(name, []).append(tensor)
    assert set(received) == set(expected)
    for name, tensor in expected.items():
        assert len(received[name]) == n_workers  # every worker gets every full tensor
        for got in received[name]:
            torch.testing.assert_close(got, tensor, msg=name)
    assert fake_vllm["resets"] == 1
    backend.close()


def test_the_fake_collective_rpc_refuses_what_v1_refuses(fake_vllm, monkeypatch):
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    backend = VLLMBackend("tiny-model")
    with pytest.raises(TypeError, match="not serializable"):
        backend.llm.collective_rpc(lambda worker: None)
    with pytest.raises(TypeError, match="plain msgpack"):
        backend.llm.collective_rpc("memgym_receive_weights", args=([("w", torch.zeros(2))],))
    backend.close()


def test_sync_into_an_engine_built_without_the_extension_says_how_to_fix(fake_vllm, monkeypatch):
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    llm = sys.modules["vllm"].LLM(model="tiny-model", logprobs_mode="processed_logprobs")
    backend = VLLMBackend("tiny-model", llm=llm)
    with pytest.raises(BackendError, match=r"worker_extension_cls='memgym\.llm\.vllm_worker"):
        backend.sync_weights(build_tiny_model(TOK))
    backend.close()
