"""Tests for memgym.trainer.advantages, computed by hand: group normalisation, the two
multi-objective aggregations, zero-variance groups, broadcast credit with per-episode
normalisation, per-step discounted credit, and equality with TRL's advantage formulas."""

from __future__ import annotations

import math

import pytest
import torch

from memgym.trainer.advantages import (
    STD_EPS,
    broadcast_credit,
    discounted_returns,
    group_advantages,
    per_step_credit,
    zero_std_groups,
)


def test_sum_then_normalize_group_by_hand():
    # One group of 4, one component: rewards 1, 0, 0, 1 -> mean 0.5, Bessel std sqrt(1/3).
    comps = torch.tensor([[1.0], [0.0], [0.0], [1.0]])
    adv, rewards = group_advantages(comps, torch.tensor([1.0]), 4)
    std = math.sqrt(1 / 3)
    expected = torch.tensor([0.5, -0.5, -0.5, 0.5]) / (std + STD_EPS)
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(rewards, comps[:, 0])


def test_scale_rewards_none_only_centres():
    comps = torch.tensor([[3.0], [1.0], [10.0], [10.0]])
    adv, _ = group_advantages(comps, torch.tensor([1.0]), 2, scale_rewards="none")
    torch.testing.assert_close(adv, torch.tensor([1.0, -1.0, 0.0, 0.0]))


def test_scale_rewards_batch_divides_by_batch_std():
    comps = torch.tensor([[3.0], [1.0], [10.0], [10.0]])
    adv, _ = group_advantages(comps, torch.tensor([1.0]), 2, scale_rewards="batch")
    batch_std = torch.tensor([3.0, 1.0, 10.0, 10.0]).std()
    torch.testing.assert_close(adv, torch.tensor([1.0, -1.0, 0.0, 0.0]) / (batch_std + STD_EPS))


