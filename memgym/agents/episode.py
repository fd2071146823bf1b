"""The episode runner: play an agent on an env, and many episodes concurrently.

Evaluation and the trainer both roll out through these two functions, lend envs from one
`EnvPool`, and derive every seed (reset, sampling, per-call) with one `derive_seed`:

    >>> episode = await run_episode(env, agent, seed=0, task_id=3)
    >>> jobs = [EpisodeJob(task_id=3, seed=0, sampling_seed=g) for g in range(8)]   # a GRPO group
    >>> group = await run_episodes(lambda: gym.make("MemAgent-HotpotQA-v0"), agent, jobs)

`reset(seed=seed, options={"task_id": task_id})` is deterministic, so episodes with the same
(seed, task_id) start from an identical state (same task, same document order); what makes the
episodes of a group differ is their `sampling_seed` (or unseeded sampling). Episodes run as
concurrent coroutines, each on its own env instance, and the LLM backend batches their calls.

`run_sync` (memgym's one coroutine runner, `memgym._async`, re-exported here) runs such a
coroutine from synchronous code, also where an event loop is already running (a Jupyter cell),
which `asyncio.run` refuses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from memgym._async import run_sync
from memgym.agents.base import Agent, EpisodeContext, Turn
from memgym.data.task import Task
from memgym.errors import ConfigError
from memgym.rewards.rubric import EPISODE_RESULT_KEY

__all__ = ["EnvPool", "Episode", "EpisodeJob", "derive_seed", "episode_result", "run_episode",
           "run_episodes", "run_sync"]


def derive_seed(*parts: int) -> int:
    """A 31-bit seed mixed from integers, unrelated across parts: the one seed helper.

    Every derived seed in memgym comes from here: the trainer's reset and sampling seeds
    (run seed, rollout, group[, slot]), eval's sampling seed (run seed, task id, attempt) and an
    episode's per-call seed (episode sampling seed, call index). Mixing through
    `numpy.random.SeedSequence` keeps neighbours unrelated (parts (s, 1) and (s + 1, 0) do not
    collide); negative parts count by their absolute value.
    """
    state = np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)
    return int(state[0]) & 0x7FFFFFFF


class EnvPool:
    """Envs built lazily and lent to one episode at a time: the one env pool of eval and trainer.

    An env whose task source is expensive to load is built a few times (at most as many as
    episodes ever run at once), not once per episode; a pool kept across calls of
    `run_episodes` (the trainer's, one per rollout) builds them once for the whole run.

    Args:
        make_env: builds a fresh env.
        max_envs: the most envs the pool may build (None: no limit); pass the concurrency of
            the runs it serves.
        envs: envs already built (e.g. a probe that read `num_tasks`), lent first.
    """

    def __init__(self, make_env: Callable[[], gym.Env], max_envs: int | None = None, *,
                 envs: Iterable[gym.Env] = ()):
        self._make = make_env
        self.max_envs = max_envs
        self._idle: list[gym.Env] = list(envs)
        self._all: list[gym.Env] = list(self._idle)

    def acquire(self) -> gym.Env:
        """An idle env, or a newly built one when all are lent out."""
        if self._idle:
            return self._idle.pop()
        if self.max_envs is not None and len(self._all) >= self.max_envs:
            raise ConfigError(f"EnvPool(max_envs={self.max_envs}): every env is lent out; run "
                              f"at most {self.max_envs} episodes at once (concurrency)")
        env = self._make()
        self._all.append(env)
        return env

    def release(self, env: gym.Env) -> None:
        """Give back an env taken with `acquire`."""
        self._idle.append(env)

    def first(self) -> gym.Env:
        """One env of the pool, built if there is none yet (e.g. to read `num_tasks`)."""
        if not self._all:
            self.release(self.acquire())
        return self._all[0]

    @property
    def size(self) -> int:
        """How many envs the pool has built (or was given)."""
        return len(self._all)

    def close(self) -> None:
        """Close every env of the pool."""
        for env in self._all:
            env.close()
        self._all.clear()
        self._idle.clear()


@dataclass
class Episode:
    """Everything one episode produced: actions, memory trace, rewards, LLM turns, timing.

    Attributes:
        task_id, seed: what `reset` was given.
        sampling_seed: the seed the agent's LLM calls derived their seeds from (None: unseeded).
        actions: every action, in step order (memory writes, then the answer).
        trace: the env's memory after each step (observation["memory"]; the answer step's
            entry repeats the final memory), or for a memory-bank env its
            `info["memory_trace"]`: what each step changed ("ADD [4] ...") or read.
        rewards: the reward of each step.
        step_components: each step's `info["reward_components"]`, the components that step
            scored (empty for a step that scored none): what per-step credit re-weights (a dialogue env's write steps carry
            the frozen reader's score, its answer steps the answer's EM/F1).
        reward, reward_components: the episode's result, as the env reported it at
            termination in `info["episode_result"]` (memgym's episode contract): for a dialogue env
            the weighted components averaged over its questions and writes, never its last
            question's. Eval, the trainer and their logs all read these two.
        reward_weights: the env's component weights (`info["reward_weights"]`).
        info: the final step's info (answer, golds, peak_context_tokens, memory_tokens, and
            `episode_result`: the result and, for a dialogue env, its per-question records).
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
    step_components: list[dict[str, float]] = field(default_factory=list)
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


