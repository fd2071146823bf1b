"""The episode runner: play an agent on an env, and many episodes concurrently.

Evaluation and the trainer both roll out through these two functions:

    >>> episode = await run_episode(env, agent, seed=0, task_id=3)
    >>> jobs = [EpisodeJob(task_id=3, seed=0, sampling_seed=g) for g in range(8)]   # a GRPO group
    >>> group = await run_episodes(lambda: gym.make("MemAgent-HotpotQA-v0"), agent, jobs)

`reset(seed=seed, options={"task_id": task_id})` is deterministic, so episodes with the same
(seed, task_id) start from an identical state (same task, same document order); what makes the
episodes of a group differ is their `sampling_seed` (or unseeded sampling). Episodes run as
concurrent coroutines, each on its own env instance, and the LLM backend batches their calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from memgym.agents.base import Agent, EpisodeContext, Turn
from memgym.data.task import Task
from memgym.errors import ConfigError

__all__ = ["Episode", "EpisodeJob", "run_episode", "run_episodes"]


@dataclass
class Episode:
    """Everything one episode produced: actions, memory trace, rewards, LLM turns, timing.

    Attributes:
        task_id, seed: what `reset` was given.
        sampling_seed: the seed the agent's LLM calls derived their seeds from (None: unseeded).
        actions: every action, in step order (memory writes, then the answer).
        trace: the env's memory after each step (observation["memory"]); the answer step's
            entry repeats the final memory.
        rewards: the reward of each step.
        reward: the final step's reward (the episode's score).
        reward_components, reward_weights: the final step's `info` entries.
        info: the final step's info (answer, golds, peak_context_tokens, memory_tokens, ...).
        turns: every LLM call, in order (what the trainer trains on).
        wall_time_s: wall time of the whole episode.
        task: the task played (`env.unwrapped.task`), when the env exposes it.
    """

    task_id: int | None
    seed: int | None
    sampling_seed: int | None = None
    actions: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    reward: float = 0.0
    reward_components: dict[str, float] = field(default_factory=dict)
    reward_weights: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    wall_time_s: float = 0.0
    task: Task | None = None

    @property
    def num_steps(self) -> int:
        """Number of env steps taken."""
        return len(self.actions)


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to run: the task, the reset seed, the sampling seed and a caller's label.

    `key` is carried through untouched (eval uses the attempt index, the trainer the group slot).
    """

    task_id: int | None
    seed: int | None
    sampling_seed: int | None = None
    key: Any = None


async def run_episode(env: gym.Env, agent: Agent, *, seed: int | None, task_id: int | None,
                      sampling_seed: int | None = None, max_steps: int | None = None) -> Episode:
    """Play one episode of `agent` on `env` and record it.

    Args:
        env: a memgym env (or any Gymnasium env with text observations and actions); it is reset
            here, so one env serves many episodes in turn but only one at a time.
        agent: the policy; if it declares `needs_task = True` it gets `ctx.task` (the oracle).
        seed: the reset seed.
        task_id: the task to play (`options["task_id"]`); None lets the env draw one.
        sampling_seed: seeds the agent's LLM calls (see EpisodeContext).
        max_steps: stop with a ConfigError after this many steps (a guard for envs that never
            terminate); None trusts the env to end the episode.

    Returns:
        The Episode. Errors of LLM calls are recorded on its turns, not raised; an exception from
        the agent or the env propagates.
    """
    start = time.perf_counter()
    options = {} if task_id is None else {"task_id": task_id}
    obs, info = env.reset(seed=seed, options=options)
    task = getattr(env.unwrapped, "task", None)
    ctx = EpisodeContext(sampling_seed=sampling_seed)
    if getattr(agent, "needs_task", False):
        ctx.task = task
    episode = Episode(task_id=task_id if task_id is not None else info.get("task_id"),
                      seed=seed, sampling_seed=sampling_seed, turns=ctx.turns,
                      task=task if isinstance(task, Task) else None)
    terminated = truncated = False
    while not (terminated or truncated):
        if max_steps is not None and episode.num_steps >= max_steps:
            raise ConfigError(f"episode of task {task_id} did not end within max_steps={max_steps}")
        ctx.step = episode.num_steps
        action = await agent.act(obs, ctx)
        obs, reward, terminated, truncated, info = env.step(action)
        episode.actions.append(action)
        episode.rewards.append(float(reward))
        episode.trace.append(obs.get("memory", "") if isinstance(obs, dict) else "")
    episode.reward = episode.rewards[-1] if episode.rewards else 0.0
    episode.reward_components = dict(info.get("reward_components", {}))
    episode.reward_weights = dict(info.get("reward_weights", {}))
    episode.info = dict(info)
    episode.wall_time_s = time.perf_counter() - start
    return episode


async def run_episodes(make_env: Callable[[], gym.Env], agent: Agent, jobs: Iterable[EpisodeJob],
                       *, concurrency: int = 8,
                       on_episode: Callable[[EpisodeJob, Episode], None] | None = None,
                       ) -> list[Episode]:
    """Run many episodes as concurrent coroutines, at most `concurrency` at a time.

    Each running episode has its own env, taken from a pool that `make_env` fills lazily (at most
    `concurrency` envs are ever built, and each is reused for later episodes), so an env whose
    task source is expensive to load is built a few times, not once per episode.

    Args:
        make_env: builds a fresh env (e.g. `lambda: gym.make(env_id, **kwargs)`).
        agent: the policy; it must keep per-episode state in its EpisodeContext only.
        jobs: the episodes to run.
        concurrency: the most episodes in flight (so the most LLM calls the backend batches).
        on_episode: called as each episode finishes (in completion order), e.g. to append a row
            to a file; an exception it raises aborts the run.

    Returns:
        The episodes in job order. If any episode raises, the others are cancelled and the
        exception propagates.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    jobs = list(jobs)
    results: list[Episode | None] = [None] * len(jobs)
    idle: list[gym.Env] = []
    built: list[gym.Env] = []
    slots = asyncio.Semaphore(concurrency)

    async def play(i: int, job: EpisodeJob) -> None:
        async with slots:
            if idle:
                env = idle.pop()
            else:
                env = make_env()
                built.append(env)
            try:
                episode = await run_episode(env, agent, seed=job.seed, task_id=job.task_id,
                                            sampling_seed=job.sampling_seed)
            finally:
                idle.append(env)
            results[i] = episode
            if on_episode is not None:
                on_episode(job, episode)

    tasks = [asyncio.ensure_future(play(i, job)) for i, job in enumerate(jobs)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for env in built:
            env.close()
    return [episode for episode in results if episode is not None]