def test_weighted_components_sum_before_normalising():
    # accuracy weight 1, format weight 0.5.
    comps = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    adv, rewards = group_advantages(comps, torch.tensor([1.0, 0.5]), 2, scale_rewards="none")
    torch.testing.assert_close(rewards, torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(adv, torch.tensor([0.25, -0.25]))


def test_normalize_then_sum_differs_from_sum_then_normalize():
    # Component 0 has a small spread, component 1 a large one. Summing first lets component 1
    # decide (episode 2 beats episode 0); normalising each component within the group first
    # makes episode 0's lone win on component 0 count as much, and it overtakes episode 2.
    comps = torch.tensor([[0.1, 0.0], [0.0, 1.0], [0.0, 0.9]])
    w = torch.tensor([1.0, 1.0])
    a_sum, _ = group_advantages(comps, w, 3, aggregation="sum_then_normalize")
    a_norm, _ = group_advantages(comps, w, 3, aggregation="normalize_then_sum")
    assert a_sum[1] > a_sum[2] > a_sum[0]
    assert a_norm[1] > a_norm[0] > a_norm[2]


def test_normalize_then_sum_by_hand():
    comps = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    w = torch.tensor([1.0, 2.0])
    adv, _ = group_advantages(comps, w, 2, aggregation="normalize_then_sum")
    s = math.sqrt(0.5)                      # Bessel std of {0, 1}
    z = 0.5 / (s + STD_EPS)                 # a normalised +-0.5 deviation
    summed = torch.tensor([z, -z, 2 * z, -2 * z])    # group 1: comp 0 only; group 2: comp 1 x2
    expected = (summed - summed.mean()) / (summed.std() + STD_EPS)
    torch.testing.assert_close(adv, expected)


def test_zero_std_groups_flagged_and_get_zero_advantage():
    comps = torch.tensor([[1.0], [1.0], [0.0], [1.0], [0.0], [0.0]])
    adv, rewards = group_advantages(comps, torch.tensor([1.0]), 2)
    assert zero_std_groups(rewards, 2).tolist() == [True, False, True]
    assert adv[0] == 0 and adv[1] == 0 and adv[4] == 0 and adv[5] == 0


@pytest.mark.parametrize("aggregation,scale", [("sum_then_normalize", "group"),
                                               ("sum_then_normalize", "batch"),
                                               ("sum_then_normalize", "none"),
                                               ("normalize_then_sum", "group")])
def test_matches_trl_advantage_formula(aggregation, scale):
    """Same rewards through TRL's own `nanstd` and the formulas of
    GRPOTrainer._generate_and_score_completions (1.16), replayed step by step."""
    trl_utils = pytest.importorskip("trl.trainer.utils")
    g = torch.Generator().manual_seed(1)
    comps = torch.randint(0, 3, (12, 2), generator=g).float()
    w = torch.tensor([1.0, 0.3])
    ours, _ = group_advantages(comps, w, 4, aggregation=aggregation, scale_rewards=scale)
    nanstd = trl_utils.nanstd
    if aggregation == "sum_then_normalize":
        r = (comps * w).nansum(dim=1)
        mean = torch.nanmean(r.view(-1, 4), dim=1).repeat_interleave(4)
        std = (nanstd(r.view(-1, 4), dim=1).repeat_interleave(4) if scale != "batch"
               else nanstd(r).expand_as(r))
        trl = r - mean if scale == "none" else (r - mean) / (std + 1e-4)
    else:
        grouped = comps.view(-1, 4, 2)
        rk = ((grouped - torch.nanmean(grouped, 1, keepdim=True))
              / (nanstd(grouped, dim=1, keepdim=True) + 1e-4)).view(-1, 2)
        r = (rk * w).nansum(dim=1)
        trl = (r - torch.nanmean(r)) / (nanstd(r) + 1e-4)
    torch.testing.assert_close(ours, torch.nan_to_num(trl, nan=0.0))


def test_broadcast_with_per_episode_normalisation():
    # Episode 0: 3 turns, 2 trainable; episode 1: 1 trainable turn; episode 2: none trainable.
    credit = broadcast_credit([0.5, -1.0, 2.0],
                              [[True, False, True], [True], [False, False]])
    assert credit.advantages == [0.5, 0.5, -1.0]
    assert credit.weights == [0.5, 0.5, 1.0]
    assert credit.episode_index == [0, 0, 1]
    assert credit.turn_index == [0, 2, 0]
    assert len(credit) == 3                 # the count of expanded rows = trainable Turns


def test_broadcast_without_normalisation_weights_every_turn_one():
    credit = broadcast_credit([1.0, 2.0], [[True] * 4, [True]], normalize_per_episode=False)
    assert credit.weights == [1.0] * 5
    assert credit.advantages == [1.0] * 4 + [2.0]


def test_per_episode_weights_sum_to_one_per_episode():
    trainable = [[True] * n for n in (1, 5, 12, 3)]
    credit = broadcast_credit([0.0] * 4, trainable)
    totals = [0.0] * 4
    for e, w in zip(credit.episode_index, credit.weights):
        totals[e] += w
    assert totals == pytest.approx([1.0] * 4)


def test_discounted_returns_by_hand():
    assert discounted_returns([1.0, 0.0, 2.0], 0.5) == [1.0 + 0.5 * 0 + 0.25 * 2, 1.0, 2.0]


def test_per_step_with_terminal_reward_equals_broadcast():
    # Two groups of 2 episodes with 3 steps; reward only at the last step.
    finals = [1.0, 0.0, 0.0, 0.0]
    steps = [[0.0, 0.0, r] for r in finals]
    turn_steps = [[0, 1, 2]] * 4
    trainable = [[True, True, True]] * 4
    per_step = per_step_credit(steps, turn_steps, trainable, 2, gamma=1.0)
    adv, _ = group_advantages(torch.tensor([[r] for r in finals]), torch.tensor([1.0]), 2)
    broadcast = broadcast_credit(adv.tolist(), trainable)
    assert per_step.advantages == pytest.approx(broadcast.advantages)
    assert per_step.weights == broadcast.weights


def test_per_step_discount_credits_early_steps_less():
    # Group of 2: episode 0 earns 1 at step 1 (of 0..1), episode 1 earns 0. gamma 0.5.
    steps = [[0.0, 1.0], [0.0, 0.0]]
    credit = per_step_credit(steps, [[0, 1], [0, 1]], [[True, True], [True, True]], 2,
                             gamma=0.5, scale_rewards="none", normalize_per_episode=False)
    # Step 0 returns: 0.5 vs 0 -> +-0.25; step 1 returns: 1 vs 0 -> +-0.5.
    assert credit.advantages == pytest.approx([0.25, 0.5, -0.25, -0.5])


def test_per_step_rejects_turn_step_outside_episode():
    with pytest.raises(ValueError, match="step 5"):
        per_step_credit([[1.0], [0.0]], [[5], [0]], [[True], [True]], 2)


def test_group_advantages_rejects_bad_shape():
    with pytest.raises(ValueError, match="divisible"):
        group_advantages(torch.zeros(5, 1), torch.ones(1), 2)


def test_every_credit_scheme_builds_the_same_rows_for_a_reward_only_at_the_end():
    """The three schemes share one row builder: same rows, weights and order; with gamma 1
    and one reward at the last step they agree on the advantages too."""
    from memgym.trainer.advantages import (
        broadcast_credit,
        group_advantages,
        per_step_credit,
        step_reward_credit,
    )

    trainable = [[True, False, True], [True, True, True]]
    steps = [[0, 1, 2], [0, 1, 2]]
    rewards = [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    adv, _ = group_advantages(torch.tensor([[1.0], [0.0]]), torch.tensor([1.0]), 2)
    schemes = [broadcast_credit(adv.tolist(), trainable),
               per_step_credit(rewards, steps, trainable, 2),
               step_reward_credit(rewards, steps, trainable, 2)]
    for credit in schemes:
        assert credit.episode_index == [0, 0, 1, 1, 1] and credit.turn_index == [0, 2, 0, 1, 2]
        assert credit.weights == pytest.approx([0.5, 0.5, 1 / 3, 1 / 3, 1 / 3])
    assert schemes[0].advantages == pytest.approx(schemes[1].advantages)
