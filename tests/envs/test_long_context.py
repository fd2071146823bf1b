"""The long-context env on hand-made tasks: streaming, memory, scoring, info, and bad actions."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgym.data.task import PIECE_SEPARATOR, Task
from memgym.envs import ChunkStream, LongContextMemoryEnv, VectorRewardWrapper
from memgym.errors import ConfigError, DataError, UnknownNameError
from memgym.rewards.rubric import EPISODE_RESULT_KEY
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


def finish_updates(env, task_id=1, **reset):
    obs, info = env.reset(seed=0, options={"task_id": task_id}, **reset)
    while obs["phase"] == "update":
        obs, *_ = env.step("")
    return obs


def test_no_extracted_answer_scores_accuracy_zero():
    env = make_env()
    finish_updates(env)
    _, reward, _, _, info = env.step("Ann Lee")
    assert info["reward_components"]["format"] == 0.0
    assert info["reward_components"]["accuracy"] == 0.0 and reward == 0.0
    assert info["format_errors"] == ["no answer in the 'boxed' format"]
    assert info["answer"] == "" and not info["answer_extracted"]


def test_unclosed_last_box_is_no_answer_even_after_a_closed_one():
    env = make_env()
    finish_updates(env)
    _, reward, *_ = env.step("\\boxed{Ann Lee} no wait \\boxed{Bob")
    assert reward == 0.0


def test_lenient_extraction_scores_the_whole_text_when_nothing_is_extracted():
    env = make_env(lenient_extraction=True)
    finish_updates(env)
    _, reward, _, _, info = env.step("Ann Lee")
    assert info["reward_components"] == {"accuracy": 1.0, "format": 0.0, "memory_budget": 1.0}


def test_answer_is_format_reads_the_text_after_the_last_the_answer_is():
    env = make_env(answer_format="answer_is")
    obs = finish_updates(env)
    assert obs["answer_format"] == "answer_is"
    _, reward, _, _, info = env.step("Hmm, the answer is Bob. Therefore, the answer is **Ann Lee**.")
    assert reward == 1.0 and info["answer"] == "Ann Lee"
    finish_updates(env)
    assert env.step("The answer is Ann Lee.")[1] == 0.0  # MemAgent's match is case-sensitive


def test_strict_boxed_em_scorer_reads_the_raw_answer():
    env = make_env(scorer="strict_boxed_em")
    finish_updates(env)
    assert env.step("Ann Lee")[1] == 0.0
    finish_updates(env)
    assert env.step("\\boxed{ANN LEE}")[1] == 1.0  # lowercased, spaces dropped, as MemAgent
    finish_updates(env)
    _, reward, _, _, info = env.step("\\boxed{Ann Lee}" + " and more" * 40)
    assert reward == 0.0 and info["reward_components"]["format"] == 1.0  # outside the last 300


def test_observation_tells_the_answer_format_and_info_the_token_counter():
    env = make_env()
    obs, info = env.reset(seed=0, options={"task_id": 0})
    assert obs["answer_format"] == "boxed" and info["token_counter"] == "words"
    assert env.observation_space.contains(obs)


def test_numpy_integer_task_ids_are_accepted_and_bools_are_not():
    env = make_env()
    obs, info = env.reset(seed=0, options={"task_id": np.int64(1)})
    assert obs["question"] == "Who wrote it?" and info["task_id"] == 1
    env.reset(seed=0, options={"task_id": np.uint8(0)})
    with pytest.raises(ConfigError, match="must be an integer"):
        env.reset(options={"task_id": True})
    with pytest.raises(ConfigError, match="must be an integer"):
        env.reset(options={"task_id": 1.0})


def test_non_string_actions_are_refused():
    env = make_env()
    env.reset(seed=0, options={"task_id": 0})
    for action in (None, 42):
        with pytest.raises(ConfigError, match="must be a str"):
            env.step(action)


def test_text_spaces_are_bounded_by_the_budgets():
    env = make_env(chunk_tokens=100, memory_tokens=20)
    space = env.observation_space
    assert space["chunk"].max_length == 1600 and space["memory"].max_length == 320
    assert space["question"].max_length == 16384 and space["phase"].max_length == 128
    assert env.action_space.max_length == 2**20


def test_a_huge_word_is_cut_to_the_bounds_of_chunk_and_memory():
    tasks = [Task(0, "q?", ("a",), ["x" * 5000, "tail words"])]
    env = LongContextMemoryEnv(tasks, chunk_tokens=10, memory_tokens=4,
                               reward_weights={"memory_budget": 1.0})
    obs, _ = env.reset(seed=0, options={"task_id": 0})
    seen = obs["chunk"]
    assert len(obs["chunk"]) == 160 and env.observation_space.contains(obs)
    obs, _, _, _, info = env.step("y" * 1_000_000)
    assert obs["memory"] == "y" * 64 and info["memory_overflowed"]
    while obs["phase"] == "update":
        seen += obs["chunk"]
        assert env.observation_space.contains(obs)
        obs, *_ = env.step("ok")
    assert seen == "x" * 5000 + PIECE_SEPARATOR + "tail words"


def test_a_question_over_the_bound_is_a_data_error():
    env = LongContextMemoryEnv([Task(0, "q" * 50, ("a",), ["ctx"])], max_question_chars=10)
    with pytest.raises(DataError, match="max_question_chars"):
        env.reset(options={"task_id": 0})


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


def test_update_steps_report_no_component_as_a_failure():
    """MemAgent's memory_budget is scored once, at the answer: an update step's components are
    empty (they read `memory_budget: 0.0` though the memory was within budget)."""
    env = gym.make("MemAgent-Synthetic-v0")
    obs, _ = env.reset(seed=0, options={"task_id": 0})
    while obs["phase"] == "update":
        obs, reward, _, _, info = env.step("short memory")
        assert reward == 0.0 and info["reward_components"] == {}
    _, _, done, _, info = env.step("\\boxed{x}")
    assert done and info["reward_components"]["memory_budget"] == 1.0
    assert info[EPISODE_RESULT_KEY] == {"reward": info[EPISODE_RESULT_KEY]["reward"],
                                       "reward_components": info["reward_components"]}
