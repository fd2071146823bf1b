"""OpenAIBackend against a real local HTTP server (stdlib, in a thread): chat and completions
bodies, logprobs and vLLM token ids, retries on 500/429, fatal statuses, a closed port,
malformed responses, a server without logprobs, the concurrency bound, and the capability
probe: fields a server rejects (422) or drops, token-id prompts it refuses, and the training
check. tests/llm/test_openai_server.py runs the backend against a real `transformers serve`."""

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memgym.errors import BackendError, ConfigError
from memgym.eval.runner import FailFast
from memgym.llm import (
    GenerationRequest,
    OpenAIBackend,
    SamplingParams,
    ScriptedBackend,
    require_training_capabilities,
)


class _Server:
    """A tiny OpenAI-compatible server whose misbehaviour each test scripts."""

    def __init__(self):
        self.bodies, self.headers = [], []
        self.fail = []  # statuses to answer before succeeding, consumed in order
        self.mode = "ok"
        self.reject: set[str] = set()  # fields answered with 422 "Unexpected fields" (FastAPI)
        self.drop: set[str] = set()  # fields silently ignored
        self.string_prompts_only = False
        self.delay_s = 0.0
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    status = server.fail.pop(0) if server.fail else 200
                try:
                    time.sleep(server.delay_s)
                    if status == 200:
                        status, payload = server.answer(self.path, body)
                    else:
                        payload = {"error": {"message": "scripted failure"}}
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def answer(self, path, body):
        unexpected = sorted(self.reject & set(body))
        if unexpected:
            return 422, {"detail": f"Unexpected fields in the request: {set(unexpected)}"}
        if self.string_prompts_only and isinstance(body.get("prompt"), list):
            return 400, {"detail": "prompt must be a string."}
        body = {k: v for k, v in body.items() if k not in self.drop}
        if self.mode == "malformed":
            return 200, {"choices": [{"finish_reason": "stop"}]}
        if self.mode == "no_logprobs" and body.get("logprobs") is not None:
            return 400, {"error": {"message": "logprobs is not supported by this model"}}
        as_ids = body.get("return_tokens_as_token_ids", False)
        if path == "/v1/chat/completions":
            reply = "echo: " + body["messages"][-1]["content"]
        elif path == "/v1/completions":
            reply = "ok " + (
                str(len(body["prompt"])) if isinstance(body["prompt"], list) else body["prompt"]
            )
        else:
            return 404, {"error": "no such path"}
        finish = "stop"
        if len(reply) > body["max_tokens"]:
            reply, finish = reply[: body["max_tokens"]], "length"
        tokens = [f"token_id:{ord(ch)}" if as_ids else ch for ch in reply]
        if path == "/v1/chat/completions":
            choice = {"message": {"role": "assistant", "content": reply}, "finish_reason": finish}
            if body.get("logprobs"):
                choice["logprobs"] = {
                    "content": [{"token": t, "logprob": -0.5, "top_logprobs": []} for t in tokens]
                }
        else:
            choice = {"text": reply, "finish_reason": finish}
            if body.get("logprobs") is not None:
                choice["logprobs"] = {"tokens": tokens, "token_logprobs": [-0.25] * len(tokens)}
        payload = {"id": "x", "object": "chat.completion", "choices": [choice]}
        if body.get("return_token_ids"):
            payload["prompt_token_ids"] = [1, 2, 3]
        return 200, payload

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _chat(text="hi", **sampling):
    return GenerationRequest(
        messages=({"role": "user", "content": text},), sampling=SamplingParams(**sampling)
    )


def test_chat_completion_with_logprobs(server):
    backend = OpenAIBackend(server.url, "tiny", api_key="sk-test")
    c = backend.generate_batch([_chat("hello", temperature=0.5, top_k=4, stop=("\n",), seed=1)])[0]
    assert c.text == "echo: hello" and c.finish_reason == "stop"
    assert c.logprobs == [-0.5] * len(c.text) and c.completion_ids == []
    body = server.bodies[0]
    assert body["model"] == "tiny" and body["messages"] == [{"role": "user", "content": "hello"}]
    assert (body["logprobs"], body["top_logprobs"], body["temperature"], body["top_k"]) == (
        True,
        0,
        0.5,
        4,
    )
    assert body["stop"] == ["\n"] and body["seed"] == 1 and body["max_tokens"] == 1024
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_raw_prompt_and_prompt_ids_use_completions(server):
    backend = OpenAIBackend(server.url.removesuffix("/v1"), "tiny")  # "/v1" is added
    text, ids = backend.generate_batch(
        [GenerationRequest(prompt="abc"), GenerationRequest(prompt_ids=(5, 6, 7, 8))]
    )
    assert text.text == "ok abc" and text.logprobs == [-0.25] * 6
    assert ids.text == "ok 4" and ids.prompt_ids == [5, 6, 7, 8]
    by_ids = next(b for b in server.bodies if isinstance(b["prompt"], list))  # sent concurrently
    assert by_ids["prompt"] == [5, 6, 7, 8] and by_ids["logprobs"] == 0


