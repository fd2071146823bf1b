"""Group-relative advantages from multi-component rewards, and their credit to training rows.

Pure functions on tensors and lists. The shapes, with N tasks per batch, G episodes per task
(`num_generations`), C reward components and R training rows (one per trainable Turn):

    components [N*G, C] --group_advantages--> advantages [N*G]  (episode level)
    advantages [N*G]    --broadcast_credit--> per-row advantage and weight  [R]
    step rewards        --per_step_credit---> per-row advantage and weight  [R]
    step rewards        --step_reward_credit-> per-row advantage and weight [R]

Episodes of one group are consecutive (rows g*G .. g*G+G-1 belong to task g). Standard
deviations are Bessel-corrected and the epsilon is 1e-4, as in TRL, so memgym's advantages equal
TRL's for the same rewards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "STD_EPS",
    "RowCredit",
    "broadcast_credit",
    "discounted_returns",
    "fixed_baseline_advantages",
    "flat_step_groups",
    "group_advantages",
    "per_step_credit",
    "step_reward_credit",
    "zero_std_groups",
]

STD_EPS = 1e-4
"""Added to the std before dividing (TRL's value), so zero-variance groups give 0, not NaN."""


def _std(x: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    # Bessel-corrected like TRL's nanstd; a single value has std 0 (not NaN) here because a
    # group of one carries no baseline information and must not poison the batch.
    n = x.numel() if dim is None else x.shape[dim]
    if n < 2:
        return torch.zeros_like(x.mean() if dim is None else x.mean(dim=dim, keepdim=keepdim))
    return x.std() if dim is None else x.std(dim=dim, keepdim=keepdim)


def zero_std_groups(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Which groups have all-equal rewards (no learning signal): bool [N] from rewards [N*G]."""
    grouped = rewards.view(-1, num_generations)                   # [N, G]
    return torch.isclose(_std(grouped, dim=1), torch.zeros(()), atol=1e-8)   # [N]


def group_advantages(components: torch.Tensor, weights: torch.Tensor, num_generations: int, *,
                     aggregation: str = "sum_then_normalize", scale_rewards: str = "group",
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Episode advantages from reward components, normalised within each task's group.

    Args:
        components: [N*G, C] each episode's reward components (unweighted values).
        weights: [C] component weights.
        num_generations: G; consecutive blocks of G rows form a group.
        aggregation: "sum_then_normalize" (weighted sum, centred on the group mean, divided by
            the group or batch std per `scale_rewards`) or "normalize_then_sum" (each component
            centred and scaled within its group, weighted sum, then batch-normalised; TRL's
            definition, where `scale_rewards` does not apply).
        scale_rewards: "group", "batch" or "none" (sum_then_normalize only).

    Returns:
        (advantages [N*G], rewards [N*G]) where rewards is the weighted sum of components.
    """
    if components.dim() != 2 or components.shape[0] % num_generations:
        raise ValueError(f"components must be [N*G, C] with N*G divisible by G="
                         f"{num_generations}, got shape {tuple(components.shape)}")
    components = components.float()
    weights = weights.float().to(components.device)
    rewards = components @ weights                                     # [N*G]
    grouped = rewards.view(-1, num_generations)                        # [N, G]
    if aggregation == "sum_then_normalize":
        centred = (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1)   # [N*G]
        if scale_rewards == "group":
            std = _std(grouped, dim=1, keepdim=True).expand_as(grouped).reshape(-1)
        elif scale_rewards == "batch":
            std = _std(rewards).expand_as(rewards)
        elif scale_rewards == "none":
            return centred, rewards
        else:
            raise ValueError(f"scale_rewards={scale_rewards!r}; choose group, batch or none")
        return centred / (std + STD_EPS), rewards
    if aggregation == "normalize_then_sum":
        per_comp = components.view(-1, num_generations, components.shape[1])   # [N, G, C]
        mean_k = per_comp.mean(dim=1, keepdim=True)                            # [N, 1, C]
        std_k = _std(per_comp, dim=1, keepdim=True)                            # [N, 1, C]
        normed = ((per_comp - mean_k) / (std_k + STD_EPS)).reshape(-1, components.shape[1])
        summed = normed @ weights                                              # [N*G]
        return (summed - summed.mean()) / (_std(summed) + STD_EPS), rewards
    raise ValueError(f"aggregation={aggregation!r}; choose sum_then_normalize or "
                     "normalize_then_sum")


@dataclass(frozen=True)
class RowCredit:
    """What each training row (one trainable Turn) is credited with.

    Attributes:
        advantages: [R] the advantage on every completion token of the row.
        weights: [R] the row's weight in the loss (1/T for an episode with T trainable Turns
            under per-episode normalisation, else 1).
        episode_index: [R] which episode (row of the [N*G] batch) the row came from.
        turn_index: [R] which Turn of that episode.
    """

    advantages: list[float]
    weights: list[float]
    episode_index: list[int]
    turn_index: list[int]

    def __len__(self) -> int:
        return len(self.advantages)


def broadcast_credit(advantages: Sequence[float], trainable: Sequence[Sequence[bool]], *,
                     normalize_per_episode: bool = True) -> RowCredit:
    """Give every trainable Turn its episode's advantage (MemAgent's credit assignment).

    Args:
        advantages: [E] one advantage per episode.
        trainable: per episode, per Turn, whether the Turn is trained.
        normalize_per_episode: weight each of an episode's T trainable Turns by 1/T before the
            Turns become rows, so every episode carries the same total weight however many
            chunks its document had.

    Returns:
        RowCredit with one entry per trainable Turn, episodes in order, Turns in order.
    """
    if len(advantages) != len(trainable):
        raise ValueError(f"{len(advantages)} advantages for {len(trainable)} episodes")
    return _credit_rows(trainable, lambda e, i: float(advantages[e]), normalize_per_episode)


def _credit_rows(trainable: Sequence[Sequence[bool]], advantage: Callable[[int, int], float],
                 normalize_per_episode: bool) -> RowCredit:
    """The one row builder of every credit scheme: a row per trainable Turn (episodes in
    order, Turns in order) with `advantage(episode, turn)`, weighted 1/T over an episode's T
    trainable Turns under per-episode normalisation (else 1)."""
    adv, wts, eps, turns = [], [], [], []
    for e, flags in enumerate(trainable):
        idx = [i for i, f in enumerate(flags) if f]
        w = 1.0 / len(idx) if (normalize_per_episode and idx) else 1.0
        for i in idx:
            adv.append(advantage(e, i))
            wts.append(w)
            eps.append(e)
            turns.append(i)
    return RowCredit(adv, wts, eps, turns)


def _check_turn_steps(credited: Sequence[set[int]], num_steps: Sequence[int]) -> None:
    """Every trainable Turn's step is one of its episode's env steps."""
    for e, steps in enumerate(credited):
        bad = [t for t in sorted(steps) if not 0 <= t < num_steps[e]]
        if bad:
            raise ValueError(f"episode {e} has a Turn at step {bad[0]}, but the episode has "
                             f"{num_steps[e]} env steps")


def discounted_returns(step_rewards: Sequence[float], gamma: float) -> list[float]:
    """Return-to-go at every step: G_t = r_t + gamma * G_{t+1}; [S] -> [S]."""
    out = [0.0] * len(step_rewards)
    running = 0.0
    for t in range(len(step_rewards) - 1, -1, -1):
        running = float(step_rewards[t]) + gamma * running
        out[t] = running
    return out


def per_step_credit(step_rewards: Sequence[Sequence[float]],
                    turn_steps: Sequence[Sequence[int]],
                    trainable: Sequence[Sequence[bool]], num_generations: int, *,
                    gamma: float = 1.0, scale_rewards: str = "group",
                    normalize_per_episode: bool = True) -> RowCredit:
    """Credit each Turn with the group-relative discounted return from its env step on.

    For every group and env step t, the returns G_t of the group's episodes that reached step t
    are centred on their mean and scaled like `group_advantages` (group std of that step,
    batch std of every (episode, step) return, or none). A Turn made at step t gets its
    episode's normalised G_t. With gamma = 1 and a reward only at the last step this equals
    `broadcast_credit` of `group_advantages` (tested).

    Args:
        step_rewards: [E][S_e] the weighted reward of each env step of each episode.
        turn_steps: [E][T_e] the env step each Turn belongs to (`Turn.step`).
        trainable: [E][T_e] whether each Turn is trained.
        num_generations: G; consecutive blocks of G episodes form a group.
        gamma: the discount.
        scale_rewards: "group", "batch" or "none".
        normalize_per_episode: weight each of an episode's T trainable Turns by 1/T.
    """
    n_eps = len(step_rewards)
    if n_eps % num_generations or not (n_eps == len(turn_steps) == len(trainable)):
        raise ValueError("step_rewards, turn_steps and trainable must list the same N*G "
                         "episodes, N*G divisible by num_generations")
    _check_turn_steps(_credited_steps(turn_steps, trainable), [len(r) for r in step_rewards])
    returns = [discounted_returns(r, gamma) for r in step_rewards]           # [E][S_e]
    normed: list[list[float]] = [[0.0] * len(r) for r in returns]
    all_returns = torch.tensor([g for r in returns for g in r], dtype=torch.float32)
    batch_std = float(_std(all_returns)) if all_returns.numel() else 0.0
    for start in range(0, n_eps, num_generations):
        group = range(start, start + num_generations)
        depth = max((len(returns[e]) for e in group), default=0)
        for t in range(depth):
            members = [e for e in group if t < len(returns[e])]
            vals = torch.tensor([returns[e][t] for e in members], dtype=torch.float32)  # [g_t]
            for e, v in zip(members, _scale(vals, scale_rewards, batch_std).tolist()):
                normed[e][t] = v
    return _credit_rows(trainable, lambda e, i: normed[e][turn_steps[e][i]],
                        normalize_per_episode)


STEP_BASELINES = ("step", "group")
"""Where `step_reward_credit` takes a Turn's baseline from (see its docstring)."""


def _scale(values: torch.Tensor, scale_rewards: str, batch_std: float) -> torch.Tensor:
    """Centre `values` on their mean and scale them as `group_advantages` does."""
    centred = values - values.mean()
    if scale_rewards == "group":
        return centred / (_std(values) + STD_EPS)
    if scale_rewards == "batch":
        return centred / (batch_std + STD_EPS)
    if scale_rewards == "none":
        return centred
    raise ValueError(f"scale_rewards={scale_rewards!r}; choose group, batch or none")


def step_reward_credit(step_rewards: Sequence[Sequence[float]],
                       turn_steps: Sequence[Sequence[int]],
                       trainable: Sequence[Sequence[bool]], num_generations: int, *,
                       baseline: str = "step", scale_rewards: str = "group",
                       normalize_per_episode: bool = True) -> RowCredit:
    """Credit each Turn with the group-relative reward of the env step its action went to.

    Memory-R1's credit: a manager's edit is rewarded by the frozen reader's EM right after that
    edit, an answer by its own EM/F1; no later reward flows back (unlike `per_step_credit`'s
    return-to-go). Only the steps that hold a trainable Turn take part.

    Baselines (`baseline`):
      - "step" (default): the G episodes' rewards at the same step index t. The G episodes of
        a group share the reset seed, so step t is the same dialogue turn (or question) in
        each; their G values are G samples of one decision, which is GRPO's group (Memory-R1
        samples G operations per turn). An easy step (no linked question: every action
        scores 0) gives advantage 0 instead of a negative one.
      - "group": every (episode, step) of the group that holds a trainable Turn, pooled. For
        envs whose episodes do not line up step by step (different question counts); it mixes
        easy and hard decisions, so a Turn is also credited for its step's difficulty.
    Scaling follows `group_advantages` (the std of the baseline's values, the batch's std over
    every credited step, or none). A group of one step value has advantage 0.

    Args:
        step_rewards: [E][S_e] the weighted reward of each env step of each episode.
        turn_steps: [E][T_e] the env step of each Turn (`Turn.step`).
        trainable: [E][T_e] whether each Turn is trained.
        num_generations: G; consecutive blocks of G episodes form a group.
        baseline: "step" or "group", as above.
        scale_rewards: "group", "batch" or "none".
        normalize_per_episode: weight each of an episode's T trainable Turns by 1/T.
    """
    n_eps = len(step_rewards)
    if n_eps % num_generations or not (n_eps == len(turn_steps) == len(trainable)):
        raise ValueError("step_rewards, turn_steps and trainable must list the same N*G "
                         "episodes, N*G divisible by num_generations")
    if baseline not in STEP_BASELINES:
        raise ValueError(f"baseline={baseline!r}; choose one of {STEP_BASELINES}")
    credited = _credited_steps(turn_steps, trainable)
    _check_turn_steps(credited, [len(r) for r in step_rewards])
    every = [float(step_rewards[e][t]) for e in range(n_eps) for t in sorted(credited[e])]
    batch_std = float(_std(torch.tensor(every))) if every else 0.0
    normed: list[dict[int, float]] = [{} for _ in range(n_eps)]
    for start in range(0, n_eps, num_generations):
        for pool in _baseline_pools(credited, start, num_generations, baseline):
            vals = torch.tensor([float(step_rewards[e][t]) for e, t in pool])   # [P]
            for (e, t), v in zip(pool, _scale(vals, scale_rewards, batch_std).tolist()):
                normed[e][t] = v
    return _credit_rows(trainable, lambda e, i: normed[e][turn_steps[e][i]],
                        normalize_per_episode)


def _credited_steps(turn_steps: Sequence[Sequence[int]],
                    trainable: Sequence[Sequence[bool]]) -> list[set[int]]:
    """Per episode, the env steps that hold a trainable Turn."""
    return [{steps[i] for i, f in enumerate(flags) if f}
            for steps, flags in zip(turn_steps, trainable)]


def _baseline_pools(credited: Sequence[set[int]], start: int, num_generations: int,
                    baseline: str) -> list[list[tuple[int, int]]]:
    """The (episode, step) pools of the group starting at `start` that share a baseline: one per
    step index ("step"), or all of the group's credited steps ("group"); none empty."""
    group = range(start, start + num_generations)
    if baseline == "step":
        return [[(e, t) for e in group if t in credited[e]]
                for t in sorted(set().union(*(credited[e] for e in group)))]
    pool = [(e, t) for e in group for t in sorted(credited[e])]
    return [pool] if pool else []


def flat_step_groups(step_rewards: Sequence[Sequence[float]],
                     turn_steps: Sequence[Sequence[int]],
                     trainable: Sequence[Sequence[bool]], num_generations: int, *,
                     baseline: str = "step") -> torch.Tensor:
    """Which groups teach nothing under step credit: bool [N], True when every
    `step_reward_credit` advantage of the group is 0 under `baseline`.

    "step": every step's pool (the G episodes' rewards at step t) is flat, even if steps differ
    from each other (an episode scoring 1 at step 4 and 0 elsewhere, as all its G siblings do,
    teaches nothing). "group": every credited reward of the group is equal. The step-credit
    counterpart of `zero_std_groups`.
    """
    if baseline not in STEP_BASELINES:
        raise ValueError(f"baseline={baseline!r}; choose one of {STEP_BASELINES}")
    credited = _credited_steps(turn_steps, trainable)
    flags = []
    for start in range(0, len(step_rewards), num_generations):
        values = [[float(step_rewards[e][t]) for e, t in pool]
                  for pool in _baseline_pools(credited, start, num_generations, baseline)]
        flags.append(all(max(v) - min(v) <= 1e-8 for v in values))
    return torch.tensor(flags, dtype=torch.bool)


def fixed_baseline_advantages(components: torch.Tensor, weights: torch.Tensor, baseline: float
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """REINFORCE advantages with a constant baseline: reward - baseline, no normalisation.

    RMM trains its reranker this way (baseline 0.5). components [R, C], weights [C] ->
    (advantages [R], rewards [R]), rewards being the weighted sum of components.
    """
    if components.dim() != 2:
        raise ValueError(f"components must be [R, C], got shape {tuple(components.shape)}")
    rewards = components.float() @ weights.float().to(components.device)   # [R]
    return rewards - float(baseline), rewards
