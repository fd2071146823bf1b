"""The GRPO loss as pure functions: log-probs, the clipped surrogate, k3 KL, TIS, aggregation.

Shapes: B rows in a micro-batch, K completion positions (the longest completion, rows
left-padded so every completion ends at the last position). `mask` [B, K] is 1 on a row's own
completion tokens and 0 on padding, prompt and observation tokens. The loss applies to any
tensor of action log-probs, so a non-LLM policy (RMM's reranker: log-probs of the memories it
picked) trains through `grpo_loss` unchanged.

The four `loss_type`s are TRL's (1.16, `GRPOTrainer._compute_loss`), with a row weight added:
memgym weights each row (a trainable Turn) by 1/T of its episode, and with all weights 1 the
aggregators equal TRL's exactly (tested against TRL's own code). `LossNorm` carries the totals of
the whole optimizer step, so summing the micro-batch losses gives the loss of the whole batch
whatever the packing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "AGGREGATORS",
    "LossNorm",
    "completion_logprobs",
    "grpo_loss",
    "k3_kl",
    "tis_weights",
    "token_logprobs",
]


@dataclass(frozen=True)
class LossNorm:
    """Optimizer-step totals that the aggregators divide by.

    Attributes:
        total_row_weight: sum of the row weights of every row in the optimizer step.
        total_token_weight: sum over those rows of weight x completion tokens.
        num_microbatches: micro-batches the step is split into (bnpo averages their means).
        max_completion_length: dr_grpo's constant per-row token count.
    """

    total_row_weight: float
    total_token_weight: float
    num_microbatches: int = 1
    max_completion_length: int = 1024


def _agg_grpo(loss, mask, w, norm):       # mean over rows of each row's token mean
    return (w * (loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).sum() / norm.total_row_weight


def _agg_bnpo(loss, mask, w, norm):       # token mean over the micro-batch, then over micro-batches
    wm = mask * w[:, None]
    return (loss * wm).sum() / wm.sum().clamp(min=1e-8) / norm.num_microbatches


def _agg_dr_grpo(loss, mask, w, norm):    # token sum / (rows x max_completion_length)
    total = norm.total_row_weight * norm.max_completion_length
    return (loss * mask * w[:, None]).sum() / total


def _agg_dapo(loss, mask, w, norm):       # token mean over the whole optimizer step
    return (loss * mask * w[:, None]).sum() / max(norm.total_token_weight, 1e-8)


Aggregator = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, LossNorm], torch.Tensor]
AGGREGATORS: dict[str, Aggregator] = {
    "grpo": _agg_grpo, "bnpo": _agg_bnpo, "dr_grpo": _agg_dr_grpo, "dapo": _agg_dapo,
}
"""loss_type -> (per_token_loss [B, K], mask [B, K], row_weights [B], LossNorm) -> scalar."""


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, *, with_entropy: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probability of each target token, and optionally the entropy, from logits.

    One row at a time in float32, so the transient is [K, V] rather than [B, K, V].

    Args:
        logits: [B, K, V] (already divided by the temperature).
        targets: [B, K] token ids.

    Returns:
        (logps [B, K] float32, entropy [B, K] float32 without gradient, or None).
    """
    logps, ents = [], []
    for row_logits, row_targets in zip(logits, targets):
        row = row_logits.float()                                        # [K, V]
        lse = torch.logsumexp(row, dim=-1)                              # [K]
        logps.append(row.gather(-1, row_targets[:, None]).squeeze(-1) - lse)
        if with_entropy:
            with torch.no_grad():
                probs = torch.softmax(row, dim=-1)
                ents.append(lse - (probs * row).sum(-1))
    return torch.stack(logps), (torch.stack(ents) if with_entropy else None)


