"""Sharded evaluation: --shard I/N rows are disjoint, deterministic and cover the run; two
shards merged through `memgym eval merge` equal one unsharded run (metrics byte for byte, once
the wall-clock latencies are set aside); merge refuses shards that disagree (naming file and
field), a missing or repeated shard, an unfinished shard; several --base-url spread calls over
servers and a dead one stops the run naming it."""

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "agents"))  # the shared hand-made tasks
from agent_helpers import make_env, reader

from memgym.agents import make_memagent
from memgym.cli import main
from memgym.errors import BackendError, ConfigError, DataError
from memgym.eval import evaluate, merge_shards, parse_shard, read_jsonl, summarize
from memgym.eval.shards import in_shard
from memgym.llm import GenerationRequest, OpenAIBackend, ScriptedBackend
from memgym.llm.balance import LoadBalancedBackend

AGENTS = Path(__file__).parents[2] / "agents"
LATENCY = ("episode_latency_s", "call_latency_s")


def run(out, **kwargs):
    agent = make_memagent(ScriptedBackend(reader))
    return evaluate("handmade-v0", agent, out_dir=out, make_env=make_env,
                    recipe={"kind": "memagent"}, progress=False, **kwargs)


def without_latency(metrics):
    """The metrics without the wall-clock latencies (they differ between any two runs)."""
    metrics = json.loads(json.dumps(metrics))
    for key in LATENCY:
        metrics["efficiency"].pop(key)
    return json.dumps(metrics, sort_keys=True)


def without_timing(rows):
    out = []
    for row in rows:
        row = {**row, "latency_s": None, "turns": [{**t, "latency_s": None} for t in row["turns"]]}
        out.append(json.dumps(row, sort_keys=True))
    return sorted(out)


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_are_disjoint_and_cover_every_row(count):
    rows = [(t, a) for t in range(7) for a in range(3)]
    shards = [{r for r in rows if in_shard(*r, 3, (i, count))} for i in range(count)]
    assert set().union(*shards) == set(rows)
    assert sum(len(s) for s in shards) == len(rows)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "0/0", "1/2/3"])
def test_a_bad_shard_is_a_clear_error(text):
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)
    assert parse_shard(" 1 / 4 ") == (1, 4)


def test_two_shards_merged_equal_one_unsharded_run(tmp_path):
    whole = run(tmp_path / "whole", avg_k=3, seed=5, concurrency=3)
    for i in range(2):
        part = run(tmp_path / f"s{i}", avg_k=3, seed=5, concurrency=2, shard=f"{i}/2")
        rows = read_jsonl(tmp_path / f"s{i}" / "predictions.jsonl")
        assert {(r["task_id"], r["attempt"]) for r in rows} == \
            {(t, a) for t in range(2) for a in range(3) if (3 * t + a) % 2 == i}
        assert part["run"]["shard"] == f"{i}/2"
    merged = merge_shards([tmp_path / "s1", tmp_path / "s0"], tmp_path / "merged")
    rows = read_jsonl(tmp_path / "merged" / "predictions.jsonl")
    assert without_timing(rows) == without_timing(read_jsonl(tmp_path / "whole" /
                                                             "predictions.jsonl"))
    assert without_latency(merged["metrics"]) == without_latency(whole["metrics"])
    saved = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert saved["metrics"] == summarize(rows) and "shard" not in saved["run"]
    assert [s["shard"] for s in saved["run"]["shards"]] == ["1/2", "0/2"]
    assert len(read_jsonl(tmp_path / "merged" / "traces.jsonl")) == 6
    # the same rows in another order give the same bytes: summarize does not depend on order
    assert json.dumps(summarize(rows[::-1])) == json.dumps(summarize(rows))


