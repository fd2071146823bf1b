"""`memgym eval` through memgym.cli.main: the scripted backend, an LLM-free recipe, the tiny
transformers model saved to disk and the embedded one by name, resume, an incomplete run's
headline and exit status, a user's env module from the current directory, and clear errors for
a dead server, missing flags, misspelt env kwargs and model names."""

import json
import socket
import sys
from pathlib import Path

import pytest

from memgym.cli import main
from memgym.eval import read_jsonl, summarize

AGENTS = Path(__file__).parents[2] / "agents"
FILES = ("predictions.jsonl", "traces.jsonl", "summary.json", "run.json")

POLICY = '''
def gold_reader(request):
    """Answers every bundled HotpotQA question with 'beer and whisky' (right for task 0 only)."""
    text = request.messages[-1]["content"]
    if "Updated memory:" in text:
        return "notes on " + str(text.count("Document")) + " documents"
    return "The answer is \\\\boxed{beer and whisky}."
'''


@pytest.fixture
def policy_module(tmp_path, monkeypatch):
    (tmp_path / "cli_policy.py").write_text(POLICY)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "cli_policy:gold_reader"


def eval_args(out, *extra):
    return ["eval", "--env", "MemAgent-HotpotQA-v0", "--out", str(out), "--no-progress", *extra]


def test_scripted_backend_run_writes_every_file_and_resumes(tmp_path, policy_module):
    out = tmp_path / "run"
    args = eval_args(out, "--agent", str(AGENTS / "memagent.yaml"), "--env-kwargs",
                     "chunk_tokens=3000", "--backend", "scripted", "--model", policy_module,
                     "--episodes", "2", "--avg-k", "2", "--seed", "3", "--concurrency", "2")
    assert main(args) == 0
    assert all((out / name).is_file() for name in FILES)
    rows = read_jsonl(out / "predictions.jsonl")
    assert len(rows) == 4 and {r["task_id"] for r in rows} == {0, 1}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"] == summarize(rows)
    assert summary["metrics"]["metrics"]["accuracy"]["mean"] == 0.5
    # the env extracts what the recipe's prompt asks for, and the run records it
    assert summary["run"]["env_kwargs"] == {"chunk_tokens": 3000, "answer_format": "boxed"}
    assert summary["run"]["recipe"]["kind"] == "memagent"
    assert "kind: memagent" in summary["run"]["agent_recipe_text"]
    assert len(read_jsonl(out / "traces.jsonl")) == 4
    assert main(args) == 2  # an existing run needs --resume
    resumed = eval_args(out, "--agent", str(AGENTS / "memagent.yaml"), "--env-kwargs",
                        "chunk_tokens=3000", "--backend", "scripted", "--model", policy_module,
                        "--episodes", "3", "--avg-k", "2", "--seed", "3", "--resume")
    assert main(resumed) == 0
    rows = read_jsonl(out / "predictions.jsonl")
    assert sorted((r["task_id"], r["attempt"]) for r in rows) == \
        [(t, a) for t in range(3) for a in range(2)]