def _memory_trace(obs: Any, info: Mapping[str, Any]) -> str:
    """The memory after a step: the observation's `memory` (an overwrite memory), else the
    env's `info["memory_trace"]` (a memory bank: what the step changed or read)."""
    if isinstance(obs, dict) and "memory" in obs:
        return str(obs["memory"])
    return str(info.get("memory_trace", ""))


def episode_result(env: gym.Env, info: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
    """The episode's (reward, reward components): the terminating step's `info["episode_result"]`.

    memgym's one episode contract: an env reports its episode's result at termination, and
    nothing else (not the last step's reward) is the episode's score.

    Raises:
        ConfigError: the env ended the episode without a well-formed `info["episode_result"]`
            (`EPISODE_RESULT_KEY`).
    """
    result = info.get(EPISODE_RESULT_KEY)
    if (not isinstance(result, Mapping) or not isinstance(result.get("reward"), (int, float))
            or not isinstance(result.get("reward_components"), Mapping)):
        name = getattr(getattr(env, "spec", None), "id", None) or type(env.unwrapped).__name__
        raise ConfigError(
            f"{name} ended an episode without info[{EPISODE_RESULT_KEY!r}] = {{'reward': float, "
            f"'reward_components': {{name: float}}}} (got {result!r:.80}); a memgym env reports "
            "its episode's result at termination (memgym.testing.check_memgym_env checks it)")
    return float(result["reward"]), {k: float(v) for k, v in result["reward_components"].items()}


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

    An env whose `unwrapped.step_blocks` is true (a dialogue env with a frozen reader or a
    judge, whose `step` waits on a model) is stepped on a worker thread, so the other episodes
    of `run_episodes` go on meanwhile; any other env is stepped on the loop.

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
    blocking = bool(getattr(env.unwrapped, "step_blocks", False))
    terminated = truncated = False
    while not (terminated or truncated):
        if max_steps is not None and episode.num_steps >= max_steps:
            raise ConfigError(f"episode of task {task_id} did not end within max_steps={max_steps}")
        ctx.step = episode.num_steps
        action = await agent.act(obs, ctx)
        if blocking:  # the step waits on a model (a frozen reader): let other episodes run
            obs, reward, terminated, truncated, info = await asyncio.to_thread(env.step, action)
        else:
            obs, reward, terminated, truncated, info = env.step(action)
        episode.actions.append(action)
        episode.rewards.append(float(reward))
        episode.step_components.append(dict(info.get("reward_components", {})))
        episode.trace.append(_memory_trace(obs, info))
    episode.reward, episode.reward_components = episode_result(env, info)
    episode.reward_weights = dict(info.get("reward_weights", {}))
    episode.info = dict(info)
    episode.wall_time_s = time.perf_counter() - start
    return episode


async def run_episodes(envs: EnvPool | Callable[[], gym.Env], agent: Agent,
                       jobs: Iterable[EpisodeJob], *, concurrency: int = 8,
                       on_episode: Callable[[EpisodeJob, Episode], None] | None = None,
                       ) -> list[Episode]:
    """Run many episodes as concurrent coroutines, at most `concurrency` at a time.

    Each running episode has its own env, lent by an EnvPool (so at most `concurrency` envs are
    built, and each is reused for later episodes).

    Args:
        envs: an EnvPool to borrow from (left open: its owner closes it), or a `make_env`
            callable (e.g. `lambda: gym.make(env_id, **kwargs)`) for a pool of this call only,
            closed at the end.
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
    pool = envs if isinstance(envs, EnvPool) else EnvPool(envs)
    slots = asyncio.Semaphore(concurrency)

    async def play(i: int, job: EpisodeJob) -> None:
        async with slots:
            env = pool.acquire()
            try:
                episode = await run_episode(env, agent, seed=job.seed, task_id=job.task_id,
                                            sampling_seed=job.sampling_seed)
            finally:
                pool.release(env)
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
        if pool is not envs:
            pool.close()
    return [episode for episode in results if episode is not None]
