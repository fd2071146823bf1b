"""The GRPO trainer's hyperparameters: one flat dataclass, validated once.

Names follow TRL's `GRPOConfig` wherever the concept is the same (`learning_rate`,
`num_generations`, `beta`, `epsilon`, `epsilon_high`, `loss_type`, `scale_rewards`,
`num_iterations`, `steps_per_generation`, ...), so a TRL user can read a memgym recipe at sight.
memgym's own knobs (environment, agent recipe, LoRA, credit assignment over the many LLM calls of
one episode) sit beside them. Only the CLI and `load_config` read YAML; the trainer's building
blocks take plain arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from memgym.config import KEYS_HELP, from_dict, load_yaml, merge, parse_overrides
from memgym.errors import ConfigError

__all__ = ["RESUME_SAFE_KEYS", "GRPOConfig", "check_resume_config", "config_changes",
           "load_config"]


_POSITIVE = ("tasks_per_step", "num_generations", "max_steps", "steps_per_generation",
             "num_iterations", "max_tokens_per_microbatch", "max_completion_length",
             "lora_r", "lora_alpha", "logging_steps", "rollout_batch_size")
"""GRPOConfig fields that must be > 0."""
_NON_NEGATIVE = ("save_steps", "eval_steps", "eval_tasks", "beta", "weight_decay",
                 "max_grad_norm", "eval_temperature", "learning_rate")
"""GRPOConfig fields that must be >= 0."""
_RANGES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("epsilon", lambda v: not 0 <= v < 1, "must be in [0, 1)"),
    ("epsilon_high", lambda v: v is not None and v < 0, "must be >= 0 (or null)"),
    ("tis_cap", lambda v: v is not None and v < 1,
     "must be >= 1 (or null to disable truncated importance sampling)"),
    ("warmup_ratio", lambda v: not 0 <= v < 1, "must be in [0, 1)"),
    ("warmup_steps", lambda v: v is not None and v < 0, "must be >= 0"),
    ("gamma", lambda v: not 0 < v <= 1, "must be in (0, 1]"),
    ("lora_dropout", lambda v: not 0 <= v < 1, "must be in [0, 1)"),
)
"""GRPOConfig range checks, in order: (field, is the value out of range, the rule it breaks)."""


@dataclass
class GRPOConfig:
    """Every hyperparameter of a memgym GRPO run (a recipe in `train/` fills it)."""

    # -- what to train ------------------------------------------------------------------------
    env_id: str = "MemAgent-Synthetic-v0"
    """The registered memgym environment to train on (`memgym envs` lists them)."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for `gym.make(env_id, **env_kwargs)` (chunk_tokens, data_path, ...)."""
    agent: str | dict[str, Any] = "agents/memagent.yaml"
    """The agent recipe: a YAML path (see `agents/`) or the recipe itself as a mapping."""
    model: str = "tiny"
    """A transformers model id or local path, or "tiny" for memgym's offline test model."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights dtype: "auto" is bfloat16 on a CUDA GPU that supports it, float32 otherwise."""
    device: str = "auto"
    """"auto" (cuda when available, else cpu), or an explicit torch device string."""
    torch_threads: int | str | None = "auto"
    """torch CPU threads, set at trainer start when the model runs on the CPU (no effect on a
    GPU): a number, "auto" (the default: torch's own, one per core) or None (OMP_NUM_THREADS
    when set, else 1, as `memgym eval`). Training keeps torch's default because its backward
    passes use the cores: 4 quickstart GRPO steps took 43 s with 2 threads and 59-64 s with 1
    on 2 cores (bench/README.md); evaluation alone is the other way round. Set 1 where other
    jobs share the cores and throughput swings."""

    # -- LoRA ----------------------------------------------------------------------------------
    use_lora: bool = True
    """Train a peft LoRA adapter (the reference policy is the base model with the adapter
    disabled, so no second copy). False trains every weight (a frozen copy only if beta > 0)."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by lora_alpha / lora_r)."""
    lora_dropout: float = 0.0
    """LoRA dropout. 0 by default: dropout makes the trainer's log-probs differ from the
    sampler's, which the importance ratio would then read as policy drift."""
    lora_target_modules: str | list[str] = "all-linear"
    """Modules that get adapters: peft's "all-linear" or a list of module names."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass to save memory (slower)."""

    # -- the GRPO batch ------------------------------------------------------------------------
    tasks_per_step: int = 4
    """Distinct tasks (prompts) sampled per rollout; each gets `num_generations` episodes."""
    num_generations: int = 8
    """Episodes per task (the group size G). Every episode of a group starts from the same
    state: `reset(seed, options={"task_id": t})` with the same seed and task."""
    max_steps: int = 100
    """Optimizer steps to train for (the schedule's horizon)."""
    steps_per_generation: int = 1
    """Optimizer steps each rollout batch is split into (by whole groups); `tasks_per_step` must
    be divisible by it. verl's `ppo_mini_batch_size` is tasks_per_step / steps_per_generation."""
    num_iterations: int = 1
    """Passes over each rollout batch (TRL's mu). Above 1, old log-probs are computed once
    before the first pass and the clipped ratio does its job."""
    max_tokens_per_microbatch: int = 8192
    """Token budget of one forward/backward micro-batch (rows x padded length); rows are packed
    by length to fill it. memgym's counterpart of `per_device_train_batch_size`."""
    seed: int = 42
    """Seeds python, numpy, torch, the task order and each group's environment reset."""

    # -- sampling ------------------------------------------------------------------------------
    temperature: float = 1.0
    """Sampling temperature of every trainable LLM call of the agent (nested components such as
    Memory-R1's manager and answerer included: it replaces the recipe's own); the trainer
    divides logits by it too, so its log-probs are those of the distribution that was sampled.
    Frozen calls (trainable: false) keep the recipe's settings."""
    top_p: float = 1.0
    """Nucleus sampling of every trainable LLM call (1.0 disables); it replaces the recipe's."""
    top_k: int = 0
    """Top-k sampling of every trainable LLM call (0 disables); it replaces the recipe's."""
    max_completion_length: int = 1024
    """Longest completion of one trainable LLM call, in tokens: it caps each such call's
    max_new_tokens (`*_max_new_tokens` of flat recipes; each becomes the smaller of the two) and
    is dr_grpo's constant normaliser."""

    # -- rewards and advantages ----------------------------------------------------------------
    reward_weights: dict[str, float] | None = None
    """Weights of the rubric's components for the advantage; None uses the env's own
    (`info["reward_weights"]`). Components are logged separately either way."""
    multi_objective_aggregation: Literal["sum_then_normalize", "normalize_then_sum"] = (
        "sum_then_normalize")
    """sum_then_normalize: weighted sum of components, then group normalisation (GRPO).
    normalize_then_sum: normalise each component within its group, then the weighted sum,
    then batch normalisation (TRL's GDPO-style option)."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Divide centred rewards by the group's std, the batch's std, or not at all (Dr. GRPO;
    MemAgent's `grpo_use_adv=False`)."""
    drop_zero_std_groups: bool = True
    """Drop groups whose rewards are all equal before training: their advantage is zero, so
    they would only cost compute (and dilute per-row losses). Logged as frac_reward_zero_std.
    The kept groups are split into at most `steps_per_generation` optimizer steps, so no step
    is empty while any group is left. A rollout with no group left (every reward equal, e.g. a
    converged policy) is one step without an update: logged with rows 0 and a warning, counted
    toward max_steps (so the run ends) and the schedule, as a zero-advantage batch is in TRL."""
    credit_assignment: Literal["broadcast", "per_step", "step_reward"] = "broadcast"
    """broadcast: every trainable Turn of an episode gets the episode's advantage (MemAgent;
    the episode's reward is its last step's). per_step: each Turn gets the group-normalised
    discounted return from its env step on. step_reward: each Turn gets the group-normalised
    reward of its own env step (Memory-R1: a manager's edit, the frozen reader's EM after it;
    an answer, its EM/F1), `advantages.step_reward_credit`."""
    step_baseline: Literal["step", "group"] = "step"
    """step_reward credit's baseline: the G episodes' rewards at the same step ("step", the
    default: step t is the same turn or question in every episode of a group) or every credited
    step of the group pooled ("group", for episodes that do not line up step by step)."""
    gamma: float = 1.0
    """Discount for per_step credit assignment."""
    normalize_turns_per_episode: bool = True
    """Weight each of an episode's T trainable Turns by 1/T, so an episode over a long document
    (many chunks, many Turns) counts as much as a short one (a memgym choice: MemAgent's verl
    gives every conversation weight 1)."""

    # -- loss ----------------------------------------------------------------------------------
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    """How per-token losses are averaged (TRL's definitions): grpo = mean of per-row means;
    bnpo = mean over the micro-batch's tokens (refused: memgym packs micro-batches by a token
    budget, so bnpo's objective would change with `max_tokens_per_microbatch`); dr_grpo = sum / (rows x max_completion_length);
    dapo = mean over every token of the optimizer step."""
    epsilon: float = 0.2
    """Lower clip range: ratios below 1 - epsilon stop moving a negative-advantage token."""
    epsilon_high: float | None = None
    """Upper clip range (DAPO's clip-higher); None means equal to `epsilon`."""
    beta: float = 0.0
    """Weight of the k3 ("low-variance") KL penalty against the reference policy; 0 skips the
    reference forward entirely."""
    tis_cap: float | None = 2.0
    """Truncated importance sampling: per-token weight exp(old - sampler logprob), capped at
    this value, corrects for the sampler's numerics differing from the trainer's. None
    disables it."""

    # -- optimiser -----------------------------------------------------------------------------
    learning_rate: float = 1e-6
    """AdamW peak learning rate."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    adam_beta1: float = 0.9
    """AdamW beta1."""
    adam_beta2: float = 0.999
    """AdamW beta2."""
    adam_epsilon: float = 1e-8
    """AdamW epsilon."""
    lr_scheduler_type: Literal["constant", "linear", "cosine"] = "constant"
    """Learning rate after warmup: constant, linear decay to 0, or cosine decay to 0."""
    warmup_ratio: float = 0.0
    """Fraction of the optimizer steps spent warming the learning rate up linearly from 0."""
    warmup_steps: int | None = None
    """Warmup length in optimizer steps; overrides warmup_ratio when set."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this value (0 disables clipping)."""

    # -- evaluation ----------------------------------------------------------------------------
    eval_steps: int = 0
    """Evaluate on the held-out split every this many steps (0: never)."""
    eval_tasks: int = 0
    """Hold out the last `eval_tasks` task ids of the source for evaluation; training samples
    only the others."""
    eval_temperature: float = 0.0
    """Sampling temperature of every trainable LLM call in evaluation episodes (0 = greedy;
    top_p 1, top_k 0)."""

    # -- output, logging, checkpoints ---------------------------------------------------------
    output_dir: str = "runs/grpo"
    """The run folder: metrics.jsonl, the learning curve, the resolved recipe, checkpoints."""
    run_name: str | None = None
    """A name for the run (wandb); defaults to the output folder's name."""
    logging_steps: int = 1
    """Print a progress line every this many steps (metrics.jsonl gets every step)."""
    report_to: str | list[str] = "none"
    """Extra loggers: "wandb" or "none" (the JSONL file and plot are always written). wandb
    runs offline when WANDB_API_KEY is unset and never fails the run."""
    wandb_project: str = "memgym"
    """The wandb project."""
    num_sample_episodes: int = 2
    """Episodes per logged step shown in the wandb sample table (memory after each step)."""
    save_steps: int = 50
    """Write `checkpoint-<step>` every this many steps (0: only at the end)."""
    save_total_limit: int | None = 2
    """Keep at most this many checkpoints (oldest deleted first); None keeps all."""
    max_concurrent_episodes: int | None = None
    """Episodes run concurrently in one rollout (None: all of the batch at once)."""
    rollout_batch_size: int = 64
    """Most LLM calls the backend decodes together (bounds the KV cache); calls of further
    concurrent episodes queue and join as rows finish."""
    generation_backend: Literal["transformers", "vllm", "vllm-server"] = "transformers"
    """Who samples the rollouts. transformers: the trained model itself (always in sync). vllm:
    an offline vLLM engine on the same GPU (`pip install memgym[vllm]`), loaded from `model`
    (a hub id or path) and given the trained weights (LoRA folded in) before each rollout or
    evaluation whose weights changed, including the first after a resume. Evaluation episodes
    use the same engine. vllm-server: running `trl vllm-serve` servers (`vllm_server_urls`,
    load-balanced), given the weights over NCCL the same way (memgym.llm.vllm_server)."""
    vllm_server_urls: list[str] = field(default_factory=list)
    """The `trl vllm-serve` servers of generation_backend=vllm-server, e.g.
    ["http://gen-node:8000", "http://gen-node:8001"]; they must serve `model`."""
    vllm_server_timeout: float = 240.0
    """Seconds to wait for each vLLM server to answer at start-up (it may still be loading)."""
    vllm_gpu_memory_utilization: float = 0.3
    """Fraction of GPU memory vLLM may take (the rest is the trainer's)."""
    vllm_max_model_len: int | None = None
    """vLLM's context length, prompt plus completion (a longer prompt fails alone, on its Turn).
    None: the model's own; vLLM must fit one sequence of that length at start-up, so on a
    shared GPU set it to the longest prompt plus completion the recipe produces."""
    vllm_max_num_batched_tokens: int | None = None
    """Tokens vLLM schedules per forward pass (bounds its activation memory). None: vLLM's
    default; TRL uses 4096 when vLLM shares the GPU with training."""

    # -- a non-LLM policy -----------------------------------------------------------------------
    module_policy: dict[str, Any] | None = None
    """Train the agent's torch-module policy (RMM's reranker) with REINFORCE instead of the LLM:
    the settings of `memgym.trainer.module_policy.ModulePolicySpec` (backend, model of the
    frozen LLM, batch_size, baseline). None: GRPO on the LLM."""

    # -- a frozen reader for the env ----------------------------------------------------------
    frozen_reader: dict[str, Any] | None = None
    """A frozen answer agent injected into the env as `reader=` (Memory-R1's manager reward):
    the settings of `memgym.trainer.frozen_reader.FrozenReaderSpec` (agent recipe, backend,
    model). None: the env gets no reader (env kwargs cannot hold callables)."""

    # -- derived (computed in __post_init__, not set from recipes) ----------------------------
    episodes_per_step: int = field(init=False)
    """tasks_per_step x num_generations."""
    tasks_per_optimizer_step: int = field(init=False)
    """tasks_per_step / steps_per_generation."""
    epsilon_high_resolved: float = field(init=False)
    """epsilon_high, or epsilon when unset."""

    def __post_init__(self) -> None:
        """Validate values that the types cannot, and compute the derived fields."""
        self._check_positive()
        self._check_vllm_model()
        self._check_vllm_server()
        self._check_non_negative()
        self._check_groups()
        self._check_sampling()
        self._check_loss()
        self._check_credit()
        self._check_run()
        self.episodes_per_step = self.tasks_per_step * self.num_generations
        self.tasks_per_optimizer_step = self.tasks_per_step // self.steps_per_generation
        self.epsilon_high_resolved = (self.epsilon if self.epsilon_high is None
                                      else self.epsilon_high)

    def _check_positive(self) -> None:
        """Counts and sizes must be positive."""
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a positive integer")

    def _check_vllm_server(self) -> None:
        if self.generation_backend == "vllm-server" and not self.vllm_server_urls:
            raise ConfigError("generation_backend='vllm-server' needs vllm_server_urls, e.g. "
                              "vllm_server_urls=[http://127.0.0.1:8000] (start the server with "
                              "`trl vllm-serve --model MODEL`)")
        if self.vllm_server_urls and self.generation_backend != "vllm-server":
            raise ConfigError(f"vllm_server_urls is set but generation_backend="
                              f"{self.generation_backend!r}; set generation_backend=vllm-server")

    def _check_vllm_model(self) -> None:
        """A vLLM sampler loads `model` itself, so it must be a hub id or a path."""
        if self.generation_backend == "vllm" and self.model in ("tiny", "embedded"):
            raise ConfigError(f"generation_backend='vllm' needs model= a hub id or local path "
                              f"vLLM can load, not {self.model!r}")

    def _check_non_negative(self) -> None:
        """Intervals, rates and coefficients must not be negative."""
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 0")

    def _check_groups(self) -> None:
        """A group needs two episodes, and optimizer steps take whole groups."""
        if self.num_generations < 2:
            raise ConfigError(
                f"num_generations={self.num_generations}: GRPO needs at least 2 episodes per "
                "task to have a group baseline; set num_generations >= 2")
        if self.tasks_per_step % self.steps_per_generation:
            raise ConfigError(
                f"tasks_per_step={self.tasks_per_step} is not divisible by steps_per_generation="
                f"{self.steps_per_generation}; each optimizer step takes whole groups, so pick "
                "tasks_per_step as a multiple of steps_per_generation")

    def _check_sampling(self) -> None:
        """Rollout sampling settings the trainer's log-probs can follow."""
        if not 0 < self.temperature:
            raise ConfigError(f"temperature={self.temperature} must be > 0 for training (the "
                              "trainer divides logits by it); use eval_temperature=0 for greedy "
                              "evaluation")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p} must be in (0, 1]")
        if self.top_k < 0:
            raise ConfigError(f"top_k={self.top_k} must be >= 0 (0 disables top-k)")
        if (self.generation_backend in ("vllm", "vllm-server") and self.tis_cap is not None
                and (self.top_p < 1 or self.top_k > 0)):
            raise ConfigError(
                f"tis_cap={self.tis_cap} with generation_backend='vllm' and top_p={self.top_p}, "
                f"top_k={self.top_k}: vLLM reports log-probs of the truncated (renormalised) "
                "distribution while the trainer computes the full softmax, so the importance "
                "weight would be biased down by the kept mass. Set top_p=1.0 and top_k=0, or "
                "tis_cap=null")

    def _check_loss(self) -> None:
        """A packing-invariant loss, and the clip, weight, schedule and LoRA ranges (_RANGES)."""
        if self.loss_type == "bnpo":
            raise ConfigError(
                "loss_type='bnpo' averages tokens per micro-batch, and memgym packs micro-batches "
                "by a token budget, so the objective would change with max_tokens_per_microbatch"
                "; use loss_type='dapo' (the token mean over the whole optimizer step, bnpo's "
                "packing-invariant form)")
        for name, out_of_range, rule in _RANGES:
            if out_of_range(getattr(self, name)):
                raise ConfigError(f"{name}={getattr(self, name)} {rule}")

    def _check_credit(self) -> None:
        """Per-step credit works on the weighted step reward."""
        if (self.credit_assignment in ("per_step", "step_reward")
                and self.multi_objective_aggregation != "sum_then_normalize"):
            raise ConfigError(
                f"credit_assignment={self.credit_assignment!r} works on the weighted step "
                "reward; set "
                "multi_objective_aggregation='sum_then_normalize' (or use credit_assignment="
                "'broadcast' with normalize_then_sum)")

    def _check_run(self) -> None:
        """Checkpointing, concurrency, logging, evaluation and agent settings."""
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise ConfigError(f"save_total_limit={self.save_total_limit} must be >= 1 or null")
        if self.max_concurrent_episodes is not None and self.max_concurrent_episodes < 1:
            raise ConfigError(
                f"max_concurrent_episodes={self.max_concurrent_episodes} must be >= 1 or null")
        threads = self.torch_threads
        if threads not in (None, "auto") and (isinstance(threads, bool) or
                                               not str(threads).isdigit() or int(threads) < 1):
            raise ConfigError(f"torch_threads={threads!r}: give a positive number, 'auto' "
                              "(torch's default) or null (1 on CPU unless OMP_NUM_THREADS)")
        reporters = [self.report_to] if isinstance(self.report_to, str) else list(self.report_to)
        for name in reporters:
            if name not in ("none", "wandb"):
                raise ConfigError(f"report_to={name!r}; choose 'wandb' or 'none'")
        per_rollout = self.steps_per_generation * self.num_iterations
        if self.save_steps % per_rollout:
            raise ConfigError(
                f"save_steps={self.save_steps} must be a multiple of steps_per_generation x "
                f"num_iterations = {per_rollout}: a checkpoint is taken between rollouts, so a "
                "resumed run never needs the episodes of a half-used rollout")
        if self.eval_steps and not self.eval_tasks:
            raise ConfigError(f"eval_steps={self.eval_steps} needs a held-out split: set "
                              "eval_tasks to the number of task ids to hold out")
        if not isinstance(self.agent, (str, dict)) or not self.agent:
            raise ConfigError("agent must be a recipe path or a recipe mapping")

    @property
    def reporters(self) -> list[str]:
        """report_to as a list without "none"."""
        names = [self.report_to] if isinstance(self.report_to, str) else list(self.report_to)
        return [n for n in names if n != "none"]

    @property
    def num_warmup_steps(self) -> int:
        """Warmup length in optimizer steps (warmup_steps, else warmup_ratio x max_steps)."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return round(self.warmup_ratio * self.max_steps)

    def to_dict(self) -> dict[str, Any]:
        """The recipe fields (not the derived ones) as a plain dict, for run folders and wandb."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}


