"""The dialogue ids: protocols fixed by the id, data_path required where memgym ships no data,
env kwargs validated offline, generator knobs routed, and real LoCoMo when present."""

from pathlib import Path

import gymnasium as gym
import pytest

import memgym  # noqa: F401  (registers the ids)
from memgym.envs.validation import validate_env
from memgym.errors import ConfigError
from memgym.testing import check_memgym_env

FIXTURES = Path(__file__).parents[1] / "fixtures"
_REPO = Path(__file__).parents[2]
LOCOMO = next((p for p in (_REPO / ".." / "shared" / "data" / "locomo10.json",  # main checkout
                           _REPO / ".." / ".." / "shared" / "data" / "locomo10.json")  # worktree
               if p.exists()), _REPO / ".." / "shared" / "data" / "locomo10.json")
FROM_THE_CACHE = {"MemoryR1-LoCoMo-v0": "locomo", "RMM-LoCoMo-v0": "locomo",
                  "RMM-LongMemEval-v0": "longmemeval", "MemoryR1-LongMemEval-v0": "longmemeval"}


@pytest.mark.parametrize("env_id", sorted(FROM_THE_CACHE))
def test_ids_without_data_path_read_the_cache_or_say_how_to_fill_it(env_id, tmp_path,
                                                                     monkeypatch):
    from memgym.errors import DataError

    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path))  # an empty cache
    with pytest.raises(DataError, match=f"`memgym data get {FROM_THE_CACHE[env_id]}`"):
        gym.make(env_id)


def test_memoryagentbench_without_data_path_says_data_path_and_the_get_command(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("MEMGYM_CACHE", str(tmp_path))  # an empty cache
    with pytest.raises(ConfigError, match="need data_path=.*`memgym data get memoryagentbench`"):
        gym.make("MemoryBank-MemoryAgentBench-v0")


def test_the_id_fixes_the_protocol_and_its_stream():
    r1 = gym.make("MemoryR1-LoCoMo-v0", data_path=str(FIXTURES / "locomo_mini.json")).unwrapped
    rmm = gym.make("RMM-LoCoMo-v0", data_path=str(FIXTURES / "locomo_mini.json")).unwrapped
    assert (r1.protocol, r1.stream, r1.top_k, r1.per_speaker_k) == ("memory_r1", "turn", 60, 30)
    assert (rmm.protocol, rmm.stream, rmm.top_k, rmm.per_speaker_k) == ("rmm", "session", 20, 0)
    with pytest.raises(ConfigError, match="no argument 'protocol'"):
        validate_env("RMM-LoCoMo-v0", {"protocol": "memory_r1"})


def test_env_kwargs_are_checked_against_the_envs_real_arguments():
    validate_env("MemoryR1-LoCoMo-v0", {"data_path": "x", "split": "test", "top_k": 5,
                                        "reader_scope": "seen"})
    with pytest.raises(ConfigError, match="Did you mean 'per_speaker_k'"):
        validate_env("MemoryR1-LoCoMo-v0", {"per_speaker": 5})
    validate_env("MemoryBank-Synthetic-v0", {"num_sessions": 2, "questions": 3})


def test_synthetic_routes_generator_knobs_and_env_arguments():
    env = gym.make("MemoryBank-Synthetic-v0", num_conversations=3, num_sessions=2,
                   num_speakers=3, questions=2).unwrapped
    assert env.num_tasks == 3
    _, info = env.reset(seed=0, options={"task_id": 1})
    assert len(env.task.sessions) == 2 and len(env.task.speakers) == 3
    assert info["num_questions"] == 2


def test_memoryagentbench_uses_one_retrieval_pool():
    env = gym.make("MemoryBank-MemoryAgentBench-v0", data_path=str(FIXTURES / "memoryagentbench"),
                   competency="Accurate_Retrieval").unwrapped
    obs, _ = env.reset(seed=0, options={"task_id": 0})
    assert env.per_speaker_k == 0 and obs["dialogue"].split("\n")[1].startswith("[")


@pytest.mark.slow  # ~15 s: a real conversation of ~370 turns, eight checker episodes
@pytest.mark.skipif(not LOCOMO.exists(), reason="LoCoMo (locomo10.json) is not in ../shared/data")
def test_real_locomo_split_counts_and_checker():
    test = gym.make("MemoryR1-LoCoMo-v0", data_path=str(LOCOMO), split="test").unwrapped
    assert test.num_tasks == 8
    assert sum(len(c.questions) for c in test.conversations) == 1307
    env = gym.make("MemoryR1-LoCoMo-v0", data_path=str(LOCOMO), split="validation", questions=3)
    _, info = env.reset(seed=0, options={"task_id": 0})
    assert info["conversation_id"] == "conv-30" and info["num_questions"] == 3
    check_memgym_env(env)
