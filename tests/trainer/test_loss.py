"""Tests for memgym.trainer.loss: equality with TRL's GRPO loss, and hand-computed tiny cases.

TRL's loss is only reachable through `GRPOTrainer._compute_loss(self, model, inputs)`, a method
that reads attributes of the trainer. `_TRLStub` carries exactly the attributes that method
reads (loss_type, epsilon_low/high, beta, the flags of features memgym does not use set off,
a one-process "accelerator"), and its `_get_per_token_logps_and_entropies` returns the random
log-probs of the test instead of running a model. The unbound method is then called on the
stub, so the numbers come from TRL's own code, not from a re-typed formula.
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from memgym.trainer.loss import (
    AGGREGATORS,
    LossNorm,
    completion_logprobs,
    grpo_loss,
    k3_kl,
    tis_weights,
    token_logprobs,
)

trl_grpo = pytest.importorskip("trl.trainer.grpo_trainer")


class _Accelerator:
    num_processes = 1

    @staticmethod
    def gather(x):
        return x

    gather_for_metrics = gather

    @staticmethod
    def reduce(x, reduction="sum"):
        return x


class _TRLStub:
    """The attributes TRL 1.16's GRPOTrainer._compute_loss reads, for a one-process run."""

    def __init__(self, loss_type, *, epsilon, epsilon_high, beta, max_completion_length,
                 logps, entropies):
        self.loss_type = loss_type
        self.epsilon_low = epsilon
        self.epsilon_high = epsilon_high
        self.beta = beta
        self.max_completion_length = max_completion_length
        self.top_entropy_quantile = 1.0
        self.aux_loss_enabled = False
        self.off_policy_mask_threshold = None
        self.importance_sampling_level = "token"
        self.use_vllm = False
        self.vllm_importance_sampling_correction = False
        self._entropy_bonus_enabled = False
        self.current_gradient_accumulation_steps = 1
        self.args = SimpleNamespace(use_bias_correction_kl=False, delta=None,
                                    steps_per_generation=1)
        self.model = SimpleNamespace(training=True)
        self.accelerator = _Accelerator()
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._logps, self._entropies = logps, entropies

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask,
                                           logits_to_keep, **kwargs):
        return self._logps, self._entropies, None


