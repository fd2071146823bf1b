"""Single-turn memgym environments for TRL's `GRPOTrainer`: a dataset plus one reward function
per rubric component.

    >>> adapter = TRLEnvAdapter("MemAgent-Synthetic-v0", prefix_policy=oracle_memory_policy)
    >>> trainer = trl.GRPOTrainer(model, reward_funcs=adapter.reward_funcs,
    ...                           train_dataset=adapter.dataset(),
    ...                           args=trl.GRPOConfig(reward_weights=adapter.reward_weights, ...))

TRL trains one completion per prompt, so the adapter exposes the *last* action of an episode:
the dataset's prompt is the observation of the final step (for a long-context env, the question
and the memory), the completion is that step's action (the answer), and each reward function
replays the episode deterministically (`reset(seed, task_id)`, the same prefix actions) and
steps the completion. A natively single-turn env needs no prefix; a multi-step env needs a
`prefix_policy` that writes the earlier actions (e.g. the synthetic task's oracle memory, or a
frozen model's memories), so TRL users can train the answer call on memories of their choice.

Each rubric component is its own reward function named after the component, so TRL logs
`rewards/<component>/mean` separately; `reward_weights` carries the env's weights in the same
order; the component functions share one scoring of each completion.

The prefix is replayed once per (task, seed): the env at its final step is kept and deep-copied
before each completion is stepped, so the prefix policy runs once per task however many
completions TRL samples (with an LLM prefix policy, one episode per task, not per completion),
and every completion is scored on the very state its prompt showed, even when the prefix
policy samples. The copy shares the env's read-only parts (its task list and token counter).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

from memgym.errors import ConfigError

__all__ = ["TRLEnvAdapter", "memagent_answer_prompt"]

Observation = Mapping[str, str]


def memagent_answer_prompt(obs: Observation) -> str:
    """MemAgent's final-answer prompt from an observation's question and memory."""
    from memgym.agents.prompts import MEMAGENT_FINAL
    return MEMAGENT_FINAL.render(question=obs["question"], memory=obs["memory"])


def _is_answer_phase(obs: Observation) -> bool:
    return obs.get("phase", "answer") == "answer"


class TRLEnvAdapter:
    """A memgym env as a TRL GRPO dataset and per-component reward functions.

    Args:
        env_id: a registered memgym environment.
        env_kwargs: keyword arguments for `gym.make`.
        prefix_policy: writes every action before the final one: (observation) -> action.
            None requires the env to be in its final phase right after `reset`.
        render: the prompt text from the final observation (default: MemAgent's answer prompt).
        is_final: whether an observation is the one the completion answers (default: the
            long-context env's "answer" phase).
        seed: the reset seed of every task.
        max_prefix_steps: a guard against a prefix that never reaches the final phase.
    """

    def __init__(self, env_id: str, env_kwargs: Mapping[str, Any] | None = None, *,
                 prefix_policy: Callable[[Observation], str] | None = None,
                 render: Callable[[Observation], str] = memagent_answer_prompt,
                 is_final: Callable[[Observation], bool] = _is_answer_phase,
                 seed: int = 0, max_prefix_steps: int = 10_000):
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.prefix_policy = prefix_policy
        self.render = render
        self.is_final = is_final
        self.seed = seed
        self.max_prefix_steps = max_prefix_steps
        self.env = gym.make(env_id, **self.env_kwargs)
        self._finals: dict[tuple[int, int], tuple[gym.Env, Observation]] = {}
        self._cache: dict[tuple[int, int, str], dict[str, float]] = {}
        self.components, weights = self._probe_rubric()
        self.reward_weights = [float(weights.get(c, 0.0)) for c in self.components]
        self.reward_funcs = [self._component_reward(c) for c in self.components]

    # -- episodes -------------------------------------------------------------------------------
    def _obs_at_final(self, obs: Observation, task_id: int) -> Observation:
        steps = 0
        while not self.is_final(obs):
            if self.prefix_policy is None:
                raise ConfigError(
                    f"{self.env_id} is not single-turn: task {task_id} starts in phase "
                    f"{obs.get('phase')!r}; pass prefix_policy= to write the earlier actions")
            obs, _, terminated, truncated, _ = self.env.step(self.prefix_policy(obs))
            steps += 1
            if terminated or truncated or steps > self.max_prefix_steps:
                raise ConfigError(f"the prefix policy ended task {task_id} of {self.env_id} "
                                  "before its final step")
        return obs

    def _final(self, task_id: int, seed: int) -> tuple[gym.Env, Observation]:
        """The env at the final step of task `task_id` (replayed once, then kept) and its obs."""
        key = (int(task_id), int(seed))
        if key not in self._finals:
            obs, _ = self.env.reset(seed=key[1], options={"task_id": key[0]})
            obs = self._obs_at_final(obs, key[0])
            if len(self._finals) >= 65_536:  # bound memory over a huge task set
                self._finals.clear()
            self._finals[key] = (self._copy(self.env), obs)
        return self._finals[key]

    def _replay(self, task_id: int, seed: int) -> Observation:
        """The final observation of task `task_id` (what the dataset's prompt shows)."""
        return self._final(task_id, seed)[1]

    def _copy(self, env: gym.Env) -> gym.Env:
        # Deep copy, sharing what no step mutates (the task list, possibly large, and the token
        # counter, possibly a whole tokenizer).
        inner = env.unwrapped
        memo: dict[int, Any] = {}
        for shared in (getattr(inner, "tasks", None), getattr(inner, "counter", None)):
            if shared is not None:
                memo[id(shared)] = shared
        for task in getattr(inner, "tasks", None) or ():
            memo[id(task)] = task
        return copy.deepcopy(env, memo)

    def _step_final(self, task_id: int, seed: int, action: str) -> tuple[bool, dict[str, Any]]:
        """Step `action` on a copy of the final-step env; (terminated, info)."""
        env = self._copy(self._final(task_id, seed)[0])
        _, _, terminated, _, info = env.step(action)
        return terminated, info

    def _probe_rubric(self) -> tuple[list[str], dict[str, float]]:
        terminated, info = self._step_final(0, self.seed, "")
        if not terminated:
            raise ConfigError(f"{self.env_id}: the episode did not end after the final action; "
                              "adjust is_final= to mark the last observation")
        return list(info["reward_components"]), dict(info.get("reward_weights", {}))

    def score(self, task_id: int, seed: int, completion: str) -> dict[str, float]:
        """Every reward component of `completion` as the final action of task `task_id`."""
        key = (int(task_id), int(seed), completion)
        if key not in self._cache:
            terminated, info = self._step_final(key[0], key[1], completion)
            if not terminated:
                raise ConfigError(f"{self.env_id} task {task_id}: the episode did not end after "
                                  "the completion")
            if len(self._cache) > 100_000:  # bound memory over a long run
                self._cache.clear()
            self._cache[key] = dict(info["reward_components"])
        return self._cache[key]

    # -- what TRL consumes ----------------------------------------------------------------------
    def dataset(self, task_ids: list[int] | range | None = None) -> Any:
        """A `datasets.Dataset` with a conversational `prompt`, `task_id` and `seed` per task."""
        from datasets import Dataset

        if task_ids is None:
            num = getattr(self.env.unwrapped, "num_tasks", None)
            if num is None:
                raise ConfigError(f"{self.env_id} has no num_tasks; pass task_ids=")
            task_ids = range(num)
        rows = {"prompt": [], "task_id": [], "seed": []}
        for t in task_ids:
            obs = self._replay(int(t), self.seed)
            rows["prompt"].append([{"role": "user", "content": self.render(obs)}])
            rows["task_id"].append(int(t))
            rows["seed"].append(self.seed)
        return Dataset.from_dict(rows)

    def _component_reward(self, name: str) -> Callable[..., list[float]]:
        def reward(prompts: list[Any], completions: list[Any], task_id: list[int],
                   seed: list[int], **kwargs: Any) -> list[float]:
            return [self.score(t, s, _text(c))[name]
                    for c, t, s in zip(completions, task_id, seed)]

        reward.__name__ = name  # TRL logs rewards/<__name__>/mean
        reward.__doc__ = f"The {name!r} component of {self.env_id}'s rubric."
        return reward


def _text(completion: Any) -> str:
    # TRL passes a string (standard format) or a list of messages (conversational format).
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], Mapping):
        return str(completion[-1].get("content", ""))
    return str(completion)
