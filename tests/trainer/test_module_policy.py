"""The module-policy trainer: RMM's reranker trained by REINFORCE through the trainer's code."""

from pathlib import Path

import pytest
import torch

from memgym.agents.reranker import MemoryReranker
from memgym.cli import main
from memgym.trainer.advantages import fixed_baseline_advantages
from memgym.trainer.checkpoint import read_trainer_state
from memgym.trainer.module_policy import citation_rewards, module_loss

ROOT = Path(__file__).parents[2]


def _sample(reranker, seed, k=6, dim=4):
    gen = torch.Generator().manual_seed(seed)
    q, m = torch.randn(dim, generator=gen), torch.randn(k, dim, generator=gen)
    return reranker.sample(q, m, generator=gen, candidate_ids=tuple(str(i) for i in range(k)))


def test_advantages_equal_reinforce_with_the_papers_baseline():
    adv, rewards = fixed_baseline_advantages(torch.tensor([[1.0], [-1.0]]), torch.ones(1), 0.5)
    assert adv.tolist() == [0.5, -1.5] and rewards.tolist() == [1.0, -1.0]
    torch.manual_seed(0)
    reranker = MemoryReranker(4, top_m=3)
    torch.nn.init.normal_(reranker.w_q.weight, std=0.3)
    samples = [_sample(reranker, s) for s in (1, 2)]
    rewards = [citation_rewards(s.chosen_ids, s.chosen_ids[:1]) for s in samples]
    loss, _ = module_loss(reranker, samples, rewards, baseline=0.5)
    got = torch.autograd.grad(loss, reranker.w_q.weight)[0]
    manual = -sum((r - 0.5) * lp for s, rs in zip(samples, rewards)
                  for r, lp in zip(rs, reranker.log_probs(s))) / 6
    want = torch.autograd.grad(manual, reranker.w_q.weight)[0]
    assert torch.allclose(got, want, atol=1e-6)


def test_a_stale_sample_is_importance_weighted_by_its_sampling_time_logp_and_clipped():
    """Samples wait in a buffer while the weights move: the loss divides by the log-probs the
    picks had when sampled (RerankSample.logp), and the clip stops picks that moved too far;
    it once used the current weights' detached log-probs, a ratio forced to 1."""
    torch.manual_seed(0)
    reranker = MemoryReranker(4, top_m=3)
    torch.nn.init.normal_(reranker.w_q.weight, std=0.3)
    samples = [_sample(reranker, s) for s in (1, 2)]
    rewards = [citation_rewards(s.chosen_ids, s.chosen_ids[:1]) for s in samples]
    with torch.no_grad():  # the optimizer steps taken since these samples were drawn
        reranker.w_m.weight.add_(0.4 * torch.randn_like(reranker.w_m.weight))
    loss, stats = module_loss(reranker, samples, rewards, baseline=0.5, epsilon_low=0.2,
                              epsilon_high=0.2)
    logp = torch.cat([reranker.log_probs(s) for s in samples])
    ratio = torch.exp(logp - torch.cat([s.logp for s in samples]))
    adv = torch.tensor([r - 0.5 for rs in rewards for r in rs])
    manual = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
    assert not torch.allclose(ratio, torch.ones_like(ratio))
    assert torch.allclose(loss, manual, atol=1e-6)
    got = torch.autograd.grad(loss, reranker.w_m.weight)[0]
    want = torch.autograd.grad(manual, reranker.w_m.weight)[0]
    assert torch.allclose(got, want, atol=1e-6)
    stopped = ((ratio > 1.2) & (adv > 0)) | ((ratio < 0.8) & (adv < 0))
    assert stats["clip_ratio"] == pytest.approx(float(stopped.float().mean()))


def _case(gen, rotation, dim=8, k=20, relevant=5):
    q = torch.randn(dim, generator=gen)
    q = 2 * q / q.norm()
    rel = torch.stack([rotation @ q + torch.randn(dim, generator=gen) for _ in range(relevant)])
    dis = torch.stack([0.3 * q + torch.randn(dim, generator=gen) for _ in range(k - relevant)])
    ids = tuple(str(i) for i in range(k))
    return q, torch.cat([rel, dis]), ids, ids[:relevant]


def test_reranker_learns_a_cited_direction():
    """Cited memories are a hidden rotation of the question: the expected reward rises."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    rotation = torch.linalg.qr(torch.randn(8, 8, generator=gen))[0]
    reranker = MemoryReranker(8)
    # lr 2e-2, not RMM's 1e-3: the paper's rate needs far more than 48 steps at this scale
    opt = torch.optim.AdamW(reranker.parameters(), lr=2e-2, weight_decay=0.0)
    evals = [_case(torch.Generator().manual_seed(1000 + i), rotation) for i in range(64)]

    def expected_reward():
        total = 0.0
        for i, (q, m, ids, cited) in enumerate(evals):
            s = reranker.sample(q, m, generator=torch.Generator().manual_seed(i),
                                candidate_ids=ids)
            total += sum(citation_rewards(s.chosen_ids, cited)) / len(s.chosen)
        return total / len(evals)

    before = expected_reward()
    for _ in range(48):
        batch = []
        for _ in range(4):  # RMM's batch size
            q, m, ids, cited = _case(gen, rotation)
            s = reranker.sample(q, m, generator=gen, candidate_ids=ids)
            batch.append((s, citation_rewards(s.chosen_ids, cited)))
        opt.zero_grad()
        loss, _ = module_loss(reranker, [s for s, _ in batch], [r for _, r in batch],
                              baseline=0.5)
        loss.backward()
        opt.step()
    after = expected_reward()
    assert after > before + 0.3, (before, after)


@pytest.mark.slow
def test_memgym_train_runs_the_reranker_recipe_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["train", str(ROOT / "train" / "rmm_reranker.yaml"), "max_steps=1",
            f"output_dir={out}", "env_kwargs.num_conversations=2"]
    assert main(args) == 0
    first = MemoryReranker.from_pretrained(out / "checkpoint-1")
    assert read_trainer_state(out / "checkpoint-1")["step"] == 1
    assert any(p.abs().sum() > 0 for p in first.parameters())  # the step moved W
    assert main(["train", str(ROOT / "train" / "rmm_reranker.yaml"), "max_steps=2", "env_kwargs.num_conversations=2",
                 "--resume", str(out)]) == 0
    rows = [line for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    assert len(rows) == 2 and '"loss"' in rows[-1] and '"grad_norm"' in rows[-1]
    second = MemoryReranker.from_pretrained(out / "checkpoint-2")
    assert not torch.equal(first.w_q.weight, second.w_q.weight)
