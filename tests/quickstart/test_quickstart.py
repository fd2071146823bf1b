"""The quickstart path: the shipped model and `memgym quickstart` end to end (the build
script's tests: tests/scripts/test_build_tiny_memagent.py).

The end-to-end run uses very few steps and tasks; it checks that every file and the table are
produced and that the table's numbers are computed from the evaluation files.
"""

import json

import pytest
import torch

from memgym.assets import TINY_MEMAGENT
from memgym.eval import read_jsonl, summarize
from memgym.quickstart import experiment as X
from memgym.quickstart.report import score_table
from memgym.quickstart.run import run_quickstart

needs_model = pytest.mark.skipif(not (TINY_MEMAGENT / "model.safetensors").exists(),
                                 reason="the embedded model has not been built")


def test_score_table_fractions_by_hand():
    def s(mean):
        return {split: {"mean": mean, "ci95": [mean, mean], "ci95_halfwidth": 0.0, "n": 1}
                for split in X.EVAL_SPLITS}

    table = score_table(s(0.4), s(0.7), s(1.0), X.EVAL_SPLITS)
    assert table["average"]["relative_gain"] == pytest.approx(0.75)   # (0.7 - 0.4) / 0.4
    assert table["average"]["gap_closed"] == pytest.approx(0.5)       # 0.3 / 0.6
    assert score_table(s(0.0), s(0.0), s(1.0), X.EVAL_SPLITS)["average"]["relative_gain"] is None
    trained = s(0.7) | {"in_domain": {"mean": 0.9, "ci95": [0.9, 0.9], "ci95_halfwidth": 0.0,
                                      "n": 1}}
    table = score_table(s(0.4), trained, s(1.0), X.EVAL_SPLITS)
    assert table["ood_average"]["trained"] == pytest.approx(0.7)   # in-domain left out
    n = len(X.EVAL_SPLITS)
    assert table["average"]["trained"] == pytest.approx((0.9 + (n - 1) * 0.7) / n)


@needs_model
def test_shipped_model_loads_offline_and_answers_in_format():
    import gymnasium as gym
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from memgym.agents import load_agent, run_episode
    from memgym.llm.hf import TransformersBackend

    model = AutoModelForCausalLM.from_pretrained(TINY_MEMAGENT, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(TINY_MEMAGENT)
    backend = TransformersBackend(model, tokenizer)
    agent = load_agent(X.agent_recipe(temperature=0.0), backend)
    env = gym.make(X.ENV_ID, **X.split_env_kwargs("in_domain", num_tasks=4,
                                                  tokenizer=str(TINY_MEMAGENT)))
    import asyncio

    episode = asyncio.run(run_episode(env, agent, seed=0, task_id=0))
    backend.close()
    assert episode.reward_components["format"] == 1.0  # a closed \boxed{} answer
    assert all(t.finish_reason == "stop" for t in episode.turns)  # every call ended with EOS
    assert len(episode.turns) >= 3


@needs_model
def test_quickstart_end_to_end_small(tmp_path):
    result = run_quickstart(tmp_path / "qs", steps=1, eval_tasks=4, progress=False,
                            grpo_overrides={"tasks_per_step": 2, "num_generations": 2},
                            log=lambda *_: None)
    out = result.out_dir
    for name in ("quickstart.json", "table.md", "quickstart.png", "train/metrics.jsonl"):
        assert (out / name).exists(), name
    table = json.loads((out / "quickstart.json").read_text())
    for name in ("base", "trained", "oracle"):
        for split in X.EVAL_SPLITS:
            rows = read_jsonl(out / name / split / "predictions.jsonl")
            expected = summarize(rows)["metrics"]["accuracy"]["mean"]
            assert table["splits"][split][name]["mean"] == pytest.approx(expected)
    assert table["splits"]["in_domain"]["oracle"]["mean"] == 1.0
    assert {"relative_gain", "gap_closed"} <= set(table["average"])


def test_quickstart_needs_two_tasks_for_an_interval(tmp_path):
    from memgym.errors import ConfigError

    with pytest.raises(ConfigError, match="eval_tasks=1"):
        run_quickstart(tmp_path, eval_tasks=1, log=lambda *_: None)



def test_quickstart_refuses_a_bad_thread_count_before_loading_the_model(tmp_path):
    import torch

    from memgym.errors import ConfigError

    before = torch.get_num_threads()
    try:
        with pytest.raises(ConfigError, match="threads='many'.*positive number"):
            run_quickstart(tmp_path, threads="many", log=lambda *_: None)
    finally:
        torch.set_num_threads(before)


def test_quickstart_cli_keeps_torchs_threads_by_default():
    """Training, most of the quickstart, ran 1.4x faster on 2 threads than on 1 (bench/README)."""
    import argparse

    from memgym.quickstart.run import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).threads == "auto"
    assert parser.parse_args(["--threads", "1"]).threads == "1"
