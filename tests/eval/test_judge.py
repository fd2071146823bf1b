"""The LLM judge (memgym.eval.judge): mem0's pinned prompt, verdict parsing, the judge through a
real OpenAI-compatible HTTP server (stdlib, in a thread, whose verdict is scripted: CORRECT when
the gold answer occurs in the generated one), its failures (unparseable replies, a server that
is down) counted and never raised, and `memgym eval --judge-base-url/--judge-model` on
MemoryBank-Synthetic-v0 and on the LoCoMo fixture (category 5 excluded by default)."""

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memgym.cli import main
from memgym.errors import ConfigError
from memgym.eval import read_jsonl, summarize
from memgym.eval.judge import (
    JUDGE_PROMPT,
    JUDGE_PROMPT_SHA256,
    LLMJudge,
    build_judge,
    judge_messages,
    parse_verdict,
)

ROOT = Path(__file__).parents[2]
AGENTS = ROOT / "agents"
LOCOMO_MINI = ROOT / "tests" / "fixtures" / "locomo_mini.json"
PINNED = "sha256:62395dd312a631dfd9355026a0b69cc936018274c3198b6365b5c2a5c9bca9e0"


class JudgeServer:
    """An OpenAI-compatible chat server that judges like a strict grader, or misbehaves.

    mode "judge": `{"label": "CORRECT"}` when the gold answer occurs in the generated answer
    (case-insensitive), else WRONG, after a sentence of reasoning (mem0's reply format);
    "garbled": a reply with no verdict; "error": HTTP 500 on every request.
    """

    def __init__(self):
        self.mode = "judge"
        self.bodies = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append(body)
                status, payload = server.answer(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def answer(self, body):
        if self.mode == "error":
            return 500, {"error": {"message": "scripted failure"}}
        text = body["messages"][-1]["content"]
        if self.mode == "garbled":
            reply = "I cannot decide."
        else:
            # the last ones: the prompt's own example comes first
            gold = re.findall(r"^Gold answer: (.*)$", text, re.M)[-1].strip().lower()
            generated = re.findall(r"^Generated answer: (.*)$", text, re.M)[-1].lower()
            label = "CORRECT" if gold and gold in generated else "WRONG"
            reply = f'The answer is compared with the gold one.\n{{"label": "{label}"}}'
        choice = {"message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
        return 200, {"id": "x", "object": "chat.completion", "choices": [choice]}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = JudgeServer()
    yield s
    s.close()


def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_the_prompt_is_mem0s_accuracy_prompt_pinned_by_its_hash():
    assert JUDGE_PROMPT_SHA256 == PINNED
    assert "label an answer to a question as ’CORRECT’ or ’WRONG’" in JUDGE_PROMPT
    (message,) = judge_messages("Where did Ana move?", "to Paris", ["Paris"])
    assert message["role"] == "user"
    assert "Question: Where did Ana move?\nGold answer: Paris\nGenerated answer: to Paris\n" \
        in message["content"]
    assert "Gold answer: Paris OR Lyon" in judge_messages("q", "a", ["Paris", "Lyon"])[0]["content"]


@pytest.mark.parametrize("reply, score", [
    ('{"label": "CORRECT"}', 1.0),
    ('It matches the topic.\n```json\n{"label": "WRONG"}\n```', 0.0),
    ("The dates agree. {'label': 'x'} then {\"label\": \"correct\"}", 1.0),
    ("Same date, so CORRECT", 1.0),
    ("wrong", 0.0),
    ('{"label": "MAYBE"}', None),
    ("CORRECT or WRONG, hard to say", None),
    ("I cannot decide.", None),
    ("", None),
    ("INCORRECTLY phrased", None),
])
def test_verdicts_parse_to_one_zero_or_none(reply, score):
    assert parse_verdict(reply) == score


def test_the_judge_asks_a_real_http_server_greedily_and_counts_its_verdicts(server):
    judge = build_judge(server.url, "judge-model")
    assert judge("Where did Ana move?", "She moved to Paris.", ["Paris"]) == 1.0
    assert judge("Where did Ana move?", "Berlin", ["Paris"]) == 0.0
    body = server.bodies[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0.0
    assert body["messages"] == list(judge_messages("Where did Ana move?", "She moved to Paris.",
                                                   ["Paris"]))
    report = judge.report()
    assert report["verdicts"] == {"CORRECT": 1, "WRONG": 1} and report["calls"] == 2
    assert report["failures"] == {"request": 0, "unparseable": 0}
    assert report["prompt_sha256"] == PINNED and report["base_url"] == server.url
    assert report["prompt"] == JUDGE_PROMPT and report["call_latency_s"]["p95"] > 0
    assert repr(judge) == f"LLMJudge(model='judge-model', base_url='{server.url}', prompt={PINNED})"


def test_unparseable_replies_and_server_errors_give_none_and_are_counted(server):
    judge = build_judge(server.url, "m", {"max_retries": 0})
    server.mode = "garbled"
    assert judge("q", "a", ["a"]) is None
    server.mode = "error"
    assert judge("q", "a", ["a"]) is None
    down = build_judge(_closed_port_url(), "m")
    assert down("q", "a", ["a"]) is None  # BackendUnavailable is caught, not raised
    assert judge.report()["failures"] == {"request": 1, "unparseable": 1}
    assert [e["kind"] for e in judge.report()["failure_examples"]] == ["unparseable", "request"]
    assert judge.report()["failure_examples"][0]["detail"] == "I cannot decide."
    assert down.report()["failures"]["request"] == 1
    assert "refused" in down.report()["failure_examples"][0]["detail"].lower() or \
        "connect" in down.report()["failure_examples"][0]["detail"].lower()


def test_a_prompt_without_its_slots_is_refused():
    with pytest.raises(ConfigError, match="gold_answer"):
        LLMJudge(object(), model="m", prompt="Question: {question} {generated_answer}")


def _eval(tmp_path, name, env_args, agent_args, judge_args):
    out = tmp_path / name
    code = main(["eval", *env_args, *agent_args, "--out", str(out), "--no-progress",
                 *judge_args])
    return code, out


SYNTHETIC = ["--env", "MemoryBank-Synthetic-v0", "--env-kwargs", "num_conversations=2"]
ORACLE = ["--agent", str(AGENTS / "bank_oracle.yaml")]


def test_eval_cli_injects_the_judge_and_records_it_in_summary_json(tmp_path, server):
    code, out = _eval(tmp_path, "judged", SYNTHETIC, ORACLE,
                      ["--judge-base-url", server.url, "--judge-model", "judge-model"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    dialogue = summary["metrics"]["dialogue"]
    questions = dialogue["questions"]
    assert questions > 0 and len(server.bodies) == questions
    assert dialogue["overall"]["judge"] == 1.0 and dialogue["judged"] == questions
    assert dialogue["judge_failed"] == 0 and dialogue["accuracy_from"] == "judge"
    for block in dialogue["by_category"].values():
        assert block["judge"] == 1.0 and block["judged"] == block["questions"]
    assert summary["judge"]["verdicts"] == {"CORRECT": questions, "WRONG": 0}
    for where in (summary["run"]["judge"], json.loads((out / "run.json").read_text())["judge"]):
        assert where["model"] == "judge-model" and where["base_url"] == server.url
        assert where["prompt_sha256"] == PINNED and where["prompt"] == JUDGE_PROMPT
    assert "judge" not in summary["run"]["env_kwargs"]
    assert summary["metrics"] == summarize(read_jsonl(out / "predictions.jsonl"))


def test_a_judge_that_is_down_is_counted_and_the_run_completes(tmp_path, capsys):
    code, out = _eval(tmp_path, "down", SYNTHETIC, ORACLE,
                      ["--judge-base-url", _closed_port_url(), "--judge-model", "m"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    dialogue = summary["metrics"]["dialogue"]
    assert dialogue["judged"] == 0 and dialogue["judge_failed"] == dialogue["questions"] > 0
    assert dialogue["judge"] is None and dialogue["accuracy"] is None
    assert dialogue["f1"] == 1.0  # the lexical scores do not depend on the judge
    assert summary["judge"]["failures"]["request"] == dialogue["questions"]
    assert "questions without a verdict" in capsys.readouterr().err


def test_resuming_with_another_judge_is_refused(tmp_path, server):
    judge = ["--judge-base-url", server.url, "--judge-model", "judge-model"]
    assert _eval(tmp_path, "r", SYNTHETIC, ORACLE, judge)[0] == 0
    code, _ = _eval(tmp_path, "r", SYNTHETIC, ORACLE,
                    ["--resume", "--judge-base-url", server.url, "--judge-model", "other"])
    assert code == 2


@pytest.mark.parametrize("flags, message", [
    (["--judge-model", "m"], "both --judge-base-url"),
    (["--judge-kwargs", "timeout_s=3"], "--judge-kwargs needs"),
])
def test_judge_flags_need_each_other(tmp_path, capsys, flags, message):
    assert _eval(tmp_path, "x", SYNTHETIC, ORACLE, flags)[0] == 2
    assert message in capsys.readouterr().err


def test_a_judge_on_an_env_without_questions_is_refused(tmp_path, capsys, server):
    code, _ = _eval(tmp_path, "x", ["--env", "MemAgent-Synthetic-v0"],
                    ["--agent", str(AGENTS / "oracle.yaml")],
                    ["--judge-base-url", server.url, "--judge-model", "m"])
    assert code == 2 and "takes no judge" in capsys.readouterr().err


RMM_SCRIPTED = ["--agent", str(AGENTS / "rmm.yaml"), "--agent-overrides", "encoder=hash",
                "--backend", "scripted", "--model", "memgym.agents.rmm:scripted_rmm_llm"]


@pytest.mark.parametrize("adversarial", [False, True])
def test_locomo_fixture_per_category_scores_with_the_judge(tmp_path, server, capsys,
                                                           adversarial):
    env = ["--env", "RMM-LoCoMo-v0", "--env-kwargs", f"data_path={LOCOMO_MINI}"]
    if adversarial:
        env.append("include_adversarial=true")
    code, out = _eval(tmp_path, "locomo", env, RMM_SCRIPTED,
                      ["--judge-base-url", server.url, "--judge-model", "judge-model"])
    assert code == 0
    dialogue = json.loads((out / "summary.json").read_text())["metrics"]["dialogue"]
    categories = {"multi-hop", "temporal", "open-domain", "single-hop"}
    # the fixture has 11 questions, 2 of them category 5 (adversarial), left out by default
    assert set(dialogue["by_category"]) == categories | ({"adversarial"} if adversarial else set())
    assert dialogue["overall"]["questions"] == (11 if adversarial else 9)
    assert dialogue["judged"] == len(server.bodies) == dialogue["questions"]
    for block in (*dialogue["by_category"].values(), dialogue["overall"]):
        for name in ("f1", "bleu1", "em", "judge"):
            assert 0.0 <= block[name] <= 1.0, name
    table = capsys.readouterr().err
    assert "overall" in table and "BLEU-1" in table
    assert ("adversarial" in table) == adversarial


def test_longmemeval_fixture_accuracy_per_type_is_the_judges_with_recall(tmp_path, server):
    env = ["--env", "RMM-LongMemEval-v0", "--env-kwargs",
           f"data_path={ROOT / 'tests' / 'fixtures' / 'longmemeval_mini.json'}"]
    code, out = _eval(tmp_path, "lme", env, RMM_SCRIPTED,
                      ["--judge-base-url", server.url, "--judge-model", "judge-model"])
    assert code == 0
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    dialogue = metrics["dialogue"]
    assert set(dialogue["by_category"]) == {"knowledge-update", "temporal-reasoning",
                                            "single-session-user"}
    for block in dialogue["by_category"].values():
        assert block["accuracy_from"] == "judge" and block["accuracy"] == block["judge"]
    assert dialogue["recall_at_k"]["k"] == 20
    assert 0.0 <= dialogue["recall_at_k"]["session"] <= 1.0
    # latency per episode and per LLM call, bank size and the operations' spread per episode
    efficiency = metrics["efficiency"]
    assert efficiency["episode_latency_s"]["p95"] >= efficiency["episode_latency_s"]["p50"] > 0
    assert efficiency["call_latency_s"]["p50"] is not None
    assert dialogue["bank_size"]["p50"] is not None
    assert all({"total", "per_episode", "p50", "p95", "max"} <= set(v)
               for v in dialogue["op_counts"].values()) and dialogue["op_counts"]