def test_length_finish_and_stop_cut(server):
    backend = OpenAIBackend(server.url, "tiny")
    short, stopped = backend.generate_batch(
        [_chat("hello", max_new_tokens=4), _chat("a:b", stop=(":",))]
    )
    assert (short.text, short.finish_reason) == ("echo", "length")
    assert (stopped.text, stopped.finish_reason) == ("echo", "stop")


def test_vllm_token_ids(server):
    backend = OpenAIBackend(server.url, "tiny", vllm_token_ids=True)
    c = backend.generate_batch([_chat("hé")])[0]
    assert c.completion_ids == [ord(ch) for ch in "echo: hé"] and c.prompt_ids == [1, 2, 3]
    assert server.bodies[0]["return_token_ids"] is True


def test_500_then_200_is_retried(server):
    server.fail = [500, 429]
    backend = OpenAIBackend(server.url, "tiny", backoff_s=0.01)
    c = backend.generate_batch([_chat("again")])[0]
    assert c.text == "echo: again" and len(server.bodies) == 3


def test_persistent_503_becomes_an_error_completion(server):
    server.fail = [503] * 10
    backend = OpenAIBackend(server.url, "tiny", max_retries=2, backoff_s=0.01)
    c = backend.generate_batch([_chat()])[0]
    assert c.finish_reason == "error" and "3 attempts" in c.error and "HTTP 503" in c.error
    assert len(server.bodies) == 3


def test_other_4xx_fails_only_that_request(server):
    server.fail = [422]
    backend = OpenAIBackend(server.url, "tiny", max_concurrency=1)
    bad, good = backend.generate_batch([_chat("first"), _chat("second")])
    assert bad.finish_reason == "error" and "HTTP 422" in bad.error
    assert good.text == "echo: second"


def test_fatal_status_raises(server):
    server.fail = [401]
    with pytest.raises(BackendError, match="HTTP 401.*api_key"):
        OpenAIBackend(server.url, "tiny").generate_batch([_chat()])


def test_down_server_fails_fast_naming_the_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "tiny", max_retries=5, backoff_s=1.0)
    delays = []
    backend._delay = lambda *args: delays.append(args) or 0.0  # a retry would wait this long
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}/v1/chat/completions"):
        backend.generate_batch([_chat()])
    assert delays == []  # refused at once: no retry, no backoff


def test_malformed_response_names_the_field(server):
    server.mode = "malformed"
    with pytest.raises(BackendError, match=r"missing field choices\[0\]\.message"):
        OpenAIBackend(server.url, "tiny").generate_batch([_chat()])


def test_server_without_logprobs_is_asked_without_them(server):
    server.mode = "no_logprobs"
    backend = OpenAIBackend(server.url, "tiny")
    first, second = (backend.generate_batch([_chat(t)])[0] for t in ("a", "b"))
    assert first.text == "echo: a" and second.text == "echo: b" and first.logprobs == []
    assert [("logprobs" in b) for b in server.bodies] == [True, False, False]


def test_concurrency_is_bounded(server):
    server.delay_s = 0.05
    backend = OpenAIBackend(server.url, "tiny", max_concurrency=2)
    out = backend.generate_batch([_chat(str(i)) for i in range(6)])
    assert [c.text for c in out] == [f"echo: {i}" for i in range(6)]
    assert server.max_in_flight == 2


def test_generate_batch_works_inside_a_running_loop(server):
    backend = OpenAIBackend(server.url, "tiny")

    async def notebook_cell():
        direct = await backend.generate(_chat("x"))
        return direct, backend.generate_batch([_chat("y")])[0]

    direct, nested = asyncio.run(notebook_cell())
    assert (direct.text, nested.text) == ("echo: x", "echo: y")


def test_a_client_made_for_one_run_sync_call_is_closed_with_its_loop(server, monkeypatch):
    """A frozen reader's read (agent.act -> backend.generate under run_sync) once left an open
    httpx client behind per read."""
    import httpx

    from memgym._async import run_sync

    closed = []
    real = httpx.AsyncClient.aclose

    async def counting_aclose(self):
        closed.append(self)
        await real(self)

    monkeypatch.setattr(httpx.AsyncClient, "aclose", counting_aclose)
    backend = OpenAIBackend(server.url, "tiny")
    texts = [run_sync(backend.generate(_chat(str(i)))).text for i in range(3)]
    assert texts == ["echo: 0", "echo: 1", "echo: 2"]
    assert len(closed) == 3 and all(c.is_closed for c in closed)


