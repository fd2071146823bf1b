"""`memgym quickstart rmm`: RMM's reranker on LoCoMo before and after REINFORCE from citations.

The end-to-end run uses the LoCoMo fixture (conv-26 trains, conv-99 is the test conversation),
the offline hashing encoder and one or two epochs; it checks every file and that the table is
computed from the prediction files.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from memgym.agents.reranker import MemoryReranker
from memgym.cli import build_parser, main
from memgym.errors import ConfigError, MemgymError
from memgym.quickstart.rmm import (
    RMMCase,
    evidence_citer,
    extractive_answer,
    oracle_top,
    run_rmm_quickstart,
    score_rankings,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "locomo_mini.json"


def _case(ids, evidence, category="single-hop"):
    return RMMCase("q", category, ("Paris",), frozenset(evidence), torch.zeros(4),
                   torch.zeros(len(ids), 4), tuple(ids),
                   {i: f"text {i}" for i in ids} | {"D1:2": "I moved to Paris"})


def test_oracle_puts_the_retrieved_evidence_first_then_the_encoder_order():
    case = _case(["D1:1", "D1:3", "D1:2", "D2:1", "D2:2", "D2:3"], {"D1:2", "D2:3", "D9:9"})
    assert oracle_top(case, 5) == ("D1:2", "D2:3", "D1:1", "D1:3", "D2:1")


def test_evidence_citer_cites_only_shown_evidence_and_answer_is_their_text():
    case = _case(["D1:1", "D1:2", "D2:1"], {"D1:2", "D2:3"})
    cited = evidence_citer(case, ("D1:1", "D1:2"))
    assert cited == ("D1:2",)
    assert extractive_answer(case, cited) == "I moved to Paris"
    assert extractive_answer(case, ()) == "Not mentioned in the conversation"


def test_score_rankings_gain_and_gap_by_hand():
    def rows(recalls):
        return [{"category": c, "recall@5": r, "f1": r / 2}
                for c, r in zip(["single-hop", "single-hop", "temporal", "temporal"], recalls)]

    table = score_rankings({"base": rows([0.0, 0.5, 0.5, 0.6]),
                            "trained": rows([0.5, 0.5, 0.5, 1.0]),
                            "oracle": rows([1.0, 1.0, 1.0, 1.0])})
    overall = table["recall@5"]["splits"]["overall"]
    assert overall["base"]["mean"] == pytest.approx(0.4)
    assert overall["relative_gain"] == pytest.approx((0.625 - 0.4) / 0.4)
    assert overall["gap_closed"] == pytest.approx(0.225 / 0.6)
    assert overall["paired_gain"]["mean"] == pytest.approx(0.225)
    single = table["recall@5"]["splits"]["single-hop"]
    assert single["gap_closed"] == pytest.approx(0.25 / 0.75)
    assert set(table["recall@5"]["splits"]) == {"overall", "single-hop", "temporal"}
    assert table["f1"]["splits"]["temporal"]["trained"]["mean"] == pytest.approx(0.375)


def test_missing_data_path_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="--data-path .*locomo10.json"):
        run_rmm_quickstart(tmp_path / "absent.json", tmp_path / "run", encoder="hash")


def test_plain_quickstart_still_parses_as_memagent():
    args = build_parser().parse_args(["quickstart", "--steps", "3"])
    assert args.quickstart_agent is None and args.steps == 3
    args = build_parser().parse_args(["quickstart", "rmm", "--data-path", "x.json"])
    assert args.quickstart_agent == "rmm" and args.data_path == "x.json"
    assert args.protocol == "online"


def test_one_training_step_moves_the_reranker_and_saves_it(tmp_path):
    from memgym.quickstart.rmm import train_reranker

    gen = torch.Generator().manual_seed(0)
    cases = []
    for n in range(4):
        q = torch.nn.functional.normalize(torch.randn(8, generator=gen), dim=0)
        m = torch.nn.functional.normalize(torch.randn(6, 8, generator=gen), dim=1)
        ids = tuple(f"D1:{i}" for i in range(6))
        cases.append(RMMCase(f"q{n}", "single-hop", ("x",), frozenset({"D1:5"}), q, m, ids,
                             {i: i for i in ids}))
    reranker = MemoryReranker(8, top_m=2)
    rows = train_reranker(reranker, cases, tmp_path, epochs=1, batch_size=4,
                          learning_rate=1e-2, baseline=0.5, seed=0, log=lambda *_: None)
    assert len(rows) == 1 and -1.0 <= rows[0]["reward"] <= 1.0
    assert reranker.w_m.weight.abs().sum() > 0
    assert (tmp_path / "reranker" / "reranker_config.json").is_file()


@pytest.mark.slow
def test_rmm_quickstart_end_to_end_on_the_fixture(tmp_path):
    out = tmp_path / "run"
    assert main(["quickstart", "rmm", "--data-path", str(FIXTURE), "--out", str(out),
                 "--encoder", "hash", "--epochs", "2", "--lr", "1e-3", "--threads", "1",
                 "--protocol", "offline"]) == 0
    for name in ("quickstart.json", "table.md", "quickstart.png", "train/metrics.jsonl",
                 "train/reranker/model.safetensors"):
        assert (out / name).is_file(), name
    table = json.loads((out / "quickstart.json").read_text())
    assert table["train_conversations"] == ["conv-26"]
    assert table["eval_conversations"] == ["conv-99"]
    assert table["settings"]["baseline"] == 0.5 and table["settings"]["batch_size"] == 4
    assert table["settings"]["learning_rate"] == 1e-3 and "memories" in table["departures"]
    for name in ("base", "trained", "oracle"):
        lines = Path(table["files"][name]).read_text().splitlines()
        preds = [json.loads(line) for line in lines]
        assert len(preds) == table["eval_questions"]
        for metric in ("recall@5", "f1"):
            score = table["metrics"][metric]["splits"]["overall"][name]
            assert score["mean"] == pytest.approx(np.mean([p[metric] for p in preds]))
    assert table["splits"] == table["metrics"]["recall@5"]["splits"]
    assert "Oracle (evidence in top-20 first)" in (out / "table.md").read_text()
    trained = MemoryReranker.from_pretrained(out / "train" / "reranker")
    assert trained.w_q.weight.abs().sum() > 0   # REINFORCE moved it off the zero start
    metrics = (out / "train" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line) for line in metrics]
    # 2 epochs of ceil(train questions / batch 4) steps (the fixture's conv-26 has 4 with evidence)
    assert table["train_questions"] == 4
    assert len([r for r in steps if "reward" in r]) == table["reinforce_steps"] == 2
    with pytest.raises(ConfigError, match="--overwrite"):
        run_rmm_quickstart(FIXTURE, out, encoder="hash", epochs=1, log=lambda *_: None)


@pytest.mark.parametrize("protocol", ["online", "offline"])
def test_quickstart_rmm_reads_the_locomo_file_memgym_data_get_cached(tmp_path, monkeypatch,
                                                                     protocol):
    # `memgym data get locomo` caches the file the envs read by default; the quickstart reads
    # the same one when --data-path is not given, and says how to get it when it is absent
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = build_parser().parse_args(["quickstart", "rmm", "--protocol", protocol,
                                      "--out", str(out), "--encoder", "hash"])
    with pytest.raises(MemgymError, match="memgym data get locomo"):
        args._run(args)
    (tmp_path / "cache" / "data").mkdir(parents=True)
    shutil.copy(FIXTURE, tmp_path / "cache" / "data" / "locomo10.json")
    (out / "oracle").mkdir(parents=True)  # an earlier run's results: refused after the data
    with pytest.raises(ConfigError, match="--overwrite"):   # was found (without --overwrite)
        args._run(args)
    assert args.data_path == str(tmp_path / "cache" / "data" / "locomo10.json")


def test_a_missing_locomo_file_names_the_command_that_gets_it(tmp_path):
    with pytest.raises(ConfigError, match="memgym data get locomo"):
        run_rmm_quickstart(tmp_path / "absent.json", tmp_path / "run", encoder="hash")
