"""Tests for memgym.trainer.rollout: resumable task sampling, group jobs with shared reset seeds,
Turn-to-row expansion with its count check, token-budget packing and left-padded collation."""

from __future__ import annotations

import math

import pytest
import torch

from memgym.agents.base import Turn
from memgym.agents.episode import Episode
from memgym.errors import ConfigError
from memgym.trainer.advantages import broadcast_credit
from memgym.trainer.rollout import (
    TaskSampler,
    TrainingRow,
    collate,
    episodes_to_rows,
    group_jobs,
    pack_rows,
)


def test_sampler_is_a_permutation_per_epoch_and_resumable():
    s = TaskSampler(list(range(5)), seed=3)
    first = s.take(5)
    assert sorted(first) == list(range(5))
    s2 = TaskSampler(list(range(5)), seed=3)
    s2.take(3)
    state = s2.state_dict()
    s3 = TaskSampler(list(range(5)), seed=3)
    s3.load_state_dict(state)
    assert s3.take(4) == s2.take(4)      # crosses into epoch 1 the same way


def test_sampler_rejects_empty_split():
    with pytest.raises(ConfigError, match="eval_tasks"):
        TaskSampler([], seed=0)


def test_group_jobs_share_reset_seed_and_differ_in_sampling_seed():
    jobs = group_jobs([7, 9], 3, seed=1, rollout=4)
    assert [j.task_id for j in jobs] == [7, 7, 7, 9, 9, 9]
    assert len({j.seed for j in jobs[:3]}) == 1 and jobs[0].seed != jobs[3].seed
    assert len({j.sampling_seed for j in jobs}) == 6
    assert group_jobs([7, 9], 3, seed=1, rollout=4) == jobs
    assert group_jobs([7, 9], 3, seed=1, rollout=5)[0].seed != jobs[0].seed


def _turn(prompt, completion, trainable=True, logprobs=None):
    return Turn(component="memory_update", step=0, prompt="", completion="",
                prompt_ids=prompt, completion_ids=completion,
                logprobs=logprobs if logprobs is not None else [-0.5] * len(completion),
                trainable=trainable)


def test_rows_follow_credit_and_count_is_checked():
    episodes = [Episode(task_id=0, seed=0, turns=[_turn([1, 2], [3]), _turn([4], [5, 6], False),
                                                  _turn([7], [8])]),
                Episode(task_id=0, seed=0, turns=[_turn([1], [2, 3], logprobs=[])])]
    credit = broadcast_credit([1.0, -1.0], [[t.trainable for t in e.turns] for e in episodes])
    rows = episodes_to_rows(episodes, credit)
    assert [(r.episode, r.turn, r.weight, r.advantage) for r in rows] == [
        (0, 0, 0.5, 1.0), (0, 2, 0.5, 1.0), (1, 0, 1.0, -1.0)]
    assert all(math.isnan(x) for x in rows[2].sampler_logprobs)   # unknown -> NaN
    short = broadcast_credit([1.0], [[True]])
    with pytest.raises(RuntimeError, match="rows for 3 trainable"):
        episodes_to_rows(episodes, short)


def test_turn_without_token_ids_cannot_be_trained():
    episodes = [Episode(task_id=0, seed=0, turns=[_turn([], [])])]
    with pytest.raises(ConfigError, match="no token ids"):
        episodes_to_rows(episodes, broadcast_credit([1.0], [[True]]))


def test_pack_rows_respects_budget_and_keeps_every_row():
    lengths = [10, 3, 7, 7, 2, 12, 1]
    packs = pack_rows(lengths, token_budget=20)
    assert sorted(i for p in packs for i in p) == list(range(7))
    for p in packs:
        assert len(p) == 1 or len(p) * max(lengths[i] for i in p) <= 20
    assert pack_rows([50], token_budget=20) == [[0]]     # an oversized row goes alone


def test_collate_left_pads_so_completions_end_together():
    rows = [TrainingRow([1, 2, 3], [4, 5], [-0.1, -0.2], 1.0, 0.5, 0, 0),
            TrainingRow([6], [7, 8, 9], [-0.3, -0.4, -0.5], -1.0, 1.0, 1, 0)]
    mb = collate(rows, [0, 1], pad_id=0, device="cpu")
    assert mb.input_ids.tolist() == [[1, 2, 3, 4, 5], [0, 6, 7, 8, 9]]
    assert mb.attention_mask.tolist() == [[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]]
    assert mb.mask.tolist() == [[0, 1, 1], [1, 1, 1]]
    assert mb.width == 3 and mb.num_tokens == 9
    assert torch.isnan(mb.sampler_logps[0, 0])
    torch.testing.assert_close(mb.sampler_logps[1], torch.tensor([-0.3, -0.4, -0.5]))
    assert mb.advantages.tolist() == [1.0, -1.0] and mb.weights.tolist() == [0.5, 1.0]
