"""The episode runner: what an Episode records, the oracle's task hand-off, concurrent episodes on
pooled envs with a concurrency limit, GRPO-style groups from an identical initial state, and
failure propagation; the one env pool (lent across runs), the one seed helper (values of the
three it replaced) and run_sync inside a running loop."""

import asyncio
import importlib
import re
from pathlib import Path

import gymnasium as gym
import pytest
from agent_helpers import make_env, reader

from memgym.agents import (
    EpisodeJob,
    OracleAgent,
    ScriptedPolicyAgent,
    make_memagent,
    run_episode,
    run_episodes,
)
from memgym.agents.base import EpisodeContext
from memgym.agents.baselines import ContextAnswerer
from memgym.agents.episode import EnvPool, derive_seed, run_sync
from memgym.envs.registration import ENV_DESCRIPTIONS
from memgym.errors import ConfigError
from memgym.llm import Completion, SamplingParams, ScriptedBackend
from memgym.rewards.rubric import EPISODE_RESULT_KEY
from memgym.tokenizers import WordTokenCounter


class InFlight:
    """A backend that counts how many generate() calls overlap."""

    name = "in_flight"

    def __init__(self):
        self.now = self.peak = self.calls = 0

    async def generate(self, request):
        self.now += 1
        self.calls += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(0.002)
        self.now -= 1
        return Completion(reader(request), completion_ids=[1, 2], logprobs=[-0.1, -0.2])

    def generate_batch(self, requests):
        raise NotImplementedError


def test_episode_records_actions_trace_rewards_info_turns():
    env = make_env()
    episode = asyncio.run(run_episode(env, make_memagent(ScriptedBackend(reader)), seed=3,
                                      task_id=1, sampling_seed=9))
    assert (episode.task_id, episode.seed, episode.sampling_seed) == (1, 3, 9)
    assert len(episode.actions) == len(episode.trace) == len(episode.rewards) == episode.num_steps
    assert episode.rewards[:-1] == [0.0] * (episode.num_steps - 1)
    assert episode.reward == episode.rewards[-1] == 1.0
    assert episode.info["answer"] == "Ann Lee" and episode.info["golds"] == ["Ann Lee"]
    assert episode.info["peak_context_tokens"] > 0 and "memory_tokens" in episode.info
    assert episode.reward_weights == {"accuracy": 1.0, "format": 0.0, "memory_budget": 0.0}
    assert episode.task is env.tasks[1] and episode.wall_time_s > 0
    assert len(episode.turns) == episode.num_steps


def test_only_agents_that_declare_needs_task_see_the_task():
    seen = {}

    class Peek:
        name = "peek"

        async def act(self, observation, ctx):
            seen["task"] = ctx.task
            return "\\boxed{x}" if observation["phase"] == "answer" else observation["memory"]

    asyncio.run(run_episode(make_env(), Peek(), seed=0, task_id=0))
    assert seen["task"] is None
    answerer = ContextAnswerer(ScriptedBackend(reader), sampling=SamplingParams(),
                               counter=WordTokenCounter(), max_context_tokens=500)
    episode = asyncio.run(run_episode(make_env(), OracleAgent(answerer), seed=0, task_id=0))
    assert episode.reward == 1.0


def test_concurrent_episodes_share_the_backend_on_pooled_envs():
    backend, built = InFlight(), []

    def factory():
        built.append(make_env())
        return built[-1]

    jobs = [EpisodeJob(task_id=t % 2, seed=0, sampling_seed=t, key=t) for t in range(10)]
    finished = []
    episodes = asyncio.run(run_episodes(factory, make_memagent(backend), jobs, concurrency=4,
                                        on_episode=lambda job, ep: finished.append(job.key)))
    assert [e.task_id for e in episodes] == [t % 2 for t in range(10)]  # job order
    assert sorted(finished) == list(range(10))
    assert all(e.reward == 1.0 for e in episodes)
    assert backend.peak == 4  # calls from 4 episodes were in flight together
    assert len(built) == 4  # envs are pooled, not built per episode


def test_a_group_starts_from_the_identical_state():
    chunks = {}

    def memory_fn(question, memory, chunk):
        chunks.setdefault(question, []).append(chunk)
        return memory

    agent = ScriptedPolicyAgent(memory_fn, lambda q, m: "x")
    jobs = [EpisodeJob(task_id=0, seed=5, sampling_seed=g) for g in range(3)]
    group = asyncio.run(run_episodes(make_env, agent, jobs, concurrency=3))
    streams = next(iter(chunks.values()))
    n = len(streams) // 3
    assert streams[:n] == streams[n:2 * n] == streams[2 * n:]
    assert len({tuple(e.trace) for e in group}) == 1


