"""The evaluation runner: complete files, summary.json == summarize(predictions.jsonl), resume
after a run stopped or killed mid-write, a backend failing on one episode (incomplete, rerun by
resume), fail-fast on a dead backend and on a real HTTP server stopped mid-run, seeds, the
run-settings check on resume, and evaluate() inside a running event loop (Jupyter)."""

import asyncio
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "agents"))  # the shared hand-made tasks
from agent_helpers import failing_on, make_env, make_tasks, reader

from memgym.agents import make_memagent
from memgym.agents.episode import derive_seed
from memgym.errors import BackendError, ConfigError
from memgym.eval import FailFast, evaluate, evaluate_async, read_jsonl, summarize
from memgym.llm import GenerationRequest, OpenAIBackend, ScriptedBackend

ENV = "handmade-v0"


def run(out, backend, **kwargs):
    agent = make_memagent(kwargs.pop("agent_backend", backend))
    kwargs.setdefault("progress", False)
    return evaluate(ENV, agent, out_dir=out, make_env=make_env, recipe={"kind": "memagent"},
                    **kwargs)


def test_files_are_complete_and_the_summary_is_recomputable(tmp_path):
    summary = run(tmp_path, ScriptedBackend(reader), avg_k=3, seed=7, concurrency=4)
    rows = read_jsonl(tmp_path / "predictions.jsonl")
    traces = read_jsonl(tmp_path / "traces.jsonl")
    assert sorted((r["task_id"], r["attempt"]) for r in rows) == \
        [(t, a) for t in range(2) for a in range(3)]
    assert sorted((r["task_id"], r["attempt"]) for r in traces) == \
        sorted((r["task_id"], r["attempt"]) for r in rows)
    row = next(r for r in rows if r["task_id"] == 0)
    assert row["prediction"] == "Paris" and row["golds"] == ["Paris"] and row["reward"] == 1.0
    assert row["reward_components"] == {"accuracy": 1.0, "format": 1.0, "memory_budget": 1.0}
    assert row["question"] == "Where does the cat Luna live?" and row["seed"] == 7
    assert row["sampling_seed"] == derive_seed(7, 0, row["attempt"])
    assert row["metadata"] == {"num_docs": 10} and row["task_type"] == "single"
    assert row["num_chunks"] == len(row["turns"]) - 1 == 4
    turn = row["turns"][0]
    assert turn["component"] == "memory_update" and turn["finish_reason"] == "stop"
    assert turn["prompt_tokens"] > 100 and turn["completion_tokens"] > 0
    assert row["tokens"]["llm_calls"] == 5 and row["tokens"]["peak_context"] > 0
    trace = next(t for t in traces if (t["task_id"], t["attempt"]) == (0, row["attempt"]))
    assert trace["memory"][0] == "No previous memory"
    assert trace["memory"][-1] == "The cat Luna lives in Paris with her owner."
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["metrics"] == summarize(rows)
    assert saved["metrics"]["metrics"]["accuracy"]["mean"] == 1.0
    run_info = saved["run"]
    assert run_info["env_id"] == ENV and run_info["seed"] == 7 and run_info["avg_k"] == 3
    assert run_info["recipe"] == {"kind": "memagent"} and "gymnasium" in run_info["versions"]
    assert "memgym" in run_info["versions"]
    assert saved["metrics"]["dataset_hash"].startswith("sha256:")


def test_resume_skips_finished_rows_and_finishes_the_rest(tmp_path):
    run(tmp_path, ScriptedBackend(reader), episodes=1, avg_k=2)
    assert len(read_jsonl(tmp_path / "predictions.jsonl")) == 2
    with pytest.raises(ConfigError, match="--resume"):
        run(tmp_path, ScriptedBackend(reader), avg_k=2)
    # simulate a run killed while appending: a partial last line in both files
    for name in ("predictions.jsonl", "traces.jsonl"):
        with open(tmp_path / name, "a") as f:
            f.write('{"task_id": 1, "attempt": 0, "rew')
    backend = ScriptedBackend(reader)
    summary = run(tmp_path, backend, avg_k=2, resume=True)
    rows = read_jsonl(tmp_path / "predictions.jsonl")
    assert sorted((r["task_id"], r["attempt"]) for r in rows) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert len(read_jsonl(tmp_path / "traces.jsonl")) == 4
    questions = {r.messages[-1]["content"].split("<problem> \n")[1].split("\n")[0]
                 for r in backend.requests}
    assert questions == {"Who owns the red car?"}  # only task 1 was run again
    assert summary["run"]["episodes_run_now"] == 2
    assert summary["metrics"] == summarize(rows)
    with pytest.raises(ConfigError, match="seed"):
        run(tmp_path, ScriptedBackend(reader), avg_k=2, seed=1, resume=True)


def test_an_episode_with_failed_calls_is_incomplete_and_resume_reruns_it(tmp_path):
    for raise_it in (True, False):
        out = tmp_path / str(raise_it)
        backend = FailFast(ScriptedBackend(failing_on("red car", raise_it=raise_it)))
        summary = run(out, backend, fail_fast=backend, concurrency=1)
        rows = {r["task_id"]: r for r in read_jsonl(out / "predictions.jsonl")}
        assert rows[0]["reward"] == 1.0 and rows[0]["failed_calls"] == 0
        assert rows[1]["reward"] == 0.0 and rows[1]["failed_calls"] == len(rows[1]["turns"])
        assert all(t["error"] for t in rows[1]["turns"])
        metrics = summary["metrics"]
        assert metrics["errors"]["episodes_with_failed_calls"] == 1
        assert metrics["incomplete_episodes"] == 1 and metrics["episodes"] == 1
        assert metrics["metrics"]["accuracy"]["n"] == 1  # the failed episode is not a result
        # the backend is back: --resume runs the incomplete episode again, and only that one
        again = ScriptedBackend(reader)
        summary = run(out, again, resume=True)
        assert summary["run"]["episodes_run_now"] == 1
        assert all("red car" in r.messages[-1]["content"] for r in again.requests)
        assert summary["metrics"]["incomplete_episodes"] == 0
        assert summary["metrics"]["metrics"]["accuracy"]["mean"] == 1.0
        rows = read_jsonl(out / "predictions.jsonl")
        assert sorted(r["task_id"] for r in rows) == [0, 1]  # the failed row was replaced
        assert len(read_jsonl(out / "traces.jsonl")) == 2


