"""OpenAIBackend and `memgym eval --backend openai` against a real `transformers serve`.

The module starts one server on 127.0.0.1 (a free port) with memgym's embedded model (a tiny
Qwen2 with a chat template; start-up takes about 10 s on CPU) and stops it at the end. It
covers what that server offers (the probe: no logprobs, no token ids, no top_k, no token-id
prompts), the chat and completions endpoints through the backend and through `memgym eval`
end to end (the start-up warning, `backend_capabilities` in summary.json, estimated token
counts), concurrent requests, and the server stopped mid-run (the run stops with exit 2, and
`--resume` against the restarted server runs the rest). A server that does offer logprobs and
token ids is covered by the scripted server of tests/llm/test_openai.py. Skipped only when
transformers' serving extra (`pip install "memgym[serve]"`) is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from memgym.errors import ConfigError
from memgym.eval.records import read_jsonl
from memgym.llm import (
    GenerationRequest,
    OpenAIBackend,
    SamplingParams,
    require_training_capabilities,
)
from memgym.models import resolve_model_path


def _missing_serving() -> bool:
    """Whether `transformers serve` or its serving extra (fastapi, uvicorn, openai) is missing."""
    try:
        cli = importlib.util.find_spec("transformers.cli.transformers")  # transformers >= 5
    except ImportError:
        cli = None
    return cli is None or any(importlib.util.find_spec(m) is None
                              for m in ("fastapi", "uvicorn", "openai"))


pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    _missing_serving(),
    reason='transformers serve needs the serving extra: pip install "memgym[serve]"')]

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "agents"
START_TIMEOUT_S = 120.0


class TransformersServe:
    """A `transformers serve` process of the embedded model in its own process group."""

    def __init__(self, log_path: Path):
        self.model = str(resolve_model_path("embedded"))
        self.log_path = log_path
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None
        self.start_s = 0.0

    def start(self) -> None:
        """Start the server and wait until /v1/models answers (fails after START_TIMEOUT_S)."""
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1"}
        cmd = [sys.executable, "-c", "from transformers.cli.transformers import main; main()",
               "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
               "--device", "cpu", "--log-level", "info"]
        start = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        while time.perf_counter() - start < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode}: "
                                   + self.log_path.read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=1) as response:
                    if response.status == 200:
                        self.start_s = time.perf_counter() - start
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer {self.url}/models within "
                           f"{START_TIMEOUT_S:.0f} s: "
                           + self.log_path.read_text(errors="replace")[-2000:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the whole process group and wait (SIGKILL after 15 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = TransformersServe(tmp_path_factory.mktemp("serve") / "server.log")
    server.start()
    print(f"transformers serve started in {server.start_s:.1f} s")
    yield server
    server.stop()


def _eval(out: Path, serve: TransformersServe, *extra: str) -> list[str]:
    return ["eval", "--env", "MemAgent-Synthetic-v0",
            "--env-kwargs", "num_tasks=4", f"tokenizer={serve.model}",
            "--agent", str(AGENTS / "memagent.yaml"), "--backend", "openai",
            "--base-url", serve.url, "--model", serve.model, "--out", str(out),
            "--no-progress", *extra]


_SHORT = ("memory_max_new_tokens=8", "answer_max_new_tokens=8")


def test_probe_finds_what_transformers_serve_offers(serve):
    caps = OpenAIBackend(serve.url, serve.model).probe()
    assert (caps.logprobs, caps.token_ids, caps.top_k, caps.prompt_ids) == (
        False, False, False, False)
    assert caps.seed is True
    assert "dropped" in caps.notes["logprobs"]
    assert "422" in caps.notes["top_k"] and "422" in caps.notes["token_ids"]
    assert "prompt must be a string" in caps.notes["prompt_ids"]


def test_chat_and_completions_answer_and_rejected_fields_are_dropped(serve):
    backend = OpenAIBackend(serve.url, serve.model)  # not probed: it learns from the answers
    sampling = SamplingParams(max_new_tokens=6, temperature=0.0, top_k=5, seed=1)
    chat = GenerationRequest(messages=({"role": "user", "content": "What is 2+2?"},),
                             sampling=sampling)
    text = GenerationRequest(prompt="The answer is", sampling=sampling)
    first, second = backend.generate_batch([chat, text])
    assert first.error is None and second.error is None
    assert first.finish_reason in ("stop", "length") and isinstance(first.text, str)
    assert first.completion_ids == [] and first.logprobs == []
    assert backend.capabilities.top_k is False and backend.capabilities.logprobs is False
    by_ids = backend.generate_batch([GenerationRequest(prompt_ids=(1, 2, 3),
                                                       sampling=sampling)])[0]
    assert by_ids.finish_reason == "error" and "takes no token-id prompts" in by_ids.error
    again = backend.generate_batch([chat])[0]  # greedy: the same text without the dropped fields
    assert again.text == first.text


def test_concurrent_requests_all_complete(serve):
    backend = OpenAIBackend(serve.url, serve.model, max_concurrency=8)
    requests = [GenerationRequest(messages=({"role": "user", "content": f"Count to {i}."},),
                                  sampling=SamplingParams(max_new_tokens=4, temperature=0.0))
                for i in range(8)]
    out = backend.generate_batch(requests)
    assert [c.error for c in out] == [None] * 8
    assert all(c.finish_reason in ("stop", "length") for c in out)


def test_training_refuses_transformers_serve(serve):
    with pytest.raises(ConfigError, match="offers no logprobs and no token_ids"):
        require_training_capabilities(OpenAIBackend(serve.url, serve.model))


@pytest.mark.parametrize("chat", ["true", "false"])
def test_memgym_eval_end_to_end_warns_and_records_capabilities(serve, tmp_path, capsys, chat):
    from memgym.cli import main

    out = tmp_path / f"chat_{chat}"
    code = main(_eval(out, serve, "--episodes", "4", "--concurrency", "4",
                      "--agent-overrides", *_SHORT, f"chat={chat}", "top_k=5"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning" in err and "no logprobs" in err and "no token_ids" in err
    summary = json.loads((out / "summary.json").read_text())
    caps = summary["backend_capabilities"]
    assert caps["missing"] == ["logprobs", "token_ids", "top_k", "prompt_ids"]
    assert summary["metrics"]["episodes"] == 4 and summary["metrics"]["incomplete_episodes"] == 0
    rows = read_jsonl(out / "predictions.jsonl")
    assert len(rows) == 4 and all(r["tokens"]["estimated"] for r in rows)
    assert all(t["error"] is None for r in rows for t in r["turns"])


def test_server_stopped_mid_run_stops_the_run_and_resume_finishes_it(serve, tmp_path):
    # Last in the module: it kills the server and restarts it on the same port.
    out = tmp_path / "killed"
    args = _eval(out, serve, "--episodes", "8", "--concurrency", "1",
                 "--agent-overrides", "memory_max_new_tokens=16", "answer_max_new_tokens=8")
    args[args.index("num_tasks=4")] = "num_tasks=8"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.Popen([sys.executable, "-m", "memgym.cli", *args], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.perf_counter() + 60
        while len(read_jsonl(out / "predictions.jsonl")) < 1 and run.poll() is None:
            assert time.perf_counter() < deadline, "the run made no progress"
            time.sleep(0.02)
        serve.stop(signal.SIGKILL)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
        serve.start()  # the same port, for --resume (and any later test)
    assert run.returncode == 2, err
    assert "stopped answering mid-run" in err and "cannot connect" in err
    done = read_jsonl(out / "predictions.jsonl")
    assert 1 <= len(done) < 8 and not (out / "summary.json").exists()
    from memgym.cli import main

    assert main([*args, "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["episodes"] == 8 and summary["metrics"]["incomplete_episodes"] == 0
    assert summary["run"]["episodes_run_now"] == 8 - len(done)
