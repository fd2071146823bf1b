"""The long-context env on hand-made tasks: streaming, memory, scoring, info, and bad actions."""

import pickle

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgym.data.task import PIECE_SEPARATOR, Task
from memgym.envs import ChunkStream, LongContextMemoryEnv, VectorRewardWrapper
from memgym.errors import ConfigError, UnknownNameError
from memgym.testing import check_memgym_env
from memgym.tokenizers import WordTokenCounter

PIECES = [f"Document {i}:\nTitle {i}\n" + " ".join(f"w{i}x{j}" for j in range(37)) for i in range(12)]


def make_env(**kwargs):
    tasks = [Task(0, "What colour is the sky?", ("blue",), PIECES, task_type="demo"),
             Task(1, "Who wrote it?", ("Ann Lee",), PIECES[:3])]
    kwargs.setdefault("chunk_tokens", 100)
    kwargs.setdefault("memory_tokens", 20)
    return LongContextMemoryEnv(tasks, **kwargs)


def test_chunks_reassemble_the_context_exactly_and_respect_the_budget():
    counter = WordTokenCounter()
    stream = ChunkStream(PIECES, 50, counter)
    chunks = []
    while True:
        chunk, n = stream.next_chunk()
        if not n:
            break
        assert n == counter.count(chunk) <= 50
        chunks.append(chunk)
    assert "".join(chunks) == PIECE_SEPARATOR.join(PIECES)
    assert stream.fraction_read == 1.0


def test_episode_streams_chunks_then_asks_for_the_answer():
    env = make_env()
    obs, info = env.reset(seed=0, options={"task_id": 0})
    assert obs["phase"] == "update" and obs["memory"] == "No previous memory"
    assert obs["question"] == "What colour is the sky?" and obs["chunk"].startswith("Document 0")
    seen, steps = obs["chunk"], 0
    while obs["phase"] == "update":
        obs, reward, terminated, truncated, info = env.step(f"note {steps}")
        assert reward == 0.0 and not terminated
        seen += obs["chunk"]
        steps += 1
    assert obs["chunk"] == "" and obs["memory"] == f"note {steps - 1}"
    assert seen == PIECE_SEPARATOR.join(PIECES)
    obs, reward, terminated, truncated, info = env.step("It is \\boxed{Blue}.")
    assert terminated and not truncated and reward == 1.0
    assert info["reward_components"] == {"accuracy": 1.0, "format": 1.0, "memory_budget": 1.0}
    assert info["answer"] == "Blue" and info["golds"] == ["blue"]


def test_memory_is_truncated_to_budget_and_budget_component_drops():
    env = make_env(memory_tokens=5, reward_weights={"memory_budget": 1.0})
    obs, _ = env.reset(seed=0, options={"task_id": 1})
    obs, _, _, _, info = env.step("a b c d e f g h")
    assert obs["memory"] == "a b c d e" and info["memory_overflowed"]
    while obs["phase"] == "update":
        obs, *_ = env.step("ok")
    _, reward, *_, info = env.step("\\boxed{Ann Lee}")
    assert info["reward_components"]["memory_budget"] < 1.0
    assert reward == pytest.approx(1.0 + info["reward_components"]["memory_budget"])


def test_missing_box_scores_format_zero_but_still_grades_plain_text():
    env = make_env()
    obs, _ = env.reset(seed=0, options={"task_id": 1})
    while obs["phase"] == "update":
        obs, *_ = env.step("")
    _, reward, _, _, info = env.step("Ann Lee")
    assert info["reward_components"]["format"] == 0.0
    assert info["reward_components"]["accuracy"] == 1.0
    assert "no closed \\boxed{} in the answer" in info["format_errors"]


def test_strict_boxed_em_scorer_reads_the_raw_answer():
    env = make_env(scorer="strict_boxed_em")
    obs, _ = env.reset(seed=0, options={"task_id": 1})
    while obs["phase"] == "update":
        obs, *_ = env.step("")
    assert env.step("Ann Lee")[1] == 0.0


def test_info_reports_peak_context_and_memory_tokens():
    env = make_env()
    _, info = env.reset(seed=0, options={"task_id": 0})
    assert info["peak_context_tokens"] >= info["chunk_tokens"] > 0
    _, _, _, _, info = env.step("one two three")
    assert info["memory_tokens"] == 3 and info["chunk_index"] == 1


def test_bad_task_id_and_unknown_scorer_are_clear_errors():
    env = make_env()
    with pytest.raises(ConfigError, match="ids 0..1"):
        env.reset(options={"task_id": 7})
    with pytest.raises(UnknownNameError, match="Did you mean"):
        make_env(scorer="exact_mach")


def test_step_after_the_end_needs_reset():
    env = make_env()
    obs, _ = env.reset(seed=0, options={"task_id": 1})
    while obs["phase"] == "update":
        obs, *_ = env.step("")
    env.step("x")
    with pytest.raises(gym.error.ResetNeeded):
        env.step("again")


def test_passes_the_shipped_checker():
    check_memgym_env(make_env())


def test_pickles_mid_episode():
    env = make_env()
    env.reset(seed=3, options={"task_id": 0})
    env.step("m")
    clone = pickle.loads(pickle.dumps(env))
    assert repr(env.step("n")) == repr(clone.step("n"))


def test_vector_reward_wrapper_returns_components_in_order():
    env = VectorRewardWrapper(make_env(reward_weights={"format": 0.5}))
    assert env.reward_space.shape == (3,)
    obs, _ = env.reset(seed=0, options={"task_id": 1})
    while obs["phase"] == "update":
        obs, reward, *_ = env.step("")
        assert reward.tolist() == [0.0, 0.0, 0.0]
    _, reward, _, _, info = env.step("\\boxed{nobody}")
    assert reward.tolist() == [0.0, 1.0, 1.0] and info["scalar_reward"] == 0.5
    assert env.reward_space.contains(reward)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=2000), min_size=1, max_size=6))
def test_fuzzed_actions_never_raise(actions):
    env = make_env()
    obs, _ = env.reset(seed=0, options={"task_id": 1})
    for i in range(100):
        obs, reward, terminated, truncated, info = env.step(actions[i % len(actions)])
        assert env.observation_space.contains(obs)
        if terminated:
            break
    assert terminated and 0.0 <= reward <= 1.0
