"""GRPO for memory agents, written out top to bottom.

One step: sample `tasks_per_step` tasks -> run `num_generations` episodes of each from an
identical initial state, all concurrently through the batched transformers backend that shares
the trained weights (the trainer puts the model in eval mode for rollouts and old/reference
log-probs, and in train mode only for its own backward passes; the backend decodes in no_grad)
-> read every episode's reward components -> group-relative advantages -> one training row per
trainable LLM call (Turn) -> micro-batches packed by a token budget -> clipped surrogate (+ k3
KL) -> AdamW step with warmup, schedule and gradient clipping -> metrics -> checkpoint.

How this departs from GRPO as published (Shao et al., 2024, DeepSeekMath):
  - An episode is many independent conversations (MemAgent: one LLM call per chunk plus the
    answer), not one completion. Every trainable call becomes a row carrying its episode's
    advantage, as MemAgent's multi-conversation GRPO broadcasts it (verl `ray_trainer.py`:
    each conversation gets its sample's advantage, all tokens token-meaned, no 1/T). With
    `normalize_turns_per_episode` (memgym's default, not MemAgent's) the rows of an episode
    with T calls weigh 1/T each, so long documents do not dominate.
  - Rewards are vectors (the env's rubric components); they are combined into the advantage
    by `multi_objective_aggregation` and logged separately.
  - The default loss averages over every token of the step (`loss_type="dapo"`, DAPO/TRL's
    default) rather than per-sequence means; `epsilon_high` allows DAPO's clip-higher; `beta`
    defaults to 0 (no reference model), and the KL is the k3 estimator when used.
  - `scale_rewards="none"` (Dr. GRPO, MemAgent) is available; groups whose rewards are all
    equal are dropped before training (`drop_zero_std_groups`, DAPO's dynamic-sampling filter
    without the resampling).
  - The sampler's log-probs come from the backend; a truncated importance weight
    min(exp(trainer - sampler), tis_cap) corrects for the two computing them differently. Both
    are log-probs of the temperature-scaled full softmax (the transformers sampler reports
    those even under top-k/top-p), so with identical weights the weight is exactly 1.
  - Groups dropped for equal rewards shrink the rollout's optimizer steps instead of leaving
    empty ones; a vLLM sampler gets the weights once per rollout whose weights changed.
  - The reference policy is the base model with the LoRA adapter disabled, not a second copy.

Data parallel (`torchrun` / `accelerate launch`, memgym.trainer.distributed): every rank draws
the same tasks and rolls out its own block of groups; loss normalisers are summed over ranks and
gradients all-reduced, so N processes make the update one process makes on the same groups.
Only rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from memgym.agents.episode import EnvPool, Episode
from memgym.agents.recipe import load_recipe
from memgym.envs.validation import align_answer_format
from memgym.errors import ConfigError
from memgym.llm import set_torch_threads
from memgym.trainer.advantages import (
    broadcast_credit,
    flat_step_groups,
    group_advantages,
    per_step_credit,
    step_reward_credit,
    zero_std_groups,
)
from memgym.trainer.checkpoint import (
    load_checkpoint,
    read_trainer_state,
    resolve_resume,
    save_checkpoint,
)
from memgym.trainer.config import GRPOConfig, check_resume_config
from memgym.trainer.distributed import Distributed, NullLogger
from memgym.trainer.logging import MetricsLogger
from memgym.trainer.loss import LossNorm, completion_logprobs, grpo_loss, tis_weights
from memgym.trainer.rollout import (
    MicroBatch,
    TaskSampler,
    TrainingRow,
    collate,
    collect_episodes,
    episodes_to_rows,
    group_jobs,
    pack_rows,
)

__all__ = ["GRPOTrainer", "build_policy", "build_scheduler"]

logger = logging.getLogger(__name__)


# ==============================================================================================
# Setup: the policy (model, tokenizer, LoRA), the reference, the optimizer and its schedule
# ==============================================================================================
def _dtype(spec: str, device: torch.device) -> torch.dtype:
    if spec == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return getattr(torch, spec)


def build_policy(model: str | Any, *, tokenizer: Any = None, device: torch.device,
                 dtype: torch.dtype, seed: int = 0) -> tuple[Any, Any]:
    """Load (or adopt) the causal LM and its tokenizer, on `device` in `dtype`.

    Args:
        model: "tiny" (memgym's random-weight test model), "embedded" (the tiny MemAgent model
            shipped in memgym/assets), a hub id or local path, or a model object.
        tokenizer: the tokenizer (object or path); defaults to the model's.
        device, dtype: where and how to hold the weights.
        seed: the tiny model's weight seed.
    """
    if isinstance(model, str):
        from memgym.models import resolve_model_path

        model = resolve_model_path(model)
    if isinstance(model, str) and model == "tiny":
        from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

        tokenizer = tokenizer or build_tiny_tokenizer()
        model = build_tiny_model(tokenizer, seed=seed)
    elif isinstance(model, str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"model={model!r} could not be loaded ({exc}); give a local path, "
                              "a reachable hub id, or 'tiny'") from exc
    elif tokenizer is None:
        path = getattr(model, "name_or_path", None)
        if not path:
            raise ConfigError("GRPOTrainer(policy=<model object>) needs tokenizer=: the model "
                              "has no name_or_path to load one from")
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(path)
    elif isinstance(tokenizer, str):
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device=device, dtype=dtype), tokenizer


def _add_lora(model: Any, *, r: int, alpha: int, dropout: float,
              target_modules: str | Sequence[str]) -> Any:
    """Wrap `model` in a peft LoRA adapter of rank `r` on `target_modules` (unless it has one)."""
    if hasattr(model, "peft_config"):  # the caller already wrapped it
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ConfigError("use_lora=true needs peft: pip install 'memgym[train]' (or set "
                          "use_lora=false for full fine-tuning)") from exc
    lora = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout,
                      target_modules=(target_modules if isinstance(target_modules, str)
                                      else list(target_modules)),
                      task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora)


def _checked_resume(resume_from: str | Path, cfg: GRPOConfig) -> Path:
    """The checkpoint folder to resume from, refusing a changed config before anything loads."""
    resume_folder = resolve_resume(resume_from)
    if read_trainer_state(resume_folder).get("fsdp"):
        raise ConfigError(f"--resume {resume_folder}: an FSDP run's checkpoint holds the full "
                          "weights but not the sharded optimizer state, so it cannot be resumed; "
                          f"start a new run from its weights (model={resume_folder})")
    saved = read_trainer_state(resume_folder).get("config")
    if saved is None:
        logger.warning("%s stores no config (written by an older memgym): the resumed "
                       "run's config is not checked against it", resume_folder)
    else:
        for key, (old, new) in check_resume_config(saved, cfg,
                                                   where=str(resume_folder)).items():
            logger.info("resume: %s changed from %r to %r (allowed)", key, old, new)
    return resume_folder


def build_scheduler(optimizer: torch.optim.Optimizer, *, kind: str, warmup_steps: int,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0, then constant, linear decay to 0, or cosine decay to 0."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        if kind == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ==============================================================================================
# The trainer
# ==============================================================================================
class GRPOTrainer:
    """Trains a memory agent's LLM with GRPO on a registered memgym environment.

    Args:
        config: the hyperparameters (`load_config("train/tiny_random_budget.yaml")`).
        policy: a transformers causal LM to train (default: load `config.model`).
        env_id: the environment (default: `config.env_id`).
        tokenizer: the policy's tokenizer (default: the model's).
        env_kwargs: keyword arguments for `gym.make` (default: `config.env_kwargs`).
        agent: the agent recipe, path or mapping (default: `config.agent`).
        resume_from: a run folder or checkpoint folder to continue from.

    `train()` runs to `config.max_steps` and returns the logged metric rows.
    """

    def __init__(self, config: GRPOConfig, policy: Any = None, env_id: str | None = None, *,
                 tokenizer: Any = None, env_kwargs: Mapping[str, Any] | None = None,
                 agent: str | Mapping[str, Any] | None = None,
                 resume_from: str | Path | None = None):
        self.config = cfg = config
        self.env_id = env_id or cfg.env_id
        self.env_kwargs = dict(cfg.env_kwargs if env_kwargs is None else env_kwargs)
        resume_folder = None if resume_from is None else _checked_resume(resume_from, cfg)
        self.agent_recipe = cfg.agent if agent is None else agent
        # the env extracts the answer format the agent's final prompt asks for, as in eval
        align_answer_format(self.env_id, self.env_kwargs, load_recipe(self.agent_recipe).config)
        if cfg.frozen_reader is not None:  # Memory-R1's frozen answer agent, as the env's reader
            from memgym.trainer.frozen_reader import build_frozen_reader

            self.env_kwargs["reader"] = build_frozen_reader(cfg.frozen_reader)
        self.out = Path(cfg.output_dir)
        _set_seed(cfg.seed)
        self.dist = Distributed.from_env(cfg.device)  # a world of one without a launcher
        self.device = self.dist.device
        set_torch_threads(cfg.torch_threads, device=self.device, setting="torch_threads")
        self._build_models(cfg.model if policy is None else policy, tokenizer,
                           _dtype(cfg.dtype, self.device))
        self._split_tasks()
        self._build_optimizer()
        self._resume(resume_folder)
        self._build_agents()

    def _build_models(self, policy: Any, tokenizer: Any, dtype: torch.dtype) -> None:
        """The policy (with LoRA and checkpointing as configured), its tokenizer, the reference."""
        cfg = self.config
        model, self.tokenizer = build_policy(policy, tokenizer=tokenizer, device=self.device,
                                             dtype=dtype, seed=cfg.seed)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={
                "use_reentrant": False})
            if cfg.use_lora:
                model.enable_input_require_grads()
        self.model = (_add_lora(model, r=cfg.lora_r, alpha=cfg.lora_alpha,
                                dropout=cfg.lora_dropout, target_modules=cfg.lora_target_modules)
                      if cfg.use_lora else model)
        # Full fine-tuning needs a frozen copy for the KL; LoRA disables its adapter instead.
        self.ref_model = (copy.deepcopy(self.model).eval().requires_grad_(False)
                          if (cfg.beta > 0 and not cfg.use_lora) else None)
        # Chunks and memory budgets count the policy's own tokens, as `memgym eval` does. The
        # envs get their own copy: a fast tokenizer is not safe to share with the engine thread
        # (concurrent use made seeded runs irreproducible).
        if _env_takes_tokenizer(self.env_id):  # the dialogue envs count no tokens
            self.env_kwargs.setdefault("tokenizer", copy.deepcopy(self.tokenizer))
        self.dist.broadcast_params(self.model)  # identical replicas, as DDP starts them
        if self.dist.fsdp is not None:  # accelerate's FSDP config: shard policy and reference
            if cfg.generation_backend != "vllm-server":
                raise ConfigError("an FSDP-sharded policy cannot sample on the trainer's ranks; "
                                  "set generation_backend=vllm-server and vllm_server_urls")
            self.model = self.dist.shard(self.model)
            if self.ref_model is not None:
                self.ref_model = self.dist.shard(self.ref_model)

    def _split_tasks(self) -> None:
        """The env pool, and the task ids split into training and held-out evaluation ones."""
        cfg = self.config
        self.concurrency = cfg.max_concurrent_episodes or cfg.episodes_per_step
        self.pool = EnvPool(self._make_env, self.concurrency)
        num_tasks = getattr(self.pool.first().unwrapped, "num_tasks", None)
        if num_tasks is None:
            raise ConfigError(f"env {self.env_id!r} has no num_tasks: the trainer samples task "
                              "ids 0..num_tasks-1 and needs the env to say how many there are")
        if cfg.eval_tasks >= num_tasks:
            raise ConfigError(f"eval_tasks={cfg.eval_tasks} holds out every one of the "
                              f"{num_tasks} tasks of {self.env_id}; lower it")
        self.train_ids = list(range(num_tasks - cfg.eval_tasks))
        self.eval_ids = list(range(num_tasks - cfg.eval_tasks, num_tasks))
        self.sampler = TaskSampler(self.train_ids, cfg.seed)
        self.dist.my_groups(cfg.tasks_per_step)  # at least one group per rank, or say so now
        if len(self.train_ids) < cfg.tasks_per_step:
            logger.warning(
                "only %d training tasks for tasks_per_step=%d: every rollout repeats tasks, and "
                "a group whose episodes all score alike teaches nothing; with so few tasks "
                "nothing useful may be learned (lower tasks_per_step or add tasks)",
                len(self.train_ids), cfg.tasks_per_step)

    def _build_optimizer(self) -> None:
        """AdamW over the trainable parameters, and its learning-rate schedule."""
        cfg = self.config
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ConfigError("the policy has no trainable parameters")
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.learning_rate,
                                           betas=(cfg.adam_beta1, cfg.adam_beta2),
                                           eps=cfg.adam_epsilon, weight_decay=cfg.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, kind=cfg.lr_scheduler_type,
                                         warmup_steps=cfg.num_warmup_steps,
                                         total_steps=cfg.max_steps)

    def _resume(self, resume_folder: Path | None) -> None:
        """Start the counters at 0, or load model, optimizer, schedule and sampler state."""
        self.step = 0
        self.rollouts = 0
        self.resumed_step: int | None = None
        if resume_folder is not None:
            state = load_checkpoint(resume_folder, model=self.model, optimizer=self.optimizer,
                                    scheduler=self.scheduler)
            self.step, self.rollouts = int(state["step"]), int(state["rollouts"])
            self.resumed_step = self.step
            self.sampler.load_state_dict(state["sampler"])
            logger.info("resumed from %s at step %d", resume_folder, self.step)
        self._saved_step = self.resumed_step

    def _build_agents(self) -> None:
        """The rollout sampler, and the training and evaluation agents that sample through it."""
        from memgym.agents.recipe import load_agent, trainer_sampling_overrides
        cfg = self.config
        # built after the resume, so the sampler never holds pre-resume weights
        self.backend = self._generation_backend()
        self._sampler_stale = True  # the sampler's weights may differ from the model's
        # Every trainable LLM call of the agent, nested ones included, samples at the trainer's
        # settings: the loss divides logits by cfg.temperature, the same number.
        recipe = load_recipe(self.agent_recipe)
        self.agent = load_agent(self.agent_recipe, self.backend, overrides=(
            trainer_sampling_overrides(recipe, temperature=cfg.temperature, top_p=cfg.top_p,
                                       top_k=cfg.top_k, max_new_tokens=cfg.max_completion_length)))
        self.eval_agent = load_agent(self.agent_recipe, self.backend, overrides=(
            trainer_sampling_overrides(recipe, temperature=cfg.eval_temperature, top_p=1.0,
                                       top_k=0, max_new_tokens=cfg.max_completion_length)))

    def _generation_backend(self) -> Any:
        """The rollout sampler: the trained model itself, or a vLLM engine kept in sync."""
        cfg = self.config
        if cfg.generation_backend == "vllm":
            from memgym.llm.vllm import VLLMBackend
            from memgym.models import resolve_model_path

            # vLLM loads the model itself: a memgym name becomes its prepared folder; it samples
            # in the trainer's dtype, so its logprobs are the trainer's up to kernel numerics
            dtype = str(next(self.model.parameters()).dtype).removeprefix("torch.")
            return VLLMBackend(resolve_model_path(cfg.model), dtype=dtype,
                               gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                               max_model_len=cfg.vllm_max_model_len,
                               max_num_batched_tokens=cfg.vllm_max_num_batched_tokens,
                               max_batch_size=cfg.rollout_batch_size, seed=cfg.seed)
        if cfg.generation_backend == "vllm-server":
            from memgym.llm.vllm_server import VLLMServerBackend

            # every rank generates through the servers; rank 0 alone pushes the weights
            return VLLMServerBackend(cfg.vllm_server_urls, self.tokenizer,
                                     connection_timeout=cfg.vllm_server_timeout,
                                     send_weights=self.dist.is_main)
        from memgym.llm.hf import TransformersBackend

        # The trainer owns train/eval mode: the engine thread must never flip it.
        return TransformersBackend(self.model, self.tokenizer,
                                   max_batch_size=cfg.rollout_batch_size, manage_mode=False)

    def _ready_to_sample(self) -> None:
        """Before episodes: eval mode, and a separate sampler (vLLM) gets changed weights once."""
        self.model.eval()
        sync = getattr(self.backend, "sync_weights", None)
        if sync is not None and self._sampler_stale:
            sync(self.model)
            self.dist.barrier()  # no rank samples before the weights are in
        self._sampler_stale = False

    def sampling_backend(self) -> Any:
        """The rollout sampler holding the policy's current weights (synced now if stale), to
        evaluate the policy through the same engine (`memgym.eval.evaluate`); the trainer
        still owns it and closes it."""
        self._ready_to_sample()
        return self.backend

    def _make_env(self) -> gym.Env:
        try:
            return gym.make(self.env_id, **self.env_kwargs)
        except gym.error.Error as exc:
            raise ConfigError(f"env_id={self.env_id!r}: {exc}") from exc

    # ==========================================================================================
    # The loop
    # ==========================================================================================
    def train(self) -> list[dict[str, Any]]:
        """Run to `max_steps` optimizer steps; returns every logged metric row of the run."""
        cfg = self.config
        log = self._logger()
        try:
            if cfg.eval_steps and self.step == 0:  # the baseline the curve starts from
                log.log({"step": 0, **self.evaluate()})
            while self.step < cfg.max_steps:
                # 1. rollout: G episodes of each sampled task, all at once
                t0 = time.perf_counter()
                task_ids = self.sampler.take(cfg.tasks_per_step)  # the same on every rank
                mine = self.dist.my_groups(len(task_ids))  # this rank's groups, all G of each
                jobs = [j for j in group_jobs(task_ids, cfg.num_generations, seed=cfg.seed,
                                              rollout=self.rollouts) if j.key[0] in mine]
                self._ready_to_sample()
                episodes = collect_episodes(self.pool, self.agent, jobs,
                                            concurrency=self.concurrency)
                self.rollouts += 1
                rollout_s = time.perf_counter() - t0

                # 2. rewards -> advantages -> rows, split into the rollout's optimizer steps
                rows, groups, roll_metrics = self._rows(episodes, group_ids=mine)
                roll_metrics["time/rollout_s"] = rollout_s
                gen_tokens = self.dist.sum(sum(len(t.completion_ids) for e in episodes
                                               for t in e.turns))[0]
                roll_metrics["throughput/rollout_tokens_per_s"] = gen_tokens / max(rollout_s, 1e-9)
                self._warn_if_flat(roll_metrics)
                batches = self._prepare_steps(rows, groups)

                # 3. optimise: num_iterations passes x (at most) steps_per_generation steps
                step_before = self.step
                for _ in range(cfg.num_iterations):
                    for step_rows, micro in batches:
                        if self.step >= cfg.max_steps:
                            break
                        metrics = self._optimizer_step(step_rows, micro)
                        self.step += 1
                        self._sampler_stale = True

                        # 4. log, evaluate
                        metrics.update(roll_metrics, step=self.step)
                        if cfg.eval_steps and self.step % cfg.eval_steps == 0:
                            metrics.update(self.evaluate())
                        log.log(metrics)
                        if self.step % cfg.logging_steps == 0:
                            log.plot()
                log.log_samples(self.step, _samples(episodes, cfg.num_sample_episodes,
                                                    cfg.reward_weights))
                # 5. checkpoint between rollouts, once a multiple of save_steps was passed
                if cfg.save_steps and self.step // cfg.save_steps > step_before // cfg.save_steps:
                    self.save()
            if self._saved_step != self.step:
                self.save()
            return log.rows
        finally:
            log.close()

    def _logger(self) -> MetricsLogger | NullLogger:
        """Rank 0's metrics logger (it writes config.json and the run's files); others keep rows."""
        cfg = self.config
        if not self.dist.is_main:
            return NullLogger()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str))
        return MetricsLogger(self.out, config=cfg.to_dict(), report_to=cfg.reporters,
                             run_name=cfg.run_name, project=cfg.wandb_project,
                             max_steps=cfg.max_steps, logging_steps=cfg.logging_steps,
                             resume_step=self.resumed_step)

    def _warn_if_flat(self, roll_metrics: Mapping[str, float]) -> None:
        """Warn when every group's rewards are equal: every advantage is 0."""
        if roll_metrics["frac_reward_zero_std"] >= 1.0:
            logger.warning(
                "rollout %d: every group's rewards are equal (frac_reward_zero_std=1), so every "
                "advantage is 0 and nothing will be learned from it; if this persists, make "
                "rewards vary within a group (easier tasks, a graded reward component, a higher "
                "temperature)", self.rollouts)

    # ------------------------------------------------------------------------------------------
    # 2. rewards -> advantages -> rows
    # ------------------------------------------------------------------------------------------
    def _rewards(self, episodes: Sequence[Episode]
                 ) -> tuple[list[str], Mapping[str, float], torch.Tensor, torch.Tensor,
                            torch.Tensor]:
        """Reward component names and weights, components [N*G, C], advantages and rewards."""
        cfg = self.config
        names = list(episodes[0].reward_components)
        for e in episodes:
            if list(e.reward_components) != names:
                raise RuntimeError(f"episodes report different reward components: {names} vs "
                                   f"{list(e.reward_components)}")
        weights_map = cfg.reward_weights or episodes[0].reward_weights
        unknown = set(weights_map) - set(names)
        if unknown:
            raise ConfigError(f"reward_weights names {sorted(unknown)}, which the env does not "
                              f"report; its components are {names}")
        comps = torch.tensor([[e.reward_components[n] for n in names] for e in episodes],
                             dtype=torch.float32)                                # [N*G, C]
        weights = torch.tensor([float(weights_map.get(n, 0.0)) for n in names])  # [C]
        adv, rewards = group_advantages(comps, weights, cfg.num_generations,
                                        aggregation=cfg.multi_objective_aggregation,
                                        scale_rewards=cfg.scale_rewards)         # [N*G]
        return names, weights_map, comps, adv, rewards

    def _rows(self, episodes: Sequence[Episode], group_ids: Sequence[int] | None = None
              ) -> tuple[list[TrainingRow], list[tuple[int, list[int]]], dict[str, float]]:
        """Training rows of this rank's episodes, its kept groups, and the rollout's metrics.

        Args:
            episodes: this rank's episodes, G per group, group after group.
            group_ids: the global index of each of its groups (default 0, 1, ...).

        Returns:
            (rows, groups, metrics): groups are (global group index, indices into rows) of the
            kept groups; the metrics cover every rank's episodes.
        """
        cfg, G = self.config, self.config.num_generations
        names, weights_map, comps, adv, rewards = self._rewards(episodes)
        zero = zero_std_groups(rewards, G)                                        # [N]
        if cfg.credit_assignment == "step_reward":  # a group is flat when its step rewards are
            zero = flat_step_groups(*_step_inputs(episodes, weights_map), G,
                                    baseline=cfg.step_baseline)
        keep = [g for g in range(len(zero)) if not (cfg.drop_zero_std_groups and zero[g])]
        kept_eps = [g * G + i for g in keep for i in range(G)]

        trainable = [[t.trainable for t in episodes[e].turns] for e in kept_eps]
        if cfg.credit_assignment == "step_reward":
            credit = step_reward_credit(*_step_inputs([episodes[e] for e in kept_eps],
                                                      weights_map), G,
                                        baseline=cfg.step_baseline,
                                        scale_rewards=cfg.scale_rewards,
                                        normalize_per_episode=cfg.normalize_turns_per_episode)
        elif cfg.credit_assignment == "broadcast":
            credit = broadcast_credit(adv[kept_eps].tolist(), trainable,
                                      normalize_per_episode=cfg.normalize_turns_per_episode)
        else:
            step_rewards = [_weighted_step_rewards(episodes[e], weights_map) for e in kept_eps]
            credit = per_step_credit(step_rewards,
                                     [[t.step for t in episodes[e].turns] for e in kept_eps],
                                     trainable, G, gamma=cfg.gamma,
                                     scale_rewards=cfg.scale_rewards,
                                     normalize_per_episode=cfg.normalize_turns_per_episode)
        rows = episodes_to_rows([episodes[e] for e in kept_eps], credit)
        # rows of kept group k: those whose (kept-local) episode index is in k*G .. k*G+G-1
        ids = list(range(len(zero))) if group_ids is None else list(group_ids)
        groups: list[tuple[int, list[int]]] = [(ids[g], []) for g in keep]
        for i, r in enumerate(rows):
            groups[r.episode // G][1].append(i)
        everyone = self.dist.gather_episodes(episodes)  # the metrics describe the whole rollout
        if self.dist.world_size > 1:
            names, _, comps, _, rewards = self._rewards(everyone)
            zero = zero_std_groups(rewards, G)
            if cfg.credit_assignment == "step_reward":
                zero = flat_step_groups(*_step_inputs(everyone, weights_map), G,
                                        baseline=cfg.step_baseline)
        metrics = _rollout_metrics(everyone, names, rewards, comps, zero)
        metrics.update(_trained_step_metrics(everyone))
        return rows, groups, metrics

    def _prepare_steps(self, rows: list[TrainingRow], groups: list[tuple[int, list[int]]]
                       ) -> list[tuple[list[TrainingRow], list[MicroBatch]]]:
        """Split the kept groups into optimizer steps and pack each into micro-batches.

        The kept groups (zero-std ones may have been dropped) of every rank are split into at
        most `steps_per_generation` steps, so no step is empty while a group is left; with none
        left the rollout is one step without rows (logged, no update). A rank may have no rows
        in a step that others train on: it still takes part in the step's all-reduce.
        """
        cfg = self.config
        reuse = cfg.num_iterations > 1 or cfg.steps_per_generation > 1
        if not self.dist.sum(len(rows))[0]:
            return [([], [])]
        steps = []
        for chunk in self.dist.split_steps([g for g, _ in groups], cfg.steps_per_generation):
            step_rows = [rows[i] for g in chunk for i in groups[g][1]]
            if not self.dist.sum(len(step_rows))[0]:  # groups that made no trainable call
                continue
            packs = pack_rows([r.length for r in step_rows], cfg.max_tokens_per_microbatch)
            # Micro-batches wait on the CPU; each moves to the device only for its own pass.
            micro = [collate(step_rows, idx, pad_id=self.tokenizer.pad_token_id, device="cpu")
                     for idx in packs]
            if sum(len(m.rows) for m in micro) != len(step_rows):
                raise RuntimeError("pack_rows lost rows: a memgym bug, please report it")
            if self.dist.fsdp is not None:  # every rank runs as many passes (FSDP's gathers)
                micro += [self._idle_microbatch()] * (
                    int(self.dist.max(len(micro))) - len(micro))
            if reuse or cfg.beta > 0:
                self.model.eval()  # old and reference log-probs without dropout noise
                with torch.no_grad():
                    for mb in micro:
                        # The batch is used after the policy has moved: keep the rollout
                        # policy's log-probs. Used once, the current forward's detached
                        # log-probs are exact.
                        on_device = mb.to(self.device)
                        if reuse:
                            mb.old_logps = self._logps(self.model, on_device).cpu()
                        if cfg.beta > 0:
                            mb.ref_logps = self._ref_logps(on_device).cpu()
            steps.append((step_rows, micro))
        return steps

    def _idle_microbatch(self) -> MicroBatch:
        """A one-token micro-batch of weight 0 (no rows): a sharded rank's pass with nothing to
        learn, so it joins the other ranks' parameter gathers; its loss and gradient are 0."""
        pad = self.tokenizer.pad_token_id
        idle = TrainingRow([pad], [pad], [float("nan")], 0.0, 0.0, -1, -1)
        mb = collate([idle], [0], pad_id=pad, device="cpu")
        mb.rows = []
        mb.mask.zero_()  # no token counts: not in the loss, the token totals or the entropy
        return mb

    # ------------------------------------------------------------------------------------------
    # 3. one optimizer step
    # ------------------------------------------------------------------------------------------
    def _logps(self, model: Any, mb: MicroBatch, with_entropy: bool = False):
        logps, ent = completion_logprobs(model, mb.input_ids, mb.attention_mask, mb.width,
                                         temperature=self.config.temperature,
                                         with_entropy=with_entropy)
        return (logps, ent) if with_entropy else logps

    def _ref_logps(self, mb: MicroBatch) -> torch.Tensor:
        if self.ref_model is not None:
            return self._logps(self.ref_model, mb)
        with self.model.disable_adapter():
            return self._logps(self.model, mb)

    def _optimizer_step(self, rows: list[TrainingRow], micro: list[MicroBatch]
                        ) -> dict[str, float]:
        cfg = self.config
        t0 = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        # the whole step's totals, over every rank: each rank's loss is its share of the step's
        row_weight, token_weight, num_micro, num_rows = self.dist.sum(
            sum(r.weight for r in rows), sum(r.weight * len(r.completion_ids) for r in rows),
            sum(1 for m in micro if m.rows), len(rows))
        norm = LossNorm(total_row_weight=row_weight, total_token_weight=token_weight,
                        num_microbatches=max(int(num_micro), 1),
                        max_completion_length=cfg.max_completion_length)
        totals: dict[str, float] = {}
        loss_sum, tokens_seen, ent_sum, tis_sum = 0.0, 0, 0.0, 0.0
        for mb in (m.to(self.device) for m in micro):
            logps, ent = self._logps(self.model, mb, with_entropy=True)          # [B, K]
            old = mb.old_logps if mb.old_logps is not None else logps.detach()
            isw = (tis_weights(old, mb.sampler_logps, mb.mask, cfg.tis_cap)
                   if cfg.tis_cap is not None else None)
            loss, stats = grpo_loss(logps, old, mb.advantages, mb.mask, mb.weights, norm,
                                    loss_type=cfg.loss_type, epsilon_low=cfg.epsilon,
                                    epsilon_high=cfg.epsilon_high_resolved, beta=cfg.beta,
                                    ref_logps=mb.ref_logps, is_weights=isw)
            loss.backward()
            loss_sum += float(loss.detach())
            tokens_seen += mb.num_tokens
            ent_sum += float((ent * mb.mask).sum())
            if isw is not None:
                tis_sum += float((isw * mb.mask).sum())
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + float(v)
        self.dist.all_reduce_grads(self.params)  # the sum is the one-process gradient
        keys = sorted(totals)
        loss_sum, tokens_seen, ent_sum, tis_sum, *summed = self.dist.sum(
            loss_sum, tokens_seen, ent_sum, tis_sum, *(totals[k] for k in keys))
        totals = dict(zip(keys, summed))
        grad_norm = (torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                     if cfg.max_grad_norm > 0 else _grad_norm(self.params)) if num_micro else 0.0
        lr = self.scheduler.get_last_lr()[0]
        if num_micro:  # a rollout with every group dropped is a step without an update
            self.optimizer.step()
        with warnings.catch_warnings():  # torch warns when the optimizer did not step
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step()
        train_s = time.perf_counter() - t0
        n = max(totals.get("tokens", 0.0), 1.0)
        metrics = {
            "loss": loss_sum, "grad_norm": float(grad_norm), "learning_rate": lr,
            "entropy": ent_sum / n, "clip_ratio/low_mean": totals.get("clip_low", 0.0) / n,
            "clip_ratio/high_mean": totals.get("clip_high", 0.0) / n,
            "clip_ratio/region_mean": totals.get("clip_region", 0.0) / n,
            "rows": int(num_rows), "tokens/trained": int(totals.get("tokens", 0)),
            "time/train_s": train_s,
            "throughput/train_tokens_per_s": tokens_seen / max(train_s, 1e-9),
        }
        if cfg.beta > 0:
            metrics["kl"] = totals.get("kl", 0.0) / n
        if cfg.tis_cap is not None:
            metrics["tis/mean"] = tis_sum / n
        return metrics

    # ------------------------------------------------------------------------------------------
    # 4. evaluation and checkpoints
    # ------------------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """One episode per held-out task (eval_temperature sampling); "eval/..." metrics."""
        if not self.eval_ids:
            return {}
        jobs = group_jobs(self.eval_ids, 1, seed=self.config.seed + 1, rollout=0)
        share = np.array_split(np.arange(len(jobs)), self.dist.world_size)[self.dist.rank]
        self._ready_to_sample()
        episodes = collect_episodes(self.pool, self.eval_agent, [jobs[i] for i in share],
                                    concurrency=self.concurrency)
        episodes = self.dist.gather_episodes(episodes)
        out = {"eval/reward": float(np.mean([episode_reward(e, self.config.reward_weights)
                                             for e in episodes]))}
        for name in episodes[0].reward_components:
            out[f"eval/rewards/{name}/mean"] = float(np.mean(
                [e.reward_components[name] for e in episodes]))
        return out

    def save(self) -> Path:
        """Write `checkpoint-<step>` (weights, optimizer, scheduler, RNG, sampler position).

        Rank 0 writes (the replicas are identical, so the checkpoint resumes at any world
        size); the others wait for it.
        """
        state = {"rollouts": self.rollouts, "sampler": self.sampler.state_dict(),
                 "env_id": self.env_id, "world_size": self.dist.world_size,
                 "config": json.loads(json.dumps(self.config.to_dict(), default=str))}
        folder = self.out / f"checkpoint-{self.step}"
        if self.dist.fsdp is not None:  # full weights only (see memgym.trainer.distributed)
            full = self.dist.full_state_dict(self.model)
            if self.dist.is_main:
                folder.mkdir(parents=True, exist_ok=True)
                self.model.save_pretrained(str(folder), state_dict=full)
                (folder / "trainer_state.json").write_text(json.dumps(
                    {**state, "step": self.step, "fsdp": True}, indent=2))
        elif self.dist.is_main:
            folder = save_checkpoint(self.out, self.step, model=self.model,
                                     optimizer=self.optimizer, scheduler=self.scheduler,
                                     trainer_state=state, tokenizer=self.tokenizer,
                                     save_total_limit=self.config.save_total_limit)
        self.dist.barrier()
        self._saved_step = self.step
        return folder

    def close(self) -> None:
        """Stop the backend's engine, close the environments (and the frozen reader's loop),
        leave the process group."""
        self.backend.close()
        self.pool.close()
        reader = self.env_kwargs.get("reader")
        if hasattr(reader, "close"):
            reader.close()
        self.dist.close()


# ==============================================================================================
# Metrics of a rollout
# ==============================================================================================
def _env_takes_tokenizer(env_id: str) -> bool:
    """Whether to hand the env the policy's tokenizer: unless its known kwargs lack one."""
    from memgym.envs.validation import env_accepts, env_kwarg_names

    try:
        known = env_kwarg_names(gym.spec(env_id))
    except gym.error.Error:
        return True
    return known is None or env_accepts(env_id, "tokenizer")


def episode_reward(episode: Episode, weights: Mapping[str, float] | None) -> float:
    """An episode's reward under the run's component weights (`reward_weights`; None: the
    env's, which gives `episode.reward`): the weighted sum of the episode's components, the
    same number `_rewards` computes for its advantages."""
    if weights is None:
        return episode.reward
    return sum(float(weights.get(k, 0.0)) * v for k, v in episode.reward_components.items())


def _weighted_step_rewards(episode: Episode, weights: Mapping[str, float]) -> list[float]:
    """Each step's reward under the run's component weights over the components it scored
    (the env's scalar where an Episode was built without per-step components)."""
    rewards = list(episode.rewards)
    if len(episode.step_components) != len(rewards):
        return rewards
    return [sum(float(weights.get(k, 0.0)) * v for k, v in comps.items())
            for comps in episode.step_components]


def _step_inputs(episodes: Sequence[Episode], weights: Mapping[str, float]
                 ) -> tuple[list[list[float]], list[list[int]], list[list[bool]]]:
    """(step rewards, Turn steps, trainable flags) of each episode, for step credit."""
    return ([_weighted_step_rewards(e, weights) for e in episodes],
            [[t.step for t in e.turns] for e in episodes],
            [[t.trainable for t in e.turns] for e in episodes])


def _trained_step_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """`step_rewards/<name>/mean`: each reward component averaged over the env steps that hold
    a trainable Turn and scored it (a Memory-R1 manager run logs the frozen reader's score at
    its edits; a component a step did not score is left out of its mean, not counted as 0)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    steps = 0
    for e in episodes:
        for t in sorted({turn.step for turn in e.turns if turn.trainable}):
            if t < len(e.step_components):
                steps += 1
                for k, v in e.step_components[t].items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                    counts[k] = counts.get(k, 0) + 1
    if not steps:
        return {}
    out = {f"step_rewards/{k}/mean": v / counts[k] for k, v in sums.items()}
    out["step_rewards/steps"] = float(steps)
    return out


def _grad_norm(params: Sequence[torch.nn.Parameter]) -> float:
    grads = [p.grad.detach().norm() for p in params if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def _rollout_metrics(episodes: Sequence[Episode], names: Sequence[str], rewards: torch.Tensor,
                     comps: torch.Tensor, zero: torch.Tensor) -> dict[str, float]:
    turns = [t for e in episodes for t in e.turns]
    lengths = [len(t.completion_ids) for t in turns] or [0]
    out = {
        "reward": float(rewards.mean()),
        "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
        "frac_reward_zero_std": float(zero.float().mean()),
        "tokens/rollout": sum(len(t.prompt_ids) + len(t.completion_ids) for t in turns),
        "completions/mean_length": float(np.mean(lengths)),
        "completions/max_length": float(max(lengths)),
        "completions/clipped_ratio": float(np.mean([t.finish_reason == "length"
                                                    for t in turns])) if turns else 0.0,
        "episodes/turns_mean": float(np.mean([len(e.turns) for e in episodes])),
        "episodes/trainable_turns_mean": float(np.mean(
            [sum(t.trainable for t in e.turns) for e in episodes])),
    }
    mem = [e.info["memory_tokens"] for e in episodes if "memory_tokens" in e.info]
    if mem:
        out["memory/mean_tokens"] = float(np.mean(mem))
    for c, name in enumerate(names):
        col = comps[:, c]
        out[f"rewards/{name}/mean"] = float(col.mean())
        out[f"rewards/{name}/std"] = float(col.std()) if len(col) > 1 else 0.0
    return out


def _samples(episodes: Sequence[Episode], n: int,
             weights: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    out = []
    for e in episodes[:n]:
        out.append({"task_id": e.task_id, "reward": episode_reward(e, weights),
                    "memory_trace": "\n---\n".join(e.trace[:-1]),
                    "answer": e.info.get("answer", e.actions[-1] if e.actions else ""),
                    "golds": " | ".join(map(str, e.info.get("golds", []))),
                    **{f"rewards/{k}": v for k, v in e.reward_components.items()}})
    return out