def test_a_dead_backend_stops_the_run_with_its_error(tmp_path):
    def down(request):
        raise BackendError("cannot connect to http://127.0.0.1:9/v1 (connection refused)")

    backend = FailFast(ScriptedBackend(down), "openai at http://127.0.0.1:9/v1")
    with pytest.raises(BackendError, match=r"first LLM call .*http://127.0.0.1:9/v1"):
        run(tmp_path, backend, fail_fast=backend)
    assert read_jsonl(tmp_path / "predictions.jsonl") == []


def test_a_backend_dying_mid_run_trips_after_consecutive_failures(tmp_path):
    calls = []

    def dies(request):
        calls.append(1)
        if len(calls) > 5:
            raise BackendError("connection refused")
        return reader(request)

    backend = FailFast(ScriptedBackend(dies), max_consecutive_failures=3)
    tasks = make_tasks() * 3
    with pytest.raises(BackendError, match="3 LLM calls in a row failed"):
        evaluate(ENV, make_memagent(backend), out_dir=tmp_path, fail_fast=backend,
                 concurrency=1, progress=False,
                 make_env=lambda: make_env().__class__(tasks, chunk_tokens=120))
    assert [r["task_id"] for r in read_jsonl(tmp_path / "predictions.jsonl")] == [0]


def test_episode_limit_and_validation(tmp_path):
    summary = run(tmp_path / "a", ScriptedBackend(reader), episodes=1)
    assert summary["metrics"]["tasks"] == 1
    summary = run(tmp_path / "b", ScriptedBackend(reader), episodes=50)
    assert summary["metrics"]["tasks"] == 2 and summary["run"]["episodes"] == 2
    with pytest.raises(ConfigError, match="avg-k"):
        run(tmp_path / "c", ScriptedBackend(reader), avg_k=0)


class _ReaderServer:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 answering with `reader`, which stops
    listening (connections are then refused) after `stop_after` answers."""

    def __init__(self, stop_after=None):
        self.answered, self.stop_after = 0, stop_after
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request = GenerationRequest(messages=tuple(body["messages"]))
                choice = {"message": {"role": "assistant", "content": reader(request)},
                          "finish_reason": "stop"}
                data = json.dumps({"choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                server.answered += 1
                if server.stop_after is not None and server.answered >= server.stop_after:
                    threading.Thread(target=server.close).start()  # the server dies

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()
        self.closed = threading.Event()

    def close(self):
        if not self.closed.is_set():
            self.closed.set()
            self.httpd.shutdown()
            self.httpd.server_close()


def test_a_server_stopped_mid_run_stops_the_run_and_resume_finishes_it(tmp_path):
    tasks = make_tasks() * 2  # 4 tasks; task 0 takes 5 calls (4 chunks + the answer)
    def envs():
        return make_env().__class__(tasks, chunk_tokens=120)

    server = _ReaderServer(stop_after=5)
    backend = FailFast(OpenAIBackend(server.url, "reader", backoff_s=0.01, max_retries=2),
                       f"openai at {server.url}")
    try:
        with pytest.raises(BackendError, match="stopped answering mid-run.*cannot connect"):
            evaluate(ENV, make_memagent(backend), out_dir=tmp_path, fail_fast=backend,
                     concurrency=1, progress=False, make_env=envs)
    finally:
        backend.close()
        server.close()
    rows = read_jsonl(tmp_path / "predictions.jsonl")
    assert [(r["task_id"], r["failed_calls"], r["reward"]) for r in rows] == [(0, 0, 1.0)]
    restarted = _ReaderServer()
    backend = FailFast(OpenAIBackend(restarted.url, "reader"))
    try:
        summary = evaluate(ENV, make_memagent(backend), out_dir=tmp_path, fail_fast=backend,
                           concurrency=2, progress=False, make_env=envs, resume=True)
    finally:
        backend.close()
        restarted.close()
    assert summary["run"]["episodes_run_now"] == 3
    assert summary["metrics"]["episodes"] == 4 and summary["metrics"]["incomplete_episodes"] == 0
    assert summary["metrics"]["metrics"]["accuracy"]["mean"] == 1.0


def test_evaluate_works_inside_a_running_event_loop(tmp_path):
    async def notebook_cell():  # Jupyter runs cells inside an event loop
        return run(tmp_path / "sync", ScriptedBackend(reader), episodes=1)

    summary = asyncio.run(notebook_cell())
    assert summary["metrics"]["metrics"]["accuracy"]["mean"] == 1.0
    direct = asyncio.run(evaluate_async(ENV, make_memagent(ScriptedBackend(reader)),
                                        out_dir=tmp_path / "async", make_env=make_env,
                                        episodes=1, progress=False))
    assert direct["metrics"]["metrics"] == summary["metrics"]["metrics"]
