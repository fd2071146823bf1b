"""`memgym quickstart rmm --protocol online`: RMM's online retrospective reflection.

Covers the update (advantages by hand, a cited pick rises, stale samples refused), the
prequential order (a question is scored by the state before its own update), and an end-to-end
run on the LoCoMo fixture with the hashing encoder (files, and the table recomputed from the
prediction files).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from memgym.agents.reranker import MemoryReranker
from memgym.cli import main
from memgym.errors import ConfigError
from memgym.quickstart.rmm import RMMCase
from memgym.quickstart.rmm_online import (
    make_optimizer,
    pick_advantages,
    prequential_conversation,
    reinforce_step,
    run_online_quickstart,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "locomo_mini.json"


def _cases(n: int, evidence: str = "D1:5", seed: int = 0) -> list[RMMCase]:
    gen = torch.Generator().manual_seed(seed)
    ids = tuple(f"D1:{i}" for i in range(8))
    mem = torch.nn.functional.normalize(torch.randn(8, 6, generator=gen), dim=1)   # [K, D]
    out = []
    for k in range(n):
        q = torch.nn.functional.normalize(torch.randn(6, generator=gen), dim=0)      # [D]
        out.append(RMMCase(f"q{k}", "single-hop", ("x",), frozenset({evidence}), q, mem, ids,
                           {i: f"turn {i}" for i in ids}))
    return out


def test_picks_baseline_centres_each_question_and_fixed_baseline_subtracts():
    torch.testing.assert_close(pick_advantages([1.0, -1.0, -1.0], "picks"),
                               torch.tensor([4 / 3, -2 / 3, -2 / 3]))
    torch.testing.assert_close(pick_advantages([-1.0, -1.0], "picks"), torch.zeros(2))
    torch.testing.assert_close(pick_advantages([1.0, -1.0], 0.5), torch.tensor([0.5, -1.5]))
    with pytest.raises(ConfigError, match="baseline"):
        pick_advantages([1.0], "mean")


def test_a_step_raises_the_cited_pick_and_lowers_the_uncited_ones():
    case = _cases(1)[0]
    reranker = MemoryReranker(6, top_m=3, tau=0.1, estimator="rmm")
    sample = reranker.sample(case.query, case.candidates, generator=torch.Generator(),
                             candidate_ids=case.candidate_ids)
    rewards = [1.0, -1.0, -1.0]                      # the first pick was cited
    before = sample.logp.clone()
    reinforce_step(reranker, make_optimizer("sgd", reranker.parameters(), 0.05), [sample],
                   [rewards], baseline="picks")
    after = reranker.log_probs(sample).detach()
    assert after[0] > before[0] and (after[1:] < before[1:]).all()


def test_a_sample_used_once_is_refused_the_second_time():
    case = _cases(1)[0]
    reranker = MemoryReranker(6, top_m=3, tau=0.1)
    opt = make_optimizer("sgd", reranker.parameters(), 0.5)
    sample = reranker.sample(case.query, case.candidates, candidate_ids=case.candidate_ids)
    reinforce_step(reranker, opt, [sample], [[1.0, -1.0, -1.0]], baseline="picks")
    with pytest.raises(ConfigError, match="stale"):
        reinforce_step(reranker, opt, [sample], [[1.0, -1.0, -1.0]], baseline="picks")


def test_each_question_is_scored_before_the_update_it_causes():
    cases = _cases(12)
    reranker = MemoryReranker(6, top_m=2, tau=0.05, estimator="rmm")
    start = [reranker.sample(c.query, c.candidates, greedy=True,
                             candidate_ids=c.candidate_ids).chosen_ids for c in cases]
    rows = prequential_conversation(cases, reranker,
                                    make_optimizer("sgd", reranker.parameters(), 0.5),
                                    batch_size=1, baseline="picks",
                                    generator=torch.Generator().manual_seed(0))
    greedy = [tuple(r["top"]) for r in rows["greedy_view"]]
    assert greedy[0] == start[0]                     # the first question saw the initial state
    assert reranker.w_q.weight.abs().sum() > 0       # ... and the state moved afterwards
    assert greedy != start                           # later questions saw an updated state
    assert [r["recall@5"] for r in rows["online"]] == [
        float("D1:5" in r["top"]) for r in rows["online"]]


def test_unknown_online_setting_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="online settings .*'temperature'"):
        run_online_quickstart(FIXTURE, tmp_path / "run", encoder="hash",
                              settings={"temperature": 0.1}, log=lambda *_: None)


@pytest.mark.slow
def test_online_quickstart_end_to_end_on_the_fixture(tmp_path):
    out = tmp_path / "run"
    assert main(["quickstart", "rmm", "--data-path", str(FIXTURE), "--out", str(out),
                 "--encoder", "hash", "--epochs", "1", "--threads", "1"]) == 0
    for name in ("quickstart.json", "table.md", "quickstart.png",
                 "pretrained/reranker/model.safetensors"):
        assert (out / name).is_file(), name
    table = json.loads((out / "quickstart.json").read_text())
    assert table["protocol"] == "online" and table["eval_conversations"] == ["conv-99"]
    assert table["pretrain_questions"] == 6 and table["settings"]["pretrain_epochs"] == 1
    for name in ("base", "offline", "online", "online_pretrained", "oracle"):
        preds = [json.loads(x) for x in Path(table["files"][name]).read_text().splitlines()]
        assert len(preds) == table["eval_questions"]
        for metric in ("recall@5", "f1"):
            score = table["metrics"][metric]["splits"]["overall"][name]
            assert score["mean"] == pytest.approx(np.mean([p[metric] for p in preds]))
    assert set(table["goal"]) == {"offline", "online", "online_pretrained"}
    assert "Online (from W = 0; default)" in (out / "table.md").read_text()
    with pytest.raises(ConfigError, match="--overwrite"):
        run_online_quickstart(FIXTURE, out, encoder="hash", log=lambda *_: None)