def _random_case(seed, B=5, K=7):
    g = torch.Generator().manual_seed(seed)
    logps = (-torch.rand(B, K, generator=g) * 3).requires_grad_()
    old = logps.detach() + 0.3 * torch.randn(B, K, generator=g)
    ref = logps.detach() + 0.2 * torch.randn(B, K, generator=g)
    adv = torch.randn(B, generator=g)
    lengths = torch.randint(1, K + 1, (B,), generator=g)
    mask = (torch.arange(K)[None, :] < lengths[:, None]).float()          # [B, K]
    return logps, old, ref, adv, mask


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_loss_equals_trl(loss_type, beta):
    seed = 10 * list(AGGREGATORS).index(loss_type) + int(beta * 100)
    logps, old, ref, adv, mask = _random_case(seed)
    B, K = logps.shape
    stub = _TRLStub(loss_type, epsilon=0.2, epsilon_high=0.28, beta=beta,
                    max_completion_length=K + 3, logps=logps, entropies=torch.zeros(B, K))
    inputs = {
        "prompt_ids": torch.zeros(B, 2, dtype=torch.long),
        "prompt_mask": torch.ones(B, 2, dtype=torch.long),
        "completion_ids": torch.zeros(B, K, dtype=torch.long),
        "completion_mask": mask.long(),
        "advantages": adv,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        "num_items_in_batch": mask.sum(),
    }
    trl_loss = trl_grpo.GRPOTrainer._compute_loss(stub, None, inputs)
    (trl_grad,) = torch.autograd.grad(trl_loss, logps)

    norm = LossNorm(total_row_weight=float(B), total_token_weight=float(mask.sum()),
                    num_microbatches=1, max_completion_length=K + 3)
    ours, stats = grpo_loss(logps, old, adv, mask, torch.ones(B), norm, loss_type=loss_type,
                            epsilon_low=0.2, epsilon_high=0.28, beta=beta, ref_logps=ref)
    (our_grad,) = torch.autograd.grad(ours, logps)
    torch.testing.assert_close(ours, trl_loss, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(our_grad, trl_grad, rtol=1e-5, atol=1e-7)
    # The logged clip ratio matches TRL's global masked mean.
    assert stats["clip_high"].item() / stats["tokens"].item() == pytest.approx(
        stub._metrics["train"]["clip_ratio/high_mean"][0])
    if beta:
        assert stats["kl"].item() / stats["tokens"].item() == pytest.approx(
            stub._metrics["train"]["kl"][0], rel=1e-5)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_microbatch_losses_sum_to_whole_batch_loss(loss_type):
    logps, old, _, adv, mask = _random_case(seed=3, B=6)
    w = torch.tensor([0.5, 0.5, 1.0, 1 / 3, 1 / 3, 1 / 3])
    norm = LossNorm(float(w.sum()), float((mask * w[:, None]).sum()), 2, 10)
    kw = {"loss_type": loss_type, "epsilon_low": 0.2, "epsilon_high": 0.2}
    whole, _ = grpo_loss(logps, old, adv, mask, w, norm, **kw)
    parts = sum(grpo_loss(logps[s], old[s], adv[s], mask[s], w[s], norm, **kw)[0]
                for s in (slice(0, 2), slice(2, 6)))
    torch.testing.assert_close(parts, whole)


def _one_token(ratio, adv, eps_low=0.2, eps_high=0.2):
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    old = torch.zeros(1, 1)
    norm = LossNorm(1.0, 1.0)
    loss, stats = grpo_loss(logp, old, torch.tensor([adv]), torch.ones(1, 1), torch.ones(1),
                            norm, loss_type="grpo", epsilon_low=eps_low, epsilon_high=eps_high)
    (grad,) = torch.autograd.grad(loss, logp)
    return loss.item(), grad.item(), stats


def test_ratio_clipped_above_one_plus_eps():
    # Positive advantage, ratio 1.5 > 1.2: the objective is capped at 1.2 * A, gradient zero.
    loss, grad, stats = _one_token(1.5, 2.0)
    assert loss == pytest.approx(-1.2 * 2.0)
    assert grad == 0.0
    assert stats["clip_high"].item() == 1 and stats["clip_low"].item() == 0


def test_ratio_clipped_below_one_minus_eps():
    # Negative advantage, ratio 0.5 < 0.8: -min(0.5 * -1, 0.8 * -1) = 0.8, gradient zero.
    loss, grad, stats = _one_token(0.5, -1.0)
    assert loss == pytest.approx(0.8)
    assert grad == 0.0
    assert stats["clip_low"].item() == 1 and stats["clip_region"].item() == 1


def test_ratio_inside_range_keeps_gradient():
    # Ratio 1.1 inside [0.8, 1.2]: loss -r*A, d/dlogp = -r*A.
    loss, grad, stats = _one_token(1.1, 2.0)
    assert loss == pytest.approx(-2.2)
    assert grad == pytest.approx(-2.2)
    assert stats["clip_region"].item() == 0


def test_clip_does_not_bind_when_it_would_help():
    # Positive advantage, ratio 0.5 below 1 - eps: min picks the unclipped term, gradient flows.
    loss, grad, _ = _one_token(0.5, 1.0)
    assert loss == pytest.approx(-0.5)
    assert grad == pytest.approx(-0.5)


def test_epsilon_high_widens_upper_clip_only():
    loss, grad, _ = _one_token(1.25, 1.0, eps_low=0.2, eps_high=0.28)
    assert loss == pytest.approx(-1.25) and grad == pytest.approx(-1.25)


def test_k3_kl_by_hand():
    logp, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.0, -1.5]])
    r = 0.5
    torch.testing.assert_close(k3_kl(logp, ref), torch.tensor([[0.0, math.exp(r) - r - 1]]))


def test_aggregators_by_hand():
    # Two rows: losses [1, 2, 3] (3 tokens) and [4, -, -] (1 token).
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    w = torch.ones(2)
    norm = LossNorm(total_row_weight=2.0, total_token_weight=4.0, num_microbatches=1,
                    max_completion_length=5)
    assert AGGREGATORS["grpo"](loss, mask, w, norm).item() == pytest.approx((2.0 + 4.0) / 2)
    assert AGGREGATORS["bnpo"](loss, mask, w, norm).item() == pytest.approx(10.0 / 4)
    assert AGGREGATORS["dr_grpo"](loss, mask, w, norm).item() == pytest.approx(10.0 / (2 * 5))
    assert AGGREGATORS["dapo"](loss, mask, w, norm).item() == pytest.approx(10.0 / 4)