def completion_logprobs(model: torch.nn.Module, input_ids: torch.Tensor,
                        attention_mask: torch.Tensor, completion_width: int, *,
                        temperature: float = 1.0, with_entropy: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs of the last `completion_width` tokens under a causal LM.

    Rows are left-padded (prompt then completion, ending at the last position), so only the
    final K+1 logits are computed (`logits_to_keep`): position i's logits predict token i+1.
    Position ids count real tokens only, so left padding does not shift positions.

    Args:
        model: a transformers causal LM (peft-wrapped or not).
        input_ids: [B, L] left-padded prompt + completion ids.
        attention_mask: [B, L] 1 on real tokens.
        completion_width: K, the longest completion in the batch.
        temperature: logits are divided by it, as when sampling.
        with_entropy: also return the per-token entropy (no gradient).

    Returns:
        (logps [B, K], entropy [B, K] or None); positions before a row's completion are
        garbage that `mask` removes.
    """
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)              # [B, L]
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                use_cache=False, logits_to_keep=completion_width + 1)
    logits = out.logits[:, -(completion_width + 1):-1, :]                          # [B, K, V]
    if temperature != 1.0:
        logits = logits / temperature
    return token_logprobs(logits, input_ids[:, -completion_width:], with_entropy=with_entropy)


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 ("low-variance") KL estimate per token: exp(r) - r - 1, r = ref - logp."""
    r = ref_logps - logps                                               # [B, K]
    return torch.exp(r) - r - 1


def tis_weights(old_logps: torch.Tensor, sampler_logps: torch.Tensor, mask: torch.Tensor,
                cap: float) -> torch.Tensor:
    """Truncated importance weights min(exp(old - sampler), cap) per token, without gradient.

    The sampler (a batched generate, vLLM, bf16 kernels) and the trainer's forward assign
    slightly different probabilities to the same tokens; weighting by their ratio keeps the
    gradient on-policy for the trainer's distribution. Tokens without a sampler log-prob (NaN)
    and masked tokens get weight 1.
    """
    diff = torch.nan_to_num((old_logps - sampler_logps).detach(), nan=0.0) * mask  # [B, K]
    return torch.exp(diff).clamp(max=cap)


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, row_weights: torch.Tensor, norm: LossNorm, *,
              loss_type: str = "dapo", epsilon_low: float = 0.2, epsilon_high: float = 0.2,
              beta: float = 0.0, ref_logps: torch.Tensor | None = None,
              is_weights: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped GRPO surrogate with optional k3 KL and importance weights, aggregated.

    Args:
        logps: [B, K] current policy log-probs (with gradient).
        old_logps: [B, K] log-probs of the policy that produced the rollout (no gradient);
            pass `logps.detach()` when the batch is trained once (ratio 1, gradient intact).
        advantages: [B] one advantage per row (broadcast over its tokens).
        mask: [B, K] 1 on trained tokens.
        row_weights: [B] each row's weight (1/T per-episode normalisation, or 1).
        norm: the optimizer step's totals.
        loss_type: a key of AGGREGATORS.
        epsilon_low, epsilon_high: the clip range [1 - low, 1 + high].
        beta: weight of the k3 KL against `ref_logps`.
        is_weights: [B, K] truncated importance weights (see `tis_weights`) or None.

    Returns:
        (loss, stats) where stats holds masked token sums for logging: "tokens",
        "clip_low", "clip_high", "clip_region", and "kl" when beta > 0.
    """
    ratio = torch.exp(logps - old_logps)                                 # [B, K]
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)      # [B, K]
    adv = advantages[:, None]                                            # [B, 1]
    per_token = -torch.min(ratio * adv, clipped * adv)                   # [B, K]
    if is_weights is not None:
        per_token = per_token * is_weights
    kl = None
    if beta != 0.0:
        kl = k3_kl(logps, ref_logps)                                     # [B, K]
        per_token = per_token + beta * kl
    loss = AGGREGATORS[loss_type](per_token, mask, row_weights, norm)

    with torch.no_grad():
        low = ((ratio < 1 - epsilon_low) & (adv < 0)).float() * mask
        high = ((ratio > 1 + epsilon_high) & (adv > 0)).float() * mask
        stats = {"tokens": mask.sum(), "clip_low": low.sum(), "clip_high": high.sum(),
                 "clip_region": ((low + high) > 0).float().sum()}
        if kl is not None:
            stats["kl"] = (kl * mask).sum()
    return loss, stats