def test_merge_refuses_shards_that_disagree_naming_file_and_field(tmp_path):
    run(tmp_path / "s0", seed=1, shard="0/2")
    run(tmp_path / "s1", seed=2, shard="1/2")
    with pytest.raises(ConfigError, match=r"s1/run\.json: seed=2.*seed=1"):
        merge_shards([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    run(tmp_path / "t1", seed=1, shard="1/2")
    run_json = json.loads((tmp_path / "t1" / "run.json").read_text())
    run_json["versions"]["memgym"] = "0.0.0-other"
    (tmp_path / "t1" / "run.json").write_text(json.dumps(run_json))
    with pytest.raises(ConfigError, match="memgym version"):
        merge_shards([tmp_path / "s0", tmp_path / "t1"], tmp_path / "m")
    with pytest.raises(ConfigError, match="shards 1/2 are missing"):
        merge_shards([tmp_path / "s0"], tmp_path / "m")
    with pytest.raises(ConfigError, match="given twice"):
        merge_shards([tmp_path / "s0", tmp_path / "s0"], tmp_path / "m")
    run(tmp_path / "plain", seed=1)
    with pytest.raises(ConfigError, match="not sharded"):
        merge_shards([tmp_path / "plain"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_merge_refuses_an_unfinished_shard_and_a_foreign_row(tmp_path):
    run(tmp_path / "s0", avg_k=2, shard="0/2")
    run(tmp_path / "s1", avg_k=2, shard="1/2")
    path = tmp_path / "s1" / "predictions.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[1:]))
    with pytest.raises(DataError, match=r"s1/predictions\.jsonl: 1 of the shard's 2 rows are "
                                        r"missing.*--resume"):
        merge_shards([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    path.write_text("".join(lines) + (tmp_path / "s0" / "predictions.jsonl").read_text())
    with pytest.raises(DataError, match="does not belong to shard 1/2"):
        merge_shards([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")


def test_resume_of_a_shard_needs_the_same_shard(tmp_path):
    run(tmp_path / "s0", shard="0/2")
    with pytest.raises(ConfigError, match="shard='0/2'.*shard='1/2'"):
        run(tmp_path / "s0", shard="1/2", resume=True)


POLICY = '''
def gold_reader(request):
    text = request.messages[-1]["content"]
    if "Updated memory:" in text:
        return "notes on " + str(text.count("Document")) + " documents"
    return "The answer is \\\\boxed{beer and whisky}."
'''


def test_the_cli_shards_and_merges(tmp_path, monkeypatch, capsys):
    (tmp_path / "shard_policy.py").write_text(POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))

    def args(out, *extra):
        return ["eval", "--env", "MemAgent-HotpotQA-v0", "--agent", str(AGENTS / "memagent.yaml"),
                "--env-kwargs", "chunk_tokens=3000", "--backend", "scripted", "--model",
                "shard_policy:gold_reader", "--episodes", "3", "--avg-k", "2", "--out",
                str(out), "--no-progress", *extra]

    assert main(args(tmp_path / "whole")) == 0
    assert main(args(tmp_path / "a", "--shard", "0/2")) == 0
    assert main(args(tmp_path / "b", "--shard", "1/2")) == 0
    assert main(["eval", "merge", str(tmp_path / "a"), str(tmp_path / "b"),
                 "--out", str(tmp_path / "m")]) == 0
    assert "merged 2 shards" in capsys.readouterr().err
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())["metrics"]
    merged = json.loads((tmp_path / "m" / "summary.json").read_text())["metrics"]
    assert without_latency(merged) == without_latency(whole)
    assert main(args(tmp_path / "c", "--shard", "2/2")) == 2
    assert "--shard 2/2" in capsys.readouterr().err and not (tmp_path / "c").exists()
    assert main(["eval", "--out", str(tmp_path / "x")]) == 2
    assert "--env ID and --agent RECIPE" in capsys.readouterr().err


class _Server:
    """A tiny OpenAI-compatible /v1/completions server counting the requests it answers."""

    def __init__(self):
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.count += 1
                body = json.dumps({"choices": [{"text": "ok", "finish_reason": "stop",
                                                "logprobs": None}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_several_servers_share_the_calls_and_a_dead_one_is_named():
    servers = [_Server(), _Server()]
    try:
        backend = LoadBalancedBackend([OpenAIBackend(s.url, "m", logprobs=False,
                                                     vllm_token_ids=False) for s in servers])
        done = backend.generate_batch([GenerationRequest(prompt=f"p{i}") for i in range(10)])
        assert [c.text for c in done] == ["ok"] * 10
        assert [s.count for s in servers] == [5, 5]
        assert [s["calls"] for s in backend.stats()] == [5, 5]
    finally:
        for s in servers:
            s.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    alive = _Server()
    try:
        backend = LoadBalancedBackend([OpenAIBackend(alive.url, "m", logprobs=False,
                                                     vllm_token_ids=False),
                                       OpenAIBackend(dead, "m", logprobs=False,
                                                     vllm_token_ids=False)])
        with pytest.raises(BackendError, match=rf"server 2 of 2 \({dead}\) is unavailable"):
            backend.generate_batch([GenerationRequest(prompt="a"), GenerationRequest(prompt="b")])
    finally:
        alive.close()
