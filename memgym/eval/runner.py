"""The evaluation runner: N tasks x K attempts of an agent on an env, into files, resumable.

    >>> summary = evaluate("MemAgent-HotpotQA-v0", agent, out_dir="runs/x", episodes=128)

Writes into `out_dir`:
  - run.json: what was run (env id and kwargs, the data file a default read included; recipe,
    whether the agent reads the task (`agent_needs_task`), backend, seeds, K, versions); a
    resumed run must match it.
  - predictions.jsonl: one row per (task_id, attempt): prediction, golds, every reward
    component, turns (component, token counts, finish reason, error), tokens, latency.
  - traces.jsonl: the memory after each step of the same episodes.
  - summary.json: {"metrics": summarize(predictions), "run": run.json's content + wall time,
    and for an OpenAI-compatible server "backend_capabilities": what it offered (logprobs, token
    ids, top_k, token-id prompts) and what is missing}.

Sharding: `shard="I/N"` runs only shard I of N of the (task, attempt) rows, with the seeds the
unsharded run uses; `memgym.eval.shards.merge_shards` (`memgym eval merge`) joins the N outputs
into the files the unsharded run writes.

Seeds: every episode resets with `seed` (all attempts of a task start from the identical state,
like a GRPO group); attempt a of task t samples with `derive_seed(seed, t, a)`
(memgym.agents.episode's one seed helper).

Failures: an LLM call that fails is recorded on its episode's row and the run goes on, but an
episode with a failed call is *incomplete*, not a result: the metrics leave it out, the summary
counts it (`incomplete_episodes`), and `resume=True` runs it again (only complete rows count as
finished). If the backend is evidently down, the run stops at once with that error instead of
recording failed episodes: the run's first LLM call fails (a server that is down, a wrong URL or
model name), any call raises `BackendUnavailable` (a connection refused after earlier
successes: a server that died mid-run), or many calls in a row fail. Wrap the agent's backend
in `FailFast` for this (the CLI does).

`evaluate` also works where an event loop is already running (a Jupyter cell): it then runs on
its own loop in a helper thread (`memgym._async.run_sync`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from memgym._async import run_sync
from memgym.agents.base import Agent
from memgym.agents.episode import EnvPool, Episode, EpisodeJob, derive_seed, run_episodes
from memgym.envs.validation import validate_env
from memgym.errors import BackendError, ConfigError, did_you_mean
from memgym.eval.metrics import is_complete, summarize
from memgym.eval.records import (
    PREDICTIONS,
    RUN,
    SUMMARY,
    TRACES,
    append_jsonl,
    package_versions,
    prediction_row,
    read_jsonl,
    repair_jsonl,
    trace_row,
)
from memgym.eval.shards import in_shard, parse_shard
from memgym.llm.base import BackendUnavailable, Completion, GenerationRequest, LLMBackend

__all__ = [
    "PREDICTIONS",
    "RUN",
    "SUMMARY",
    "TRACES",
    "FailFast",
    "evaluate",
    "evaluate_async",
]


class FailFast:
    """Wraps a backend and trips when the backend is evidently down, so the run stops at once.

    It trips when the run's first finished LLM call fails (before any call succeeded: a server
    that is down, a wrong URL, model name or key), when any call raises `BackendUnavailable`
    (a connection refused after earlier successes: a server that died mid-run), or when
    `max_consecutive_failures` calls in a row fail. Isolated failures are left to the episodes,
    which record them and go on (those episodes are incomplete, and resume reruns them). The
    runner stops on a trip without recording the episodes in flight, so `--resume` redoes them
    once the backend is back.

    It is itself an LLMBackend (build the agent on it); other attributes (`tokenizer`, ...) are
    the wrapped backend's.

    Args:
        backend: the backend to watch.
        where: a description for the error message (e.g. "openai at http://127.0.0.1:8000/v1").
        max_consecutive_failures: failed calls in a row that trip it mid-run.
    """

    def __init__(self, backend: LLMBackend, where: str = "", max_consecutive_failures: int = 64):
        self.backend = backend
        self.name = getattr(backend, "name", type(backend).__name__)
        self.where = where or self.name
        self.max_consecutive_failures = max_consecutive_failures
        self.succeeded = False
        self.consecutive_failures = 0
        self.reason: str | None = None
        self.tripped = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def _note(self, error: str | None, unavailable: bool = False) -> None:
        if error is None:
            self.succeeded, self.consecutive_failures = True, 0
            return
        self.consecutive_failures += 1
        if self.reason is not None:
            return
        if unavailable and self.succeeded:
            self.reason = f"the backend stopped answering mid-run ({self.where}): {error}"
        elif not self.succeeded:
            self.reason = f"the first LLM call of the run failed ({self.where}): {error}"
        elif self.consecutive_failures >= self.max_consecutive_failures:
            self.reason = (f"{self.consecutive_failures} LLM calls in a row failed "
                           f"({self.where}); the last: {error}")
        if self.reason is not None:
            self.tripped.set()

    async def generate(self, request: GenerationRequest) -> Completion:
        """Forward one request, counting failures."""
        try:
            completion = await self.backend.generate(request)
        except Exception as exc:
            self._note(f"{type(exc).__name__}: {exc}", isinstance(exc, BackendUnavailable))
            raise
        failed = completion.finish_reason == "error" or completion.error is not None
        self._note((completion.error or "error completion") if failed else None)
        return completion

    def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        """Forward a batch (not watched: agents call `generate`)."""
        return self.backend.generate_batch(requests)

    @property
    def fatal(self) -> bool:
        """Whether it has tripped."""
        return self.reason is not None

    def error(self) -> BackendError:
        """The error that stops the run."""
        return BackendError(f"{self.reason}. The episodes in flight were not recorded; check "
                            "that the server is up and the model name and settings are right, "
                            "then rerun with --resume to keep the finished episodes.")


def _check_out_dir(out: Path, run: Mapping[str, Any], resume: bool) -> set[tuple[int, int]]:
    """Validate --out for a new or resumed run; returns the (task_id, attempt) already done.

    Done means a complete row (no failed LLM call): an incomplete episode is run again.
    """
    predictions = out / PREDICTIONS
    previous = read_jsonl(predictions)
    if previous and not resume:
        raise ConfigError(f"{out} already holds {len(previous)} predictions; pass --resume to "
                          "continue that run, or choose another --out")
    if resume and (out / RUN).exists():
        before = json.loads((out / RUN).read_text(encoding="utf-8"))
        for key in ("env_id", "env_kwargs", "recipe", "seed", "avg_k", "shard", "judge"):
            if before.get(key) != run.get(key):
                raise ConfigError(
                    f"--resume: {out / RUN} was written with {key}={before.get(key)!r}, this run "
                    f"has {key}={run.get(key)!r}; resume with the same settings or use a new --out")
    return {(r["task_id"], r["attempt"]) for r in previous if is_complete(r)}


def _first_env(env_id: str, env_kwargs: Mapping[str, Any], make_env: Callable[[], gym.Env]
               ) -> gym.Env:
    """Build the first env, turning an unknown id or a bad kwarg into a ConfigError."""
    try:
        return make_env()
    except gym.error.Error as exc:
        ids = [i for i in gym.registry if i.startswith("MemAgent-")] or list(gym.registry)
        raise ConfigError(f"--env {env_id}: {exc}{did_you_mean(env_id, ids)} "
                          "(`memgym envs` lists them)") from exc
    except TypeError as exc:  # gym.make's message names the env and the kwargs
        raise ConfigError(f"--env-kwargs {dict(env_kwargs)}: {exc}") from exc


def _progress(total: int, done: int, enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("reward {task.fields[reward]}"),
                        TimeElapsedColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), disable=not enabled)
    bar = progress.add_task("eval", total=total, completed=done, reward="-")
    return progress, bar


async def evaluate_async(env_id: str, agent: Agent, *, out_dir: str | Path,
                         env_kwargs: Mapping[str, Any] | None = None, episodes: int | None = None,
                         avg_k: int = 1, seed: int = 0, concurrency: int = 8,
                         resume: bool = False, recipe: Mapping[str, Any] | None = None,
                         run_info: Mapping[str, Any] | None = None,
                         fail_fast: FailFast | None = None, progress: bool = True,
                         make_env: Callable[[], gym.Env] | None = None,
                         shard: str | tuple[int, int] | None = None) -> dict[str, Any]:
    """Evaluate `agent` on `env_id`; see the module docstring for the files written.

    Args:
        env_id: a registered env id (recorded; also used to build envs unless `make_env`).
        agent: the agent (e.g. from `memgym.agents.load_agent`).
        out_dir: the output directory (created).
        env_kwargs: kwargs for `gym.make(env_id, ...)`.
        episodes: evaluate tasks 0..episodes-1 (all of the env's tasks if None or more).
        avg_k: attempts per task (avg@K).
        seed: the run's seed (reset seed of every episode; sampling seeds derive from it).
        concurrency: episodes in flight at once.
        resume: continue a run in `out_dir`, skipping (task_id, attempt) rows already written.
        recipe: the resolved agent recipe, recorded in run.json / summary.json.
        run_info: more facts to record (backend name, model, base URL, ...).
        fail_fast: the FailFast wrapper the agent's backend was built on, if any.
        progress: show a progress bar (on stderr).
        make_env: builds an env (default `gym.make(env_id, **env_kwargs)`).
        shard: "I/N" or (I, N): run only shard I of N of the (task, attempt) rows
            (`memgym.eval.shards`; `memgym eval merge` joins the shards' outputs).

    Returns:
        The summary (as written to summary.json).
    """
    if avg_k < 1:
        raise ConfigError(f"--avg-k must be at least 1, got {avg_k}")
    if episodes is not None and episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    shard = parse_shard(shard)
    env_kwargs = dict(env_kwargs or {})
    pool, num_tasks = _env_pool(env_id, env_kwargs, make_env, concurrency)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = num_tasks if episodes is None else min(episodes, num_tasks)
    run = _run_record(env_id, env_kwargs, agent, recipe=recipe, run_info=run_info, seed=seed,
                      avg_k=avg_k, episodes=n, num_tasks=num_tasks, concurrency=concurrency,
                      shard=shard)
    done = _open_out_dir(out, run, resume)
    rows = [(t, a) for t in range(n) for a in range(avg_k) if in_shard(t, a, avg_k, shard)]
    jobs = [EpisodeJob(task_id=t, seed=seed, sampling_seed=derive_seed(seed, t, a), key=a)
            for t, a in rows if (t, a) not in done]
    bar_view, bar = _progress(len(rows), len(rows) - len(jobs), progress)
    record = _recorder(out, bar_view, bar, fail_fast)
    start = time.perf_counter()
    with bar_view:
        await _run_jobs(pool, agent, jobs, concurrency=concurrency, record=record,
                        fail_fast=fail_fast)
    return _write_summary(out, run, start=start, episodes_run_now=len(jobs), fail_fast=fail_fast)


def _env_pool(env_id: str, env_kwargs: dict[str, Any], make_env: Callable[[], gym.Env] | None,
              concurrency: int) -> tuple[EnvPool, int]:
    """The pool of envs the episodes run in (its first env already built), and the task count."""
    if make_env is None:
        validate_env(env_id, env_kwargs)

        def make_env() -> gym.Env:
            return gym.make(env_id, **env_kwargs)
    probe = _first_env(env_id, env_kwargs, make_env)  # reused as the first pooled env
    read = getattr(probe.unwrapped, "data_path", None)
    if "data_path" not in env_kwargs and isinstance(read, str):
        # the env read its default file (`memgym data get`'s): run.json names it, so a board
        # that runs that file sees the same data_path as from a run that passed it
        env_kwargs["data_path"] = read
    num_tasks = getattr(probe.unwrapped, "num_tasks", None)
    if num_tasks is None:
        raise ConfigError(f"{env_id}: the env has no num_tasks; memgym eval needs an env whose "
                          "tasks are numbered 0..num_tasks-1 (reset options task_id)")
    return EnvPool(make_env, concurrency, envs=[probe]), num_tasks


def _run_record(env_id: str, env_kwargs: dict[str, Any], agent: Agent, *,
                recipe: Mapping[str, Any] | None, run_info: Mapping[str, Any] | None, seed: int,
                avg_k: int, episodes: int, num_tasks: int, concurrency: int,
                shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """What run.json records about the run, as it reads back from JSON."""
    run = {"env_id": env_id, "env_kwargs": env_kwargs, "recipe": dict(recipe or {}),
           "agent": getattr(agent, "name", type(agent).__name__),
           # privileged (reads ctx.task): leaderboards show it as a reference line, whatever
           # its kind is called (a user's `module:Name` kind included)
           "agent_needs_task": bool(getattr(agent, "needs_task", False)),
           "seed": seed, "avg_k": avg_k,
           "episodes": episodes, "env_num_tasks": num_tasks, "concurrency": concurrency,
           "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
           **dict(run_info or {}), "versions": package_versions()}
    return json.loads(json.dumps(run, default=str))  # what is compared on resume is what is saved


def _open_out_dir(out: Path, run: Mapping[str, Any], resume: bool) -> set[tuple[int, int]]:
    """Check and repair --out, write run.json; returns the (task_id, attempt) already done."""
    done = _check_out_dir(out, run, resume)
    # drop partial last lines, and the rows of incomplete episodes, which run again
    repair_jsonl(out / PREDICTIONS, keep=done)
    repair_jsonl(out / TRACES, keep=done)
    (out / RUN).write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return done


def _recorder(out: Path, bar_view: Any, bar: Any, fail_fast: FailFast | None
              ) -> Callable[[EpisodeJob, Episode], None]:
    """The per-episode callback: append its trace and prediction rows and advance the bar."""
    rewards: list[float] = []

    def record(job: EpisodeJob, episode: Episode) -> None:
        if fail_fast is not None and fail_fast.fatal:
            raise fail_fast.error()
        append_jsonl(out / TRACES, trace_row(episode, attempt=job.key))
        append_jsonl(out / PREDICTIONS, prediction_row(episode, attempt=job.key))
        rewards.append(episode.reward)
        bar_view.update(bar, advance=1, reward=f"{np.mean(rewards):.3f}")

    return record


async def _run_jobs(pool: EnvPool, agent: Agent, jobs: list[EpisodeJob], *, concurrency: int,
                    record: Callable[[EpisodeJob, Episode], None],
                    fail_fast: FailFast | None) -> None:
    """Run the episodes, stopping at once when `fail_fast` trips; closes the pool."""
    runner = asyncio.ensure_future(run_episodes(pool, agent, jobs,
                                                concurrency=concurrency, on_episode=record))
    watch = asyncio.ensure_future(fail_fast.tripped.wait()) if fail_fast else None
    try:
        await asyncio.wait([t for t in (runner, watch) if t is not None],
                           return_when=asyncio.FIRST_COMPLETED)
        if fail_fast is not None and fail_fast.fatal:
            raise fail_fast.error()
        await runner
    finally:
        for task in (runner, watch):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(*(t for t in (runner, watch) if t is not None),
                             return_exceptions=True)
        pool.close()


def _write_summary(out: Path, run: Mapping[str, Any], *, start: float, episodes_run_now: int,
                   fail_fast: FailFast | None) -> dict[str, Any]:
    """Summarize predictions.jsonl into summary.json (with the server's capabilities); return it."""
    summary = {"metrics": summarize(read_jsonl(out / PREDICTIONS)),
               "run": {**run, "wall_time_s": time.perf_counter() - start,
                       "episodes_run_now": episodes_run_now}}
    capabilities = getattr(getattr(fail_fast, "backend", None), "capabilities", None)
    if capabilities is not None:  # what an OpenAI-compatible server offered (logprobs, ids, ...)
        summary["backend_capabilities"] = capabilities.to_dict()
    (out / SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                               encoding="utf-8")
    return summary


def evaluate(env_id: str, agent: Agent, **kwargs: Any) -> dict[str, Any]:
    """Synchronous `evaluate_async` (runs its own event loop, also inside Jupyter); same arguments."""
    return run_sync(evaluate_async(env_id, agent, **kwargs))
