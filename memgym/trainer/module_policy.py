"""Training a non-LLM policy (a `torch.nn.Module` that returns the log-probabilities of the
actions it took) through the trainer's advantage, loss, checkpoint and logging code.

The first such policy is RMM's reranker (`memgym.agents.reranker.MemoryReranker`): an RMM agent
plays dialogue episodes with a frozen LLM; every question's sampled top-M is a `RerankSample`
whose picks each earn +1 if the answer cited that memory and -1 if not (RMM, section 4.2).
One optimizer step takes `batch_size` samples (RMM: 4) and applies REINFORCE with a fixed
baseline b (RMM: 0.5) at lr 1e-3 (RMM), importance-weighted and clipped:

    advantage_k = r_k - b                          (advantages.fixed_baseline_advantages)
    ratio_k = exp(logp_k - logp_k_sampled)         (logp_k_sampled: `RerankSample.logp`, the
                                                    weights the episode was played with)
    loss = grpo_loss(logp_k, logp_k_sampled, ...)  (loss.grpo_loss, loss_type "grpo": the mean
                                                    over picks of -min(ratio_k (r_k - b),
                                                    clip(ratio_k, 1 -+ epsilon) (r_k - b)))

How this departs from RMM: RMM updates the reranker online, after each question. Here an
episode (a whole conversation) is played with fixed weights and its samples fill a buffer that
the next optimizer steps consume, `batch_size` at a time (~37 steps per LoCoMo conversation), so
later steps train on samples of older weights. The sampling-time log-probabilities make that
correct off-policy: each pick's gradient is REINFORCE's, -(r - b) grad logp, re-weighted by
the importance ratio of the current to the sampling weights, and PPO's clip (the recipe's
`epsilon`, `epsilon_high`) stops a pick whose ratio already left [1 - eps, 1 + eps] in the
direction of its advantage. On a buffer's first step the ratio is 1 and this is RMM's update.

Each pick is one training row of one "token" (its log-probability, `MemoryReranker.log_probs`),
credited by `advantages.broadcast_credit`. Checkpoints are `memgym.trainer.checkpoint`'s (the module's `save_pretrained`
writes model.safetensors; optimizer, scheduler, RNG, sampler and the sample buffer position are
restored), and metrics go through `MetricsLogger` with the LLM run's names where they mean the
same (loss, grad_norm, learning_rate, reward, rewards/<name>/mean).

`memgym train train/rmm_reranker.yaml` runs it: a recipe with a `module_policy:` section uses
this trainer instead of GRPOTrainer (`memgym.trainer.cli`). Episodes are played one at a time
(`play_episode`, which keeps each step's info so the citations the env parsed give the reward).
Samples left over after a step wait in a buffer for the next; a resumed run starts with an
empty buffer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from memgym._async import run_sync
from memgym.agents.base import EpisodeContext
from memgym.agents.episode import derive_seed
from memgym.config import from_dict
from memgym.errors import ConfigError
from memgym.rewards.rubric import EPISODE_RESULT_KEY
from memgym.trainer.advantages import broadcast_credit, fixed_baseline_advantages
from memgym.trainer.checkpoint import (
    load_checkpoint,
    resolve_resume,
    save_checkpoint,
)
from memgym.trainer.config import GRPOConfig
from memgym.trainer.logging import MetricsLogger
from memgym.trainer.loss import LossNorm, grpo_loss
from memgym.trainer.rollout import TaskSampler

__all__ = ["ModulePolicySpec", "ModulePolicyTrainer", "citation_rewards", "module_loss",
           "play_episode", "trainer_for"]


@dataclass
class ModulePolicySpec:
    """The `module_policy:` section of a recipe: the frozen LLM the agent calls, and REINFORCE's."""

    backend: str = "scripted"
    """The agent's LLM backend (a `memgym.llm.make_backend` name)."""
    model: str = "memgym.agents.rmm:scripted_rmm_llm"
    """Its model: a memgym model name or path, or for "scripted" a 'module:function' policy."""
    batch_size: int = 4
    """Samples (questions) per optimizer step (RMM: batch size 4)."""
    baseline: float = 0.5
    """REINFORCE baseline b subtracted from every reward (RMM: 0.5)."""
    reward: str = "citation"
    """How a sample's picks are rewarded: "citation" (+1 cited, -1 uncited; RMM)."""


def citation_rewards(chosen_ids: Sequence[str], cited_ids: Sequence[str] | None) -> list[float]:
    """RMM's reward of each pick: +1 if the answer cited that memory, else -1 (no tag: all -1)."""
    cited = set(cited_ids or ())
    return [1.0 if i in cited else -1.0 for i in chosen_ids]