def test_an_agent_exception_cancels_the_other_episodes_and_propagates():
    class Broken:
        name = "broken"

        async def act(self, observation, ctx):
            await asyncio.sleep(0)
            if ctx.step == 1:
                raise ValueError("agent bug")
            return observation["memory"]

    with pytest.raises(ValueError, match="agent bug"):
        asyncio.run(run_episodes(make_env, Broken(), [EpisodeJob(0, 0)] * 4, concurrency=2))
    with pytest.raises(ConfigError, match="concurrency"):
        asyncio.run(run_episodes(make_env, Broken(), [], concurrency=0))
    with pytest.raises(ConfigError, match="max_steps"):
        asyncio.run(run_episode(make_env(), ScriptedPolicyAgent(lambda q, m, c: m,
                                                                lambda q, m: ""),
                                seed=0, task_id=0, max_steps=2))


def test_derive_seed_keeps_the_values_of_the_three_helpers_it_replaced():
    # computed with the removed call_seed / sampling_seed / trainer derive_seed (all three were
    # SeedSequence([abs(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)
    assert derive_seed(11, 0) == 1926383459  # call_seed(11, 0)
    assert derive_seed(7, 0, 1) == 2028854884  # sampling_seed(7, 0, 1)
    assert derive_seed(3, 1, 2, 4) == 13558606  # trainer derive_seed(3, 1, 2, 4)
    assert derive_seed(-5, 2) == derive_seed(5, 2) == 1078640117
    assert derive_seed(5, 1) != derive_seed(6, 0)


def test_an_env_pool_lends_its_envs_across_runs_and_closes_them_once():
    built, closed = [], []

    def factory():
        env = make_env()
        env.close = lambda: closed.append(env)  # record closes
        built.append(env)
        return env

    pool = EnvPool(factory, 3)
    first = pool.first()
    jobs = [EpisodeJob(task_id=t % 2, seed=0, key=t) for t in range(6)]
    agent = make_memagent(InFlight())  # its episodes overlap: 3 envs are lent at once
    for _ in range(2):  # the trainer's pattern: one pool for every rollout
        assert len(asyncio.run(run_episodes(pool, agent, jobs, concurrency=3))) == 6
    assert first in built and len(built) == pool.size == 3 and closed == []
    with pytest.raises(ConfigError, match="max_envs=3"):
        [pool.acquire() for _ in range(4)]
    pool.close()
    assert sorted(map(id, closed)) == sorted(map(id, built))


def test_run_sync_works_inside_a_running_loop():
    async def inner():
        await asyncio.sleep(0)
        return 42

    async def notebook_cell():
        return run_sync(inner())

    assert run_sync(inner()) == 42 and asyncio.run(notebook_cell()) == 42
    with pytest.raises(ValueError, match="boom"):
        run_sync(_raise(ValueError("boom")))


async def _raise(exc):
    raise exc


# -- the one episode contract, across every registered env family --------------------------------
FIXTURES = Path(__file__).parents[1] / "fixtures"
DATA_KWARGS = {  # the dialogue ids whose data memgym cannot ship: the test fixtures
    "MemoryR1-LoCoMo-v0": {"data_path": str(FIXTURES / "locomo_mini.json")},
    "RMM-LoCoMo-v0": {"data_path": str(FIXTURES / "locomo_mini.json")},
    "RMM-LongMemEval-v0": {"data_path": str(FIXTURES / "longmemeval_mini.json")},
    "MemoryR1-LongMemEval-v0": {"data_path": str(FIXTURES / "longmemeval_mini.json")},
    "MemoryBank-MemoryAgentBench-v0": {"data_path": str(FIXTURES / "memoryagentbench"),
                                       "competency": "Conflict_Resolution"},
}


class RightOnlyOnTheLast:
    """Answers the gold at the last question and "no idea" at every other; writes nothing."""

    needs_task = True

    async def act(self, obs, ctx):
        if obs.get("phase") == "write":  # a dialogue env's write step: store nothing
            return "NO_TRAIT" if obs["action_format"] == "rmm" else "[]"
        if obs.get("phase") == "update":  # a long-context env's chunk: keep the memory
            return obs["memory"]
        if obs.get("phase") == "answer" and "question" in obs and "chunk" not in obs:
            done, total = re.match(r"question (\d+) of (\d+)", obs["progress"]).groups()
            if done != total:
                return "no idea"
            question = next(q for q in ctx.task.questions if q.question == obs["question"])
            return question.answers[0]
        gold = ", ".join(ctx.task.answers)
        return {"boxed": f"\\boxed{{{gold}}}", "answer_is": f"The answer is {gold}"}.get(
            obs["answer_format"], gold)


