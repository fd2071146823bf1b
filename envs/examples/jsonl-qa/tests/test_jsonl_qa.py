"""jsonl-qa passes memgym's environment checker and scores a correct answer 1 (generated)."""

from __future__ import annotations

import json

import gymnasium as gym
import jsonl_qa
import pytest

from memgym.errors import DataError
from memgym.testing import check_memgym_env


@pytest.fixture(autouse=True, scope="module")
def registered():
    jsonl_qa.register()  # what the entry point does at `import memgym` once installed


def test_env_passes_the_memgym_checker():
    env = gym.make(jsonl_qa.ENV_ID)
    check_memgym_env(env)
    env.close()


def test_every_task_is_solvable_from_its_documents():
    env = gym.make(jsonl_qa.ENV_ID, memory_tokens=512)
    for task_id in range(env.unwrapped.num_tasks):
        obs, _ = env.reset(seed=0, options={"task_id": task_id})
        memory, done = "", False
        while obs["phase"] == "update":  # keep every chunk: the memory is large enough here
            memory += obs["chunk"]
            obs, *_ = env.step(memory)
        gold = env.unwrapped.task.answers[0]
        _, _reward, done, _, info = env.step("\\boxed{" + gold + "}")
        assert done and info["reward_components"]["accuracy"] == 1.0, task_id


def test_a_row_without_a_question_is_a_data_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"answers": ["x"], "documents": ["y"]}) + "\n")
    with pytest.raises(DataError, match="bad.jsonl:1: field 'question'"):
        gym.make(jsonl_qa.ENV_ID, data_path=str(path))


def test_distractors_lengthen_the_context_and_keep_it_deterministic():
    short = gym.make(jsonl_qa.ENV_ID).unwrapped.tasks
    long = gym.make(jsonl_qa.ENV_ID, num_distractors=12, seed=3).unwrapped.tasks
    again = gym.make(jsonl_qa.ENV_ID, num_distractors=12, seed=3).unwrapped.tasks
    assert [len(t.context) for t in long] == [len(t.context) + 12 for t in short]
    assert [t.context for t in long] == [t.context for t in again]
    for s, t in zip(short, long):  # the gold documents are all still there
        assert all(any(p.split("\n", 1)[1] == q.split("\n", 1)[1] for q in t.context)
                   for p in s.context)


def test_env_with_distractors_passes_the_memgym_checker():
    check_memgym_env(gym.make(jsonl_qa.ENV_ID, num_distractors=6))
