"""From tasks to training tensors: grouped episode jobs, env pools, rows and packed micro-batches.

    task ids --group_jobs--> EpisodeJobs (G per task, same reset seed, distinct sampling seeds)
             --run_episodes (memgym.agents.episode)--> Episodes with Turns
             --episodes_to_rows + RowCredit--> TrainingRows (one per trainable Turn)
             --pack_rows / collate--> MicroBatches of left-padded tensors within a token budget

The episode runner, its env pool (`EnvPool`) and the seed helper (`derive_seed`) are
memgym.agents.episode's, shared with evaluation; this module only arranges their inputs
and turns their outputs into what the loss consumes, token in, token out: a row's ids are the
Turn's ids, never re-tokenised text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from memgym._async import run_sync
from memgym.agents.episode import EnvPool, Episode, EpisodeJob, derive_seed, run_episodes
from memgym.errors import ConfigError
from memgym.trainer.advantages import RowCredit

__all__ = [
    "MicroBatch",
    "TaskSampler",
    "TrainingRow",
    "collate",
    "collect_episodes",
    "episodes_to_rows",
    "group_jobs",
    "pack_rows",
]


class TaskSampler:
    """Draws training task ids without replacement, epoch after epoch, resumably.

    Epoch e is a permutation of `task_ids` from seed (seed, e); the state is (epoch, position),
    so a resumed run draws exactly the tasks the uninterrupted run would have.
    """

    def __init__(self, task_ids: Sequence[int], seed: int):
        if not task_ids:
            raise ConfigError("no training tasks: the task source is empty, or eval_tasks "
                              "holds out every task; lower eval_tasks")
        self.task_ids = list(task_ids)
        self.seed = seed
        self.epoch = 0
        self.pos = 0

    def _order(self) -> list[int]:
        rng = np.random.default_rng(derive_seed(self.seed, self.epoch))
        return [self.task_ids[i] for i in rng.permutation(len(self.task_ids))]

    def take(self, n: int) -> list[int]:
        """The next `n` task ids (crossing into the next epoch when this one runs out)."""
        out: list[int] = []
        order = self._order()
        while len(out) < n:
            if self.pos >= len(order):
                self.epoch, self.pos = self.epoch + 1, 0
                order = self._order()
            out.append(order[self.pos])
            self.pos += 1
        return out

    def state_dict(self) -> dict[str, int]:
        """The position, for checkpoints."""
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore a position saved by `state_dict`."""
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])


def group_jobs(task_ids: Sequence[int], num_generations: int, *, seed: int, rollout: int
               ) -> list[EpisodeJob]:
    """G jobs per task with the group's shared reset seed and distinct sampling seeds.

    Jobs are ordered group by group (task 0's G jobs, then task 1's, ...), the layout
    `group_advantages` expects. `key` is (group, slot).
    """
    jobs = []
    for g, task_id in enumerate(task_ids):
        reset_seed = derive_seed(seed, rollout, g)
        for i in range(num_generations):
            jobs.append(EpisodeJob(task_id=int(task_id), seed=reset_seed,
                                   sampling_seed=derive_seed(seed, rollout, g, i + 1),
                                   key=(g, i)))
    return jobs


def collect_episodes(pool: EnvPool, agent: Any, jobs: Sequence[EpisodeJob], *,
                     concurrency: int) -> list[Episode]:
    """Run the jobs concurrently (the backend batches their LLM calls), episodes in job order."""
    episodes = run_sync(run_episodes(pool, agent, jobs, concurrency=concurrency))
    if len(episodes) != len(jobs):
        raise RuntimeError(f"the runner returned {len(episodes)} episodes for {len(jobs)} jobs")
    return episodes