def _check_episode_is_the_envs_result(episode, several_questions: bool):
    result = episode.info[EPISODE_RESULT_KEY]
    assert episode.reward == result["reward"]
    assert episode.reward_components == result["reward_components"]
    if several_questions:  # right only on the last question: the mean, not the last reward
        answers = [r for r, c in zip(episode.rewards, episode.step_components) if "f1" in c]
        assert len(answers) > 1 and answers[-1] == 1.0
        assert episode.reward == pytest.approx(sum(answers) / len(answers))
        assert episode.reward < episode.rewards[-1]


@pytest.mark.parametrize("env_id", sorted(ENV_DESCRIPTIONS))
def test_episode_reward_is_the_envs_episode_result_in_every_registered_env(env_id):
    kwargs = dict(DATA_KWARGS.get(env_id, {}))
    dialogue = env_id.startswith(("MemoryR1-", "RMM-", "MemoryBank-"))
    if dialogue:
        kwargs["questions"] = 4
    env = gym.make(env_id, **kwargs)
    episode = run_sync(run_episode(env, RightOnlyOnTheLast(), seed=0, task_id=0))
    env.close()
    several = episode.info[EPISODE_RESULT_KEY].get("num_questions", 1) > 1
    assert several or "LongMemEval" in env_id or "MemoryAgentBench" in env_id or not dialogue
    _check_episode_is_the_envs_result(episode, several_questions=several)
    if not dialogue:  # MemAgent: the updates score nothing, the answer step everything
        assert all(c == {} for c in episode.step_components[:-1])
        assert episode.reward == episode.rewards[-1]


def test_episode_result_reaches_both_agents_of_the_pettingzoo_view():
    from memgym.envs.multi_agent import memory_bank_aec_env

    env = memory_bank_aec_env("MemoryBank-Synthetic-v0", questions=4)
    env.reset(seed=0, options={"task_id": 0})
    agent, answers, results = RightOnlyOnTheLast(), [], {}
    ctx = EpisodeContext()
    ctx.task = env.unwrapped.core.task
    for name in env.agent_iter():
        obs, _, terminated, truncated, info = env.last()
        if terminated or truncated:
            results[name] = info[EPISODE_RESULT_KEY]
            env.step(None)
            continue
        env.step(run_sync(agent.act(obs, ctx)))
        if name == "answerer":
            answers.append(env.rewards["answerer"])
    assert len(answers) == 4 and answers[-1] == 1.0
    for name in ("manager", "answerer"):
        assert results[name]["reward"] == pytest.approx(sum(answers) / len(answers))


def test_the_authoring_skeletons_env_reports_its_episode_result(tmp_path, monkeypatch):
    from memgym.envs.authoring import new_env_package

    root = new_env_package("episode-probe", tmp_path)
    monkeypatch.syspath_prepend(str(root))
    module = importlib.import_module("episode_probe")
    module.register()
    env = gym.make(module.ENV_ID)
    episode = run_sync(run_episode(env, RightOnlyOnTheLast(), seed=0, task_id=0))
    _check_episode_is_the_envs_result(episode, several_questions=False)
    assert episode.reward == 1.0


class _NoEpisodeResult(gym.Wrapper):
    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info.pop(EPISODE_RESULT_KEY, None)
        return obs, reward, terminated, truncated, info


def test_an_env_that_ends_without_an_episode_result_is_refused_by_name():
    env = _NoEpisodeResult(make_env())
    with pytest.raises(ConfigError, match=r"without info\['episode_result'\]"):
        run_sync(run_episode(env, RightOnlyOnTheLast(), seed=0, task_id=0))


def test_an_env_whose_step_waits_on_a_model_is_stepped_off_the_event_loop():
    """A frozen reader's read inside env.step held up every other episode of the rollout."""
    where = []

    def reader(question, memories):
        try:
            asyncio.get_running_loop()
            where.append("on the loop")
        except RuntimeError:
            where.append("off the loop")
        return "unknown"

    env = gym.make("MemoryBank-Synthetic-v0", reader=reader, reader_scope="seen", questions=2)
    assert env.unwrapped.step_blocks
    run_sync(run_episode(env, RightOnlyOnTheLast(), seed=0, task_id=0))
    assert where and set(where) == {"off the loop"}