RESUME_SAFE_KEYS: frozenset[str] = frozenset({
    "max_steps", "output_dir", "run_name", "logging_steps", "report_to", "wandb_project",
    "num_sample_episodes", "save_steps", "save_total_limit", "eval_steps", "device",
    "torch_threads",
    "max_concurrent_episodes", "rollout_batch_size", "max_tokens_per_microbatch",
    "gradient_checkpointing", "vllm_gpu_memory_utilization", "vllm_max_num_batched_tokens",
})
"""Keys a resumed run may change: where and how often it logs, saves and evaluates, its
horizon, and memory/throughput knobs that leave the objective alone (the loss is
packing-invariant, seeded sampling is batch-invariant). A changed `max_steps` also moves a
linear or cosine schedule's end. Every other key changes what the checkpoint's state means."""


KEYS_HELP[GRPOConfig] = "memgym train --help-keys"  # named by unknown-key errors


def config_changes(saved: Mapping[str, Any], config: GRPOConfig) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs between a checkpoint's stored config and `config`.

    Values are compared after a JSON round trip (as stored), so tuples equal lists.
    Returns {key: (saved value, new value)}; keys missing from `saved` are skipped.
    """
    import json

    now = json.loads(json.dumps(config.to_dict(), default=str))
    return {k: (saved[k], v) for k, v in now.items() if k in saved and saved[k] != v}


def check_resume_config(saved: Mapping[str, Any], config: GRPOConfig, *, where: str
                        ) -> dict[str, tuple[Any, Any]]:
    """Refuse a resume whose config changed beyond RESUME_SAFE_KEYS; return the safe changes.

    Raises:
        ConfigError: naming every changed key with its checkpoint value and its new value.
    """
    changes = config_changes(saved, config)
    bad = {k: v for k, v in changes.items() if k not in RESUME_SAFE_KEYS}
    if bad:
        listed = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(bad.items()))
        raise ConfigError(
            f"--resume {where}: the config differs from the checkpoint's ({listed}). Resume with "
            f"the checkpoint's values, or start a new run in another output_dir; only "
            f"{', '.join(sorted(RESUME_SAFE_KEYS))} may change on resume")
    return changes


# A recipe may group the trainer keys under `trainer:` (the issue's `trainer.num_generations=8`
# spelling); they are flattened into the one config, so both spellings mean the same thing.
_SECTION = "trainer"


def _flatten_section(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    data = dict(data)
    section = data.pop(_SECTION, None)
    if section is None:
        return data
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: `{_SECTION}` must be a mapping of trainer keys")
    for key, value in section.items():
        if key in data and data[key] != value:
            raise ConfigError(f"{where}: {key!r} is set both at the top level and under "
                              f"`{_SECTION}:`; keep one")
        data[key] = value
    return data


def load_config(recipe: str | Path | Mapping[str, Any] | None = None,
                overrides: Sequence[str] | Mapping[str, Any] = ()) -> GRPOConfig:
    """Build a validated GRPOConfig from a YAML recipe (or mapping) plus `key=value` overrides.

    Args:
        recipe: a recipe file, a shipped training recipe's name ("quickstart", the stem of a
            file in `train/`), a mapping, or None for the defaults.
        overrides: `["num_generations=8", "env_kwargs.chunk_tokens=64"]` or a mapping; they win
            over the recipe. `trainer.<key>` is accepted as a spelling of `<key>`.

    Raises:
        ConfigError: naming every unknown key (with the nearest valid one) or bad value.
    """
    if recipe is None:
        data: dict[str, Any] = {}
        where = "config"
    elif isinstance(recipe, Mapping):
        data, where = dict(recipe), "config"
    else:
        from memgym.recipes import find_recipe

        path = find_recipe(recipe, "train")
        data, where = load_yaml(path), str(path)
    extra = parse_overrides(list(overrides)) if not isinstance(overrides, Mapping) else dict(
        overrides)
    data = _flatten_section(data, where)
    extra = _flatten_section(extra, "overrides")
    # A recipe path for `agent` replaced by a mapping override would silently drop the file;
    # merge() handles mapping-over-mapping, and a path stays a path unless overridden whole.
    data = merge(data, extra)  # memgym.config reads YAML-1.1 strings like '1e-6' as floats
    try:
        return from_dict(GRPOConfig, data, where=where)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