def module_loss(policy: torch.nn.Module, samples: Sequence[Any],
                rewards: Sequence[Sequence[float]], *, baseline: float, loss_type: str = "grpo",
                epsilon_low: float = 0.2, epsilon_high: float = 0.2
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """Importance-weighted, clipped REINFORCE loss of a batch of samples through the trainer's
    advantage and loss code (see the module docstring).

    Args:
        policy: a module with `log_probs(sample) -> [M]` (one log-prob per action part).
        samples: what the policy sampled, each with `logp` ([M], the log-probs at sampling
            time: the ratio's denominator).
        rewards: per sample, one reward per action part.
        baseline: subtracted from every reward.
        loss_type: the aggregation (`memgym.trainer.loss.AGGREGATORS`; "grpo" = mean over parts).
        epsilon_low, epsilon_high: the clip range of the ratio, [1 - low, 1 + high].

    Returns:
        (loss with gradient, {"reward": mean part reward, "advantage": mean advantage,
        "clip_ratio": the fraction of picks whose ratio the clip stopped}).
    """
    flat = [float(r) for rs in rewards for r in rs]
    if not flat:
        return torch.zeros((), requires_grad=True), {"reward": 0.0, "advantage": 0.0,
                                                     "clip_ratio": 0.0}
    comps = torch.tensor(flat, dtype=torch.float32)[:, None]               # [R, 1]
    adv, _ = fixed_baseline_advantages(comps, torch.ones(1), baseline)      # [R]
    credit = broadcast_credit(adv.tolist(), [[True]] * len(flat))          # one row per part
    logps = torch.cat([policy.log_probs(s) for s in samples])[:, None]      # [R, 1]
    old = torch.cat([s.logp.detach().float() for s in samples])[:, None]    # [R, 1]
    if old.shape != logps.shape:
        raise ConfigError(f"module_loss: {old.shape[0]} sampling-time log-probs for "
                          f"{logps.shape[0]} picks; a sample's logp must hold one per pick")
    mask = torch.ones_like(logps)
    weights = torch.tensor(credit.weights, dtype=torch.float32)
    norm = LossNorm(total_row_weight=float(weights.sum()),
                    total_token_weight=float(weights.sum()), max_completion_length=1)
    loss, stats = grpo_loss(logps, old, torch.tensor(credit.advantages), mask, weights, norm,
                            loss_type=loss_type, epsilon_low=epsilon_low,
                            epsilon_high=epsilon_high)
    return loss, {"reward": sum(flat) / len(flat), "advantage": float(adv.mean()),
                  "clip_ratio": float(stats["clip_region"]) / len(flat)}


async def _play(env: gym.Env, agent: Any, seed: int, task_id: int, sampling_seed: int
                ) -> tuple[list[tuple[Any, list[float]]], dict[str, Any]]:
    obs, _ = env.reset(seed=seed, options={"task_id": task_id})
    ctx = EpisodeContext(sampling_seed=sampling_seed)
    out: list[tuple[Any, list[float]]] = []
    done, info, step = False, {}, 0
    while not done:
        ctx.step = step
        records = ctx.scratch.setdefault("rmm_rerank", [])
        before = len(records)
        action = await agent.act(obs, ctx)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        for record in records[before:]:  # the env's parsed citations give the reward
            cited = info.get("cited_ids") if info.get("cited_tag") else None
            out.append((record.sample, citation_rewards(record.sample.chosen_ids, cited)))
        step += 1
    return out, info.get(EPISODE_RESULT_KEY, {})


def play_episode(env: gym.Env, agent: Any, *, seed: int, task_id: int, sampling_seed: int
                 ) -> tuple[list[tuple[Any, list[float]]], dict[str, Any]]:
    """Play one episode; returns ([(RerankSample, per-pick rewards)], the env's episode summary).

    Unlike `memgym.agents.episode.run_episode` it keeps every step's info: a question's reward
    comes from the citations the env parsed at that step (`info["cited_ids"]`).
    """
    return run_sync(_play(env, agent, seed, task_id, sampling_seed))


class ModulePolicyTrainer:
    """Trains the agent's `trainable_module` (RMM's reranker) with REINFORCE from a recipe.

    Args:
        config: a GRPOConfig whose `module_policy` is set (env_id, env_kwargs, agent,
            learning_rate, max_steps, seed, save_steps, output_dir, ... are read from it).
        resume_from: a run folder or checkpoint folder to continue from.
    """

    def __init__(self, config: GRPOConfig, resume_from: str | Path | None = None):
        from memgym.agents.recipe import load_agent
        from memgym.llm import make_backend

        self.config = cfg = config
        self.spec = from_dict(ModulePolicySpec, dict(cfg.module_policy or {}))
        if self.spec.batch_size < 1 or self.spec.reward != "citation":
            raise ConfigError(f"module_policy: batch_size={self.spec.batch_size} must be >= 1 "
                              f"and reward={self.spec.reward!r} must be 'citation'")
        torch.manual_seed(cfg.seed)
        self.out = Path(cfg.output_dir)
        kwargs: dict[str, Any] = {}
        if self.spec.backend == "scripted":
            from memgym.imports import import_callable

            kwargs["policy"] = import_callable(self.spec.model, key="module_policy.model")
        else:
            kwargs["model"] = self.spec.model
        self.backend = make_backend(self.spec.backend, **kwargs)
        self.agent = load_agent(cfg.agent, self.backend)
        self.module = getattr(self.agent, "trainable_module", None)
        if not isinstance(self.module, torch.nn.Module):
            raise ConfigError(f"agent {cfg.agent!r} has no trainable_module (a torch module "
                              "policy); module_policy trains e.g. agents/rmm.yaml's reranker")
        try:
            self.env = gym.make(cfg.env_id, **cfg.env_kwargs)
        except gym.error.Error as exc:
            raise ConfigError(f"env_id={cfg.env_id!r}: {exc}") from exc
        num_tasks = self.env.unwrapped.num_tasks
        self.sampler = TaskSampler(list(range(num_tasks - cfg.eval_tasks)), cfg.seed)
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.learning_rate,
                                           betas=(cfg.adam_beta1, cfg.adam_beta2),
                                           eps=cfg.adam_epsilon, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        self.step, self.episodes, self.resumed_step = 0, 0, None
        self.buffer: list[tuple[Any, list[float]]] = []
        if resume_from is not None:
            folder = resolve_resume(resume_from)
            state = load_checkpoint(folder, model=self.module, optimizer=self.optimizer,
                                    scheduler=self.scheduler)
            self.step, self.episodes = int(state["step"]), int(state["episodes"])
            self.sampler.load_state_dict(state["sampler"])
            self.resumed_step = self.step

    def _fill(self) -> float:
        """Play episodes until the buffer holds a batch; returns the rollout seconds."""
        t0 = time.perf_counter()
        while len(self.buffer) < self.spec.batch_size:
            task = self.sampler.take(1)[0]
            self.module.eval()
            samples, _ = play_episode(
                self.env, self.agent, seed=derive_seed(self.config.seed, self.episodes),
                task_id=task, sampling_seed=derive_seed(self.config.seed, self.episodes, 1))
            self.episodes += 1
            self.buffer.extend(samples)
            if not samples and self.episodes > 1000:
                raise ConfigError("module_policy: 1000 episodes gave no reranker sample; does "
                                  "the env ask questions and show memories?")
        return time.perf_counter() - t0

    def train_step(self) -> dict[str, float]:
        """One optimizer step over `batch_size` samples; returns its metrics."""
        rollout_s = self._fill()
        batch, self.buffer = (self.buffer[:self.spec.batch_size],
                              self.buffer[self.spec.batch_size:])
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        cfg = self.config
        loss, stats = module_loss(self.module, [s for s, _ in batch], [r for _, r in batch],
                                  baseline=self.spec.baseline, loss_type="grpo",
                                  epsilon_low=cfg.epsilon,
                                  epsilon_high=cfg.epsilon_high_resolved)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(  # inf: measure without clipping
            self.params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        cited = sum(r > 0 for _, rs in batch for r in rs) / max(sum(len(rs) for _, rs in batch), 1)
        return {"step": self.step, "loss": float(loss.detach()), "grad_norm": float(grad_norm),
                "learning_rate": lr, "reward": stats["reward"],
                "rewards/citation/mean": stats["reward"], "advantage/mean": stats["advantage"],
                "clip_ratio/region_mean": stats["clip_ratio"],
                "frac_picks_cited": cited, "rows": sum(len(rs) for _, rs in batch),
                "episodes": self.episodes, "time/rollout_s": rollout_s}

    def train(self) -> list[dict[str, Any]]:
        """Run to `max_steps`; checkpoints every `save_steps` and at the end; returns the rows."""
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
        log = MetricsLogger(self.out, config=cfg.to_dict(), report_to=cfg.reporters,
                            run_name=cfg.run_name, project=cfg.wandb_project,
                            max_steps=cfg.max_steps, logging_steps=cfg.logging_steps,
                            resume_step=self.resumed_step)
        saved = self.resumed_step
        try:
            while self.step < cfg.max_steps:
                log.log(self.train_step())
                if cfg.save_steps and self.step % cfg.save_steps == 0:
                    self.save()
                    saved = self.step
            if saved != self.step:
                self.save()
            return log.rows
        finally:
            log.close()

    def save(self) -> Path:
        """Write `checkpoint-<step>`: the module, optimizer, scheduler, RNG and sampler state."""
        state = {"episodes": self.episodes, "sampler": self.sampler.state_dict(),
                 "env_id": self.config.env_id, "policy": type(self.module).__name__,
                 "config": json.loads(json.dumps(self.config.to_dict(), default=str))}
        return save_checkpoint(self.out, self.step, model=self.module, optimizer=self.optimizer,
                               scheduler=self.scheduler, trainer_state=state,
                               save_total_limit=self.config.save_total_limit)

    def close(self) -> None:
        """Close the env and the backend."""
        self.env.close()
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


def trainer_for(config: GRPOConfig, resume_from: str | None = None) -> Any:
    """The trainer a recipe asks for: ModulePolicyTrainer when `module_policy` is set."""
    if config.module_policy is not None:
        return ModulePolicyTrainer(config, resume_from=resume_from)
    from memgym.trainer.grpo import GRPOTrainer

    return GRPOTrainer(config, resume_from=resume_from)

