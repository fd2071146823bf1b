"""RMM's learnable reranker: a residual linear map of query and memory embeddings, sampled top-M.

Tan et al. (2025), "In Prospect and Retrospect: Reflective Memory Management for Long-term
Personalized Dialogue Agents", section 4 (retrospective reflection):

    q' = q + W_q q,   m'_i = m_i + W_m m_i,   s_i = q' . m'_i

over the top-K (K = 20) memories the retriever found; the top-M (M = 5) are *sampled* with
Gumbel noise and a softmax at temperature tau = 0.5, so the reranker explores and has a
log-probability of what it picked. `W_q` and `W_m` start at zero, so the untrained reranker
ranks exactly as the encoder's dot product does (the identity-plus-zero residual).

Sampling (seeded by a `torch.Generator`): the candidates' logits are `s / tau`; Gumbel noise
`g_i = -log(-log u_i)` is added and the M largest of `s_i / tau + g_i` are taken in order. This is
the Gumbel-top-k trick (Kool et al., 2019): the ordered picks are an exact sample of the
Plackett-Luce distribution with logits `s / tau` (M draws without replacement from the softmax).

Log-probabilities (`MemoryReranker.log_probs`, one value per pick, so each pick can carry its
own reward):
  - `estimator="plackett_luce"` (default, exact): pick k's log-prob is
    `s_{c_k}/tau - logsumexp_{j not in c_1..c_{k-1}} s_j/tau`; their sum is the log-probability
    of the ordered top-M that was sampled.
  - `estimator="rmm"` (the paper's REINFORCE term, `log P(M_i | q)` of each chosen memory):
    `log softmax(s / tau)_{c_k}` over all K candidates, for every pick. It ignores that later
    picks exclude earlier ones, so it is not the exact log-probability of the sample.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from memgym.errors import ConfigError

__all__ = ["ESTIMATORS", "MemoryReranker", "RerankSample"]

ESTIMATORS = ("plackett_luce", "rmm")
"""The log-probability estimators `MemoryReranker` offers (see the module docstring)."""


@dataclass(frozen=True)
class RerankSample:
    """One top-M the reranker sampled for one question: what the trainer re-scores.

    Attributes:
        query: [D] the question's embedding.
        memories: [K, D] the K candidates' embeddings, in the retriever's order.
        chosen: the M picked candidate positions (0..K-1), in pick order.
        logp: [M] each pick's log-probability at sampling time (no gradient).
        candidate_ids: the K candidates' bank ids (for rewards from citations).
        step: the env step of the question (for matching it to the env's info).
    """

    query: torch.Tensor
    memories: torch.Tensor
    chosen: tuple[int, ...]
    logp: torch.Tensor
    candidate_ids: tuple[str, ...] = ()
    step: int = -1

    @property
    def chosen_ids(self) -> tuple[str, ...]:
        """The bank ids of the picked memories, in pick order."""
        return tuple(self.candidate_ids[i] for i in self.chosen) if self.candidate_ids else ()


class MemoryReranker(nn.Module):
    """RMM's reranker `s = (q + W_q q) . (m + W_m m)` with Gumbel top-M sampling.

    Args:
        dim: the embedding size D (the encoder's: 384 for all-MiniLM-L6-v2).
        top_m: M, memories kept (RMM: 5).
        tau: the softmax temperature (RMM: 0.5).
        estimator: "plackett_luce" or "rmm" (see the module docstring).
    """

    def __init__(self, dim: int, *, top_m: int = 5, tau: float = 0.5,
                 estimator: str = "plackett_luce"):
        super().__init__()
        if not isinstance(dim, int) or dim < 1:
            raise ConfigError(f"reranker dim={dim!r} must be a positive integer (the encoder's "
                              "embedding size)")
        if top_m < 1:
            raise ConfigError(f"reranker top_m={top_m} must be at least 1 (RMM: 5)")
        if not tau > 0:
            raise ConfigError(f"reranker tau={tau} must be > 0 (RMM: 0.5)")
        if estimator not in ESTIMATORS:
            raise ConfigError(f"reranker estimator={estimator!r}; choose one of {ESTIMATORS}")
        self.dim, self.top_m, self.tau, self.estimator = dim, int(top_m), float(tau), estimator
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_m = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.w_q.weight)  # start as the identity: the encoder's own ranking
        nn.init.zeros_(self.w_m.weight)

    def scores(self, query: torch.Tensor, memories: torch.Tensor) -> torch.Tensor:
        """s_i = q' . m'_i for query [D] and memories [K, D] -> [K]."""
        q = query.float()
        m = memories.float()
        return (m + self.w_m(m)) @ (q + self.w_q(q))

    def _check(self, query: torch.Tensor, memories: torch.Tensor) -> None:
        if query.shape != (self.dim,) or memories.dim() != 2 or memories.shape[1] != self.dim:
            raise ConfigError(f"reranker inputs: query must be [{self.dim}] and memories "
                              f"[K, {self.dim}], got {tuple(query.shape)} and "
                              f"{tuple(memories.shape)} (is the agent's encoder the one the "
                              "reranker was built for?)")

    @torch.no_grad()
    def sample(self, query: torch.Tensor, memories: torch.Tensor, *,
               generator: torch.Generator | None = None, greedy: bool = False,
               candidate_ids: tuple[str, ...] = (), step: int = -1) -> RerankSample:
        """Pick min(M, K) of the K memories: Gumbel top-M of s/tau (or the plain top-M).

        `greedy=True` takes the M best scores without noise (evaluation); the log-probs are
        those of that ordered pick under the same distribution.
        """
        self._check(query, memories)
        logits = self.scores(query, memories) / self.tau                     # [K]
        if not greedy:
            u = torch.rand(logits.shape, generator=generator).clamp(1e-12, 1 - 1e-7)
            logits = logits - torch.log(-torch.log(u))                     # + Gumbel noise
        m = min(self.top_m, memories.shape[0])
        chosen = tuple(int(i) for i in torch.topk(logits, m).indices.tolist())
        sample = RerankSample(query.detach().float(), memories.detach().float(), chosen,
                              torch.zeros(m), tuple(candidate_ids), step)
        return RerankSample(sample.query, sample.memories, chosen,
                            self.log_probs(sample).detach(), sample.candidate_ids, step)

    def log_probs(self, sample: RerankSample) -> torch.Tensor:
        """[M] each pick's log-probability under the current weights (with gradient)."""
        logits = self.scores(sample.query, sample.memories) / self.tau       # [K]
        chosen = torch.tensor(sample.chosen, dtype=torch.long)
        if self.estimator == "rmm":
            return torch.log_softmax(logits, dim=-1)[chosen]
        out = []
        available = torch.ones_like(logits, dtype=torch.bool)
        for c in sample.chosen:  # Plackett-Luce: softmax over the candidates still available
            lse = torch.logsumexp(logits.masked_fill(~available, -math.inf), dim=-1)
            out.append(logits[c] - lse)
            available[c] = False
        return torch.stack(out)

    # -- checkpoints (memgym.trainer.checkpoint calls save_pretrained) -----------------------
    def config_dict(self) -> dict[str, object]:
        """The constructor arguments, as saved next to the weights."""
        return {"dim": self.dim, "top_m": self.top_m, "tau": self.tau,
                "estimator": self.estimator}

    def save_pretrained(self, folder: str | Path) -> None:
        """Write `model.safetensors` and `reranker_config.json` into `folder`."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()},
                  str(folder / "model.safetensors"))
        (folder / "reranker_config.json").write_text(json.dumps(self.config_dict(), indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> MemoryReranker:
        """Load a reranker written by `save_pretrained` (or a trainer checkpoint folder)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        config_path = folder / "reranker_config.json"
        if not config_path.is_file():
            raise ConfigError(f"reranker checkpoint {folder}: no reranker_config.json; pass a "
                              "folder written by MemoryReranker.save_pretrained or a "
                              "checkpoint-<step> folder of a reranker run")
        module = cls(**json.loads(config_path.read_text()))
        module.load_state_dict(load_file(str(folder / "model.safetensors")))
        return module