def test_row_weights_make_episodes_count_equally():
    # Episode A has two turn-rows (weight 1/2 each), episode B one row (weight 1): grpo
    # aggregation gives the mean over episodes of their turn means.
    loss = torch.tensor([[2.0], [4.0], [10.0]])
    mask = torch.ones(3, 1)
    w = torch.tensor([0.5, 0.5, 1.0])
    norm = LossNorm(total_row_weight=2.0, total_token_weight=2.0)
    assert AGGREGATORS["grpo"](loss, mask, w, norm).item() == pytest.approx((3.0 + 10.0) / 2)


def test_masked_tokens_do_not_contribute():
    logps = torch.tensor([[-1.0, -50.0]], requires_grad=True)
    loss, _ = grpo_loss(logps, logps.detach(), torch.tensor([1.0]), torch.tensor([[1.0, 0.0]]),
                        torch.ones(1), LossNorm(1.0, 1.0), loss_type="dapo")
    (grad,) = torch.autograd.grad(loss, logps)
    assert grad[0, 1].item() == 0.0
    assert grad[0, 0].item() == pytest.approx(-1.0)   # d(-ratio*A)/dlogp at ratio 1


def test_tis_weights_capped_and_nan_safe():
    old = torch.tensor([[0.0, 0.0, -1.0, 0.0]])
    sampler = torch.tensor([[0.0, -2.0, 0.0, float("nan")]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    w = tis_weights(old, sampler, mask, cap=2.0)
    torch.testing.assert_close(w, torch.tensor([[1.0, 2.0, math.exp(-1.0), 1.0]]))


def test_tis_weights_scale_the_surrogate_not_the_kl():
    logps = torch.zeros(1, 1, requires_grad=True)
    isw = torch.tensor([[0.5]])
    loss, _ = grpo_loss(logps, logps.detach(), torch.tensor([2.0]), torch.ones(1, 1),
                        torch.ones(1), LossNorm(1.0, 1.0), is_weights=isw, beta=0.1,
                        ref_logps=torch.tensor([[math.log(2.0)]]))
    kl = 2.0 - math.log(2.0) - 1
    assert loss.item() == pytest.approx(-2.0 * 0.5 + 0.1 * kl)


def test_token_logprobs_match_log_softmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 11, generator=g)
    targets = torch.randint(0, 11, (3, 4), generator=g)
    logps, ent = token_logprobs(logits, targets, with_entropy=True)
    ref = logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
    torch.testing.assert_close(logps, ref)
    p = logits.softmax(-1)
    torch.testing.assert_close(ent, -(p * p.log()).sum(-1))


def test_non_llm_policy_trains_through_the_same_loss():
    # A reranker's log-probs of the items it picked: any tensor of action log-probs works.
    scores = torch.zeros(2, 4, requires_grad=True)                 # 2 queries, 4 candidates
    picked = torch.tensor([[0, 1], [2, 3]])
    logps = scores.log_softmax(-1).gather(-1, picked)              # [2, 2] actions per query
    loss, _ = grpo_loss(logps, logps.detach(), torch.tensor([1.0, -1.0]), torch.ones(2, 2),
                        torch.ones(2), LossNorm(2.0, 4.0), loss_type="grpo")
    loss.backward()
    assert scores.grad[0, 0] < 0 and scores.grad[1, 2] > 0         # raise picked under A>0


def test_completion_logprobs_left_padding_matches_unpadded():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=2, num_attention_heads=2,
                                   num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    seq = torch.tensor([[3, 4, 5, 6, 7, 8]])                        # prompt 3 + completion 3
    padded = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8]])
    amask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        a, _ = completion_logprobs(model, seq, torch.ones_like(seq), 3, temperature=0.7)
        b, _ = completion_logprobs(model, padded, amask, 3, temperature=0.7)
        full = (model(seq).logits[0, 2:5] / 0.7).log_softmax(-1)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a[0], full.gather(-1, seq[0, 3:, None]).squeeze(-1))