@dataclass
class TrainingRow:
    """One trainable Turn, ready for the loss.

    Attributes:
        prompt_ids: the exact ids the model saw.
        completion_ids: the sampled ids (EOS included when the call stopped on it).
        sampler_logprobs: the sampler's log-prob of each completion id (NaN when unknown).
        advantage: the credit of every token of the row.
        weight: the row's weight in the loss (1/T under per-episode normalisation).
        episode, turn: where the row came from.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    sampler_logprobs: list[float]
    advantage: float
    weight: float
    episode: int
    turn: int

    @property
    def length(self) -> int:
        """Prompt plus completion tokens."""
        return len(self.prompt_ids) + len(self.completion_ids)


def episodes_to_rows(episodes: Sequence[Episode], credit: RowCredit) -> list[TrainingRow]:
    """Expand credited Turns into rows, checking the count end to end.

    Raises:
        ConfigError: a trainable Turn has no token ids (a backend that hides them, such as a
            hosted chat API, cannot be trained on).
        RuntimeError: the credit does not cover exactly the trainable Turns.
    """
    expected = sum(1 for e in episodes for t in e.turns if t.trainable)
    if len(credit) != expected:
        raise RuntimeError(f"credit assignment produced {len(credit)} rows for {expected} "
                           "trainable Turns")
    rows = []
    for adv, w, e, t in zip(credit.advantages, credit.weights, credit.episode_index,
                            credit.turn_index):
        turn = episodes[e].turns[t]
        if not turn.trainable:
            raise RuntimeError(f"episode {e} Turn {t} is credited but not trainable")
        if not turn.completion_ids or not turn.prompt_ids:
            raise ConfigError(
                f"episode {e} Turn {t} ({turn.component}) has no token ids: the backend does not "
                "return them, so it cannot be trained on; train with the transformers backend")
        lps = list(turn.logprobs)
        if len(lps) != len(turn.completion_ids):
            lps = [float("nan")] * len(turn.completion_ids)
        rows.append(TrainingRow(list(turn.prompt_ids), list(turn.completion_ids), lps,
                                float(adv), float(w), e, t))
    return rows


@dataclass
class MicroBatch:
    """Left-padded tensors of some rows: every completion ends at the last position.

    Shapes: B rows, L = longest prompt + completion, K = longest completion.
    """

    rows: list[int]                  # indices into the step's row list
    input_ids: torch.Tensor          # [B, L]
    attention_mask: torch.Tensor     # [B, L]
    mask: torch.Tensor               # [B, K] 1 on completion tokens
    advantages: torch.Tensor         # [B]
    weights: torch.Tensor            # [B]
    sampler_logps: torch.Tensor      # [B, K] NaN where unknown or padding
    old_logps: torch.Tensor | None = None   # [B, K] filled when the batch is reused
    ref_logps: torch.Tensor | None = None   # [B, K] filled when beta > 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> MicroBatch:
        """A copy whose tensors are on `device`."""
        moved = {name: (value.to(device) if isinstance(value, torch.Tensor) else value)
                 for name, value in vars(self).items()}
        return MicroBatch(**moved)

    @property
    def width(self) -> int:
        """K, the completion positions."""
        return self.mask.shape[1]

    @property
    def num_tokens(self) -> int:
        """Real (unpadded) tokens in the batch."""
        return int(self.attention_mask.sum())


def pack_rows(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Group row indices into micro-batches whose padded size (rows x longest) fits the budget.

    Rows are taken longest first, so each batch pads to its first row; a row longer than the
    budget gets a batch of its own. Deterministic for the same lengths.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * longest > token_budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def collate(rows: Sequence[TrainingRow], indices: Sequence[int], *, pad_id: int,
            device: torch.device | str) -> MicroBatch:
    """Build a MicroBatch from `rows[i] for i in indices`, left-padding prompt+completion."""
    chosen = [rows[i] for i in indices]
    length = max(r.length for r in chosen)
    width = max(len(r.completion_ids) for r in chosen)
    B = len(chosen)
    ids = torch.full((B, length), pad_id, dtype=torch.long)
    amask = torch.zeros((B, length), dtype=torch.long)
    mask = torch.zeros((B, width), dtype=torch.float32)
    sampler = torch.full((B, width), float("nan"), dtype=torch.float32)
    for b, r in enumerate(chosen):
        seq = r.prompt_ids + r.completion_ids
        ids[b, length - len(seq):] = torch.tensor(seq, dtype=torch.long)
        amask[b, length - len(seq):] = 1
        c = len(r.completion_ids)
        mask[b, width - c:] = 1.0
        sampler[b, width - c:] = torch.tensor(r.sampler_logprobs, dtype=torch.float32)
    return MicroBatch(
        rows=list(indices), input_ids=ids.to(device), attention_mask=amask.to(device),
        mask=mask.to(device),
        advantages=torch.tensor([r.advantage for r in chosen], dtype=torch.float32, device=device),
        weights=torch.tensor([r.weight for r in chosen], dtype=torch.float32, device=device),
        sampler_logps=sampler.to(device))
