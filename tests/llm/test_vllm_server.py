"""The vllm-server backend (memgym.llm.vllm_server) through TRL's real VLLMClient, against a
PROTOCOL FAKE: a small HTTP server on 127.0.0.1 that answers the JSON of the endpoints TRL's
client calls on `trl vllm-serve` (/health, /v1/models, /v1/completions with token ids and
logprobs, /reset_prefix_cache). No vLLM runs here. Covered: token-id prompts in, completion ids
and sampled logprobs out, sampling fields sent, several servers load-balanced, a server that dies
failing its call fast and named, a bad answer failing its request only, and weight sync refusing
a CPU trainer. Not covered (needs vLLM and a GPU): the NCCL weight transfer itself."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("trl.generation.vllm_client")
pytest.importorskip("requests")

from memgym.errors import BackendError  # noqa: E402
from memgym.llm import GenerationRequest, SamplingParams  # noqa: E402
from memgym.llm.base import BackendUnavailable  # noqa: E402
from memgym.llm.vllm_server import VLLMServerBackend, full_weights_for_vllm  # noqa: E402


class FakeVLLMServe:
    """PROTOCOL FAKE of `trl vllm-serve`: answers each completion with the prompt's last
    `max_tokens` ids reversed, logprob -0.5 per token, in vLLM's /v1/completions JSON."""

    def __init__(self, broken: bool = False):
        self.bodies: list[dict] = []
        self.resets = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, obj, status=200):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/health":
                    self._send({})
                elif self.path == "/v1/models":
                    self._send({"data": [{"id": "fake-model"}]})
                else:
                    self._send({"detail": "not found"}, 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/reset_prefix_cache":
                    outer.resets += 1
                    return self._send({"success": True})
                outer.bodies.append(body)
                if broken:
                    return self._send({"choices": [{"text": "no ids"}]})
                prompt = body["prompt"][0]
                ids = list(reversed(prompt))[: body["max_tokens"]]
                self._send({"choices": [{
                    "prompt_token_ids": prompt, "token_ids": ids,
                    "logprobs": {"content": [{"token": f"token_id:{t}", "logprob": -0.5,
                                              "top_logprobs": []} for t in ids]}}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def trl_client_without_vllm(monkeypatch):
    """TRL's VLLMClient refuses to start without vLLM installed; its HTTP side needs none."""
    import trl.generation.vllm_client as vc

    monkeypatch.setattr(vc, "is_vllm_available", lambda *a, **k: True)


@pytest.fixture
def tokenizer():
    from memgym.testing.tiny_lm import build_tiny_tokenizer

    return build_tiny_tokenizer()


def request(ids, **sampling):
    return GenerationRequest(prompt_ids=tuple(ids), sampling=SamplingParams(**sampling))


def test_token_ids_and_sampled_logprobs_come_back(trl_client_without_vllm, tokenizer):
    server = FakeVLLMServe()
    try:
        backend = VLLMServerBackend(server.url, tokenizer)
        [done] = backend.generate_batch([request([5, 6, 7, 8], max_new_tokens=3, seed=11,
                                                 temperature=0.7, top_k=5, stop=("x",))])
    finally:
        server.close()
    assert done.error is None and done.prompt_ids == [5, 6, 7, 8]
    assert done.completion_ids == [8, 7, 6] and done.logprobs == [-0.5, -0.5, -0.5]
    assert done.finish_reason == "length"
    body = server.bodies[0]
    assert body["prompt"] == [[5, 6, 7, 8]] and body["return_token_ids"] is True
    assert body["logprobs"] == 0 and body["seed"] == 11 and body["stop"] == ["x"]
    assert body["temperature"] == 0.7 and body["top_k"] == 5 and body["model"] == "fake-model"


def test_several_servers_share_the_calls(trl_client_without_vllm, tokenizer):
    servers = [FakeVLLMServe(), FakeVLLMServe()]
    try:
        backend = VLLMServerBackend([s.url for s in servers], tokenizer)
        done = backend.generate_batch([request([1, 2, 3 + i], max_new_tokens=8)
                                       for i in range(8)])
    finally:
        for s in servers:
            s.close()
    assert [len(s.bodies) for s in servers] == [4, 4]
    assert all(c.finish_reason == "stop" and c.completion_ids for c in done)


def test_a_server_that_dies_fails_its_call_fast_naming_it(trl_client_without_vllm, tokenizer):
    alive, dying = FakeVLLMServe(), FakeVLLMServe()
    backend = VLLMServerBackend([alive.url, dying.url], tokenizer)
    dying.close()
    try:
        with pytest.raises(BackendUnavailable, match=rf"server 2 of 2 \({dying.url}\)"):
            backend.generate_batch([request([1, 2], max_new_tokens=2) for _ in range(2)])
    finally:
        alive.close()


def test_a_server_that_is_down_at_start_is_named(trl_client_without_vllm, tokenizer):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(BackendUnavailable, match=f"vLLM server {url} does not answer"):
        VLLMServerBackend(url, tokenizer)


def test_an_answer_without_token_ids_is_a_clear_error(trl_client_without_vllm, tokenizer):
    server = FakeVLLMServe(broken=True)
    try:
        backend = VLLMServerBackend(server.url, tokenizer)
        [done] = backend.generate_batch([request([1, 2], max_new_tokens=2)])
    finally:
        server.close()
    assert done.finish_reason == "error" and server.url in done.error


def test_weight_sync_needs_cuda_and_says_so(trl_client_without_vllm, tokenizer, monkeypatch):
    import torch

    from memgym.testing.tiny_lm import build_tiny_model

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    server = FakeVLLMServe()
    try:
        backend = VLLMServerBackend(server.url, tokenizer)
        with pytest.raises(BackendError, match="NCCL and needs a CUDA device"):
            backend.sync_weights(build_tiny_model(tokenizer, seed=0))
    finally:
        server.close()


def test_full_weights_fold_lora_like_peft_merge(tokenizer):
    import torch
    from peft import LoraConfig, get_peft_model

    from memgym.testing.tiny_lm import build_tiny_model

    model = get_peft_model(build_tiny_model(tokenizer, seed=0),
                           LoraConfig(r=2, target_modules="all-linear", init_lora_weights=False))
    sent = dict(full_weights_for_vllm(model))
    merged = dict(model.merge_and_unload().named_parameters())
    assert sent.keys() == merged.keys()
    for name, tensor in sent.items():
        torch.testing.assert_close(tensor, merged[name])