def test_a_recipe_without_llm_needs_no_backend(tmp_path):
    out = tmp_path / "oracle"
    args = ["eval", "--env", "MemAgent-Synthetic-v0", "--env-kwargs", "num_tasks=5",
            "--agent", str(AGENTS / "scripted_oracle.yaml"), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["episodes"] == 5
    assert summary["metrics"]["metrics"]["accuracy"]["mean"] == 1.0


def test_tiny_transformers_model_from_disk(tmp_path):
    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

    model_dir = tmp_path / "tiny"
    tokenizer = build_tiny_tokenizer(model_dir)
    build_tiny_model(tokenizer).save_pretrained(model_dir)
    out = tmp_path / "hf"
    args = eval_args(out, "--agent", str(AGENTS / "memagent.yaml"),
                     "--env-kwargs", "num_docs=10", "chunk_tokens=1024", "memory_tokens=64",
                     "--agent-overrides", "temperature=0", "memory_max_new_tokens=4",
                     "answer_max_new_tokens=4",
                     "--backend", "transformers", "--model", str(model_dir), "--episodes", "1")
    assert main(args) == 0
    (row,) = read_jsonl(out / "predictions.jsonl")
    assert row["turns"] and all(t["finish_reason"] in ("stop", "length") for t in row["turns"])
    assert all(0 < t["completion_tokens"] <= 4 for t in row["turns"])
    assert not row["tokens"]["estimated"]  # real token ids from the model
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["env_kwargs"]["tokenizer"] == str(model_dir)  # chunks in model tokens
    assert summary["metrics"] == summarize(read_jsonl(out / "predictions.jsonl"))


def test_a_server_that_is_down_fails_fast_naming_the_url(tmp_path, capsys):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    code = main(eval_args(tmp_path / "down", "--agent", str(AGENTS / "rag_bm25.yaml"),
                          "--backend", "openai", "--base-url", url, "--model", "qwen",
                          "--episodes", "4"))
    assert code == 2
    err = capsys.readouterr().err
    assert url in err and "first LLM call" in err
    assert read_jsonl(tmp_path / "down" / "predictions.jsonl") == []


def test_missing_flags_are_clear_errors(tmp_path, capsys):
    assert main(eval_args(tmp_path / "a", "--agent", str(AGENTS / "memagent.yaml"))) == 2
    assert "--backend" in capsys.readouterr().err
    assert main(eval_args(tmp_path / "b", "--agent", str(AGENTS / "memagent.yaml"),
                          "--backend", "openai", "--model", "m")) == 2
    assert "--base-url" in capsys.readouterr().err
    assert main(eval_args(tmp_path / "c", "--agent", str(tmp_path / "nope.yaml"))) == 2
    assert "recipe file not found" in capsys.readouterr().err
    oracle = str(AGENTS / "scripted_oracle.yaml")
    assert main(["eval", "--env", "MemAgent-HotpotQA-v9", "--agent", oracle,
                 "--out", str(tmp_path / "d")]) == 2
    assert "Did you mean 'MemAgent-HotpotQA-v0'" in capsys.readouterr().err
    assert main(eval_args(tmp_path / "e", "--agent", oracle, "--env-kwargs", "num_doc=8")) == 2
    assert "num_doc" in capsys.readouterr().err and not (tmp_path / "e").exists()


def test_a_misspelt_env_kwarg_gets_a_did_you_mean_before_any_model_loads(tmp_path, capsys):
    code = main(["eval", "--env", "MemAgent-Synthetic-v0", "--env-kwargs", "num_kyes=3",
                 "--agent", str(AGENTS / "memagent.yaml"), "--backend", "transformers",
                 "--model", "embedded", "--out", str(tmp_path / "k"), "--no-progress"])
    assert code == 2
    assert "Did you mean 'num_keys'?" in capsys.readouterr().err


def test_a_misspelt_model_fails_at_once_saying_what_was_tried(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["eval", "--env", "MemAgent-Synthetic-v0", "--agent",
                 str(AGENTS / "memagent.yaml"), "--backend", "transformers", "--model",
                 "embeded", "--out", str(tmp_path / "m"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Did you mean 'embedded'?" in err and "Hugging Face cache" in err


def test_the_embedded_model_by_name(tmp_path):
    out = tmp_path / "emb"
    args = ["eval", "--env", "MemAgent-Synthetic-v0", "--env-kwargs", "num_tasks=2",
            "--agent", str(AGENTS / "memagent.yaml"), "--agent-overrides",
            "memory_max_new_tokens=4", "answer_max_new_tokens=4", "--backend", "transformers",
            "--model", "embedded", "--out", str(out), "--no-progress", "--threads", "1"]
    assert main(args) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == "embedded" and run["model_path"].endswith("tiny-memagent")
    assert run["env_kwargs"]["tokenizer"] == run["model_path"]


def test_memagent_eval_recipe_sets_the_envs_answer_format_unless_given(tmp_path, capsys):
    """The released-eval recipe ("Therefore, the answer is ...") needs no matching env kwarg."""
    base = ["eval", "--env", "MemAgent-Synthetic-v0", "--env-kwargs", "num_tasks=1",
            "--agent", str(AGENTS / "memagent_eval.yaml"), "--agent-overrides",
            "memory_max_new_tokens=4", "answer_max_new_tokens=4", "--backend", "transformers",
            "--model", "embedded", "--no-progress", "--threads", "1"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["env_kwargs"]["answer_format"] == "answer_is"
    # an explicit env kwarg wins, and the agent refuses the mismatch with the fix in the message
    explicit = base[:4] + ["num_tasks=1", "answer_format=boxed"] + base[5:]
    assert main(explicit + ["--out", str(tmp_path / "b")]) == 2
    assert "answer_format=answer_is" in capsys.readouterr().err


FAILING = '''
CALLS = []


def fails_once(request):
    """A policy whose second call fails (the server answered 500), the rest succeed."""
    from memgym.llm import Completion

    CALLS.append(1)
    if len(CALLS) == 2:
        return Completion("", finish_reason="error", error="HTTP 500 from the server")
    if "Updated memory:" in request.messages[-1]["content"]:
        return "notes"
    return "The answer is \\\\boxed{beer and whisky}."
'''


def test_an_incomplete_run_says_so_and_exits_3(tmp_path, capsys, monkeypatch):
    (tmp_path / "failing_policy.py").write_text(FAILING)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "inc"
    args = eval_args(out, "--agent", str(AGENTS / "memagent.yaml"), "--env-kwargs",
                     "chunk_tokens=3000", "--backend", "scripted", "--model",
                     "failing_policy:fails_once", "--episodes", "2", "--concurrency", "1")
    assert main(args) == 3
    err = capsys.readouterr().err
    assert "2 episodes, 1 incomplete (1 failed calls)" in " ".join(err.split())
    assert "--resume" in err


MY_ENV = '''
import gymnasium as gym
from memgym.data.task import Task
from memgym.envs import LongContextMemoryEnv


def make_facts(**kwargs):
    tasks = [Task(0, "What is the code of red falcon?", ("417",),
                  ["The lake is calm.", "The code of red falcon is 417.", "We walk on."])]
    return LongContextMemoryEnv(tasks, chunk_tokens=6, memory_tokens=32, **kwargs)


gym.register("MyFacts-v0", entry_point=make_facts)
'''


def test_a_users_env_module_is_found_in_the_current_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "myfacts_cli.py").write_text(MY_ENV)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    oracle = str(AGENTS / "scripted_oracle.yaml")
    code = main(["eval", "--env", "myfacts_cli:MyFacts-v0", "--agent", oracle,
                 "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["metrics"]["metrics"]["accuracy"]["mean"] == 1.0
    assert main(["eval", "--env", "nosuchmod:MyFacts-v0", "--agent", oracle,
                 "--out", str(tmp_path / "run2"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no module 'nosuchmod' in the current directory" in err and "PYTHONPATH" in err


def test_a_run_on_the_cached_default_data_names_its_file_in_run_json(tmp_path, monkeypatch,
                                                                    policy_module):
    # the LoCoMo envs read `memgym data get locomo`'s file by default, and the recipes' comments
    # run them so; run.json must still name the file, as the boards' settings do
    # (env_kwargs.data_path), or the submission of such a run is rejected as "missing"
    import shutil

    cache = tmp_path / "cache" / "data"
    cache.mkdir(parents=True)
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "locomo_mini.json",
                cache / "locomo10.json")
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["eval", "--env", "MemoryR1-LoCoMo-v0", "--env-kwargs", "split=train",
                 "--agent", "dialogue_full_context", "--backend", "scripted", "--model",
                 policy_module, "--episodes", "1", "--out", str(out), "--no-progress"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["env_kwargs"] == {"data_path": str(cache / "locomo10.json"), "split": "train"}