def test_bad_configuration():
    with pytest.raises(ConfigError, match="not an http"):
        OpenAIBackend("localhost:8000", "m")
    with pytest.raises(ConfigError, match="max_concurrency"):
        OpenAIBackend("http://localhost:8000/v1", "m", max_concurrency=0)
    c = OpenAIBackend("http://localhost:8000/v1", "m").generate_batch([GenerationRequest()])[0]
    assert c.finish_reason == "error" and "no messages" in c.error


def test_a_field_the_server_rejects_with_422_is_dropped_and_never_sent_again(server):
    server.reject = {"top_k", "return_token_ids", "return_tokens_as_token_ids"}
    backend = OpenAIBackend(server.url, "tiny", vllm_token_ids=True)
    first, second = (backend.generate_batch([_chat(t, top_k=5)])[0] for t in ("a", "b"))
    assert (first.text, second.text) == ("echo: a", "echo: b")
    assert [sorted(server.reject & set(b)) for b in server.bodies] == [
        ["return_token_ids", "return_tokens_as_token_ids", "top_k"], [], []]
    caps = backend.capabilities
    assert (caps.top_k, caps.token_ids, caps.logprobs) == (False, False, True)
    assert "Unexpected fields" in caps.notes["top_k"] and "detail" not in caps.notes["top_k"]


def test_logprobs_the_server_drops_are_recorded_and_no_longer_asked(server):
    server.drop = {"logprobs", "top_logprobs"}
    backend = OpenAIBackend(server.url, "tiny")
    first, second = (backend.generate_batch([_chat(t)])[0] for t in ("a", "b"))
    assert first.logprobs == [] and second.text == "echo: b"
    assert [("logprobs" in b) for b in server.bodies] == [True, False]
    assert backend.capabilities.logprobs is False
    assert "logprobs" in backend.capabilities.missing()
    assert any("no logprobs" in w for w in backend.capabilities.warnings())


def test_refused_token_id_prompts_fail_clearly_and_are_not_resent(server):
    server.string_prompts_only = True
    backend = OpenAIBackend(server.url, "tiny")
    first, second = backend.generate_batch([GenerationRequest(prompt_ids=(1, 2))] * 2)
    assert first.finish_reason == second.finish_reason == "error"
    assert "takes no token-id prompts" in first.error and "prompt must be a string" in first.error
    assert "takes no token-id prompts" in second.error
    text = backend.generate_batch([GenerationRequest(prompt="abc")])[0]
    assert text.text == "ok abc"
    assert backend.capabilities.prompt_ids is False
    assert len([b for b in server.bodies if isinstance(b["prompt"], list)]) <= 2  # then none


def test_probe_of_a_vllm_like_server_finds_everything_and_asks_for_token_ids(server):
    backend = OpenAIBackend(server.url, "tiny")  # vllm_token_ids=None: ask if offered
    caps = backend.probe()
    assert (caps.logprobs, caps.token_ids, caps.top_k, caps.prompt_ids, caps.seed) == (
        True, True, True, True, True)
    assert caps.missing() == [] and caps.warnings() == []
    c = backend.generate_batch([_chat("x")])[0]
    assert c.completion_ids == [ord(ch) for ch in "echo: x"]
    require_training_capabilities(backend)  # passes


def test_probe_of_a_plain_openai_server_reports_what_is_missing(server):
    server.reject = {"top_k"}
    server.drop = {"logprobs", "top_logprobs", "return_token_ids", "return_tokens_as_token_ids"}
    server.string_prompts_only = True
    caps = OpenAIBackend(server.url, "tiny").probe()
    assert caps.missing() == ["logprobs", "token_ids", "top_k", "prompt_ids"]
    assert caps.seed is True
    assert set(caps.to_dict()) >= {"logprobs", "token_ids", "missing", "warnings", "notes"}


def test_probe_of_a_down_server_raises_naming_the_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}"):
        OpenAIBackend(f"http://127.0.0.1:{port}/v1", "tiny").probe()


def test_training_refuses_a_server_without_token_ids_or_logprobs(server):
    server.drop = {"logprobs", "top_logprobs", "return_token_ids", "return_tokens_as_token_ids"}
    backend = FailFast(OpenAIBackend(server.url, "tiny"), "openai")
    with pytest.raises(ConfigError, match="offers no logprobs and no token_ids.*vllm"):
        require_training_capabilities(backend)  # probes first: nothing was known
    assert backend.capabilities.logprobs is False
    require_training_capabilities(ScriptedBackend(["x"]))  # in-process backends pass
