"""RULER synthetic tasks (memgym.data.ruler): every task at two lengths hits its token target and
holds its needles and gold answers; task semantics (niah needles and queries, the vt chain, cwe
and fwe frequencies); determinism, laziness and pickling; essay haystack files; a real BPE
tokenizer; a 128K-token instance; bad arguments; streaming through the registered env."""

from __future__ import annotations

import pickle
import random
import re
from collections import Counter

import gymnasium as gym
import pytest

import memgym  # noqa: F401  (registers the env ids)
from memgym.data.ruler import DEPTHS, NEEDLE, NOISE, PIECE_TOKENS, RULER_TASKS, ruler_tasks
from memgym.data.task import PIECE_SEPARATOR
from memgym.errors import ConfigError, DataError, UnknownNameError
from memgym.rewards.scorers import string_match_all
from memgym.tokenizers import load_token_counter

LENGTHS = (1024, 4096)


def full_text(task) -> str:
    return PIECE_SEPARATOR.join(task.context)


def assert_on_target(task, target: int, counter=None, over: float = 0.0) -> None:
    counter = counter or load_token_counter(None)
    tokens = counter.count(full_text(task))
    assert tokens == task.metadata["tokens"]
    assert task.metadata["target_tokens"] == target
    # Within ~2% or one piece below the target, never above it (BPE estimates: `over`).
    assert target - max(0.02 * target, PIECE_TOKENS) <= tokens <= target * (1 + over)


def tiny_bpe():
    """A byte-level BPE tokenizer trained in-process on text like the tasks' (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from memgym.data.words import ENGLISH_WORDS, essay_sentence

    rng = random.Random(0)
    corpus = [essay_sentence(rng) for _ in range(1000)] + [NOISE, " ".join(ENGLISH_WORDS)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=500, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok)


# -- every task, two lengths --------------------------------------------------------------------
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("name", RULER_TASKS)
def test_task_hits_target_and_holds_its_answers(name, length):
    tasks = ruler_tasks(name, num_tasks=3, target_tokens=length)
    task = tasks[1]
    text = full_text(task)
    assert_on_target(task, length)
    assert task.scorer == "string_match_all" and task.task_type == name and task.task_id == 1
    assert task.answers and all(isinstance(a, str) and a for a in task.answers)
    assert string_match_all(text, task.answers) == 1.0
    for sentence in task.gold_context:
        assert sentence in text
    assert all(0 < len(p) for p in task.context)
    assert task.metadata["query"] in task.question
    assert task.metadata["answer_prefix"]


@pytest.mark.parametrize("name", RULER_TASKS)
def test_pieces_are_small_enough_to_stream(name):
    counter = load_token_counter(None)
    task = ruler_tasks(name, num_tasks=1, target_tokens=4096)[0]
    sizes = [counter.count(p) for p in task.context]
    assert max(sizes) <= PIECE_TOKENS
    assert len(task.context) >= 4096 // PIECE_TOKENS


# -- task semantics -----------------------------------------------------------------------------
NEEDLE_RE = re.compile(r"One of the special magic (\w+) for (\S+) is: (\S+)\.")


@pytest.mark.parametrize("name,values_per_answer", [
    ("niah_single_1", 1), ("niah_single_2", 1), ("niah_single_3", 1), ("niah_multikey_1", 1),
    ("niah_multikey_2", 1), ("niah_multikey_3", 1), ("niah_multivalue", 4),
    ("niah_multiquery", 4)])
def test_niah_needles_answer_exactly_the_query(name, values_per_answer):
    task = ruler_tasks(name, num_tasks=2, target_tokens=4096, seed=3)[1]
    needles = NEEDLE_RE.findall(full_text(task))
    query = task.metadata["query"]
    asked = [key for _, key, _ in needles if f" {key} " in f" {query.replace(',', ' ')} "]
    answers_in_text = [value for _, key, value in needles if key in asked]
    assert sorted(answers_in_text) == sorted(task.answers)
    assert len(task.answers) == values_per_answer
    assert len(task.gold_context) == values_per_answer
    singular = values_per_answer == 1
    assert task.question.startswith("A special" if singular else "Some special")
    assert ("What is the special magic" in task.question) == singular
    if name in ("niah_multikey_2", "niah_multikey_3"):
        assert len(needles) > 50  # the haystack is made of distractor needles
    value_type = "uuids" if name in ("niah_single_3", "niah_multikey_3") else "numbers"
    assert {kind for kind, _, _ in needles} == {value_type}
    if name == "niah_single_1":
        assert NOISE in full_text(task)


def test_niah_essay_depths_come_from_rulers_depth_grid():
    assert len(DEPTHS) == 40 and DEPTHS[0] == 0 and DEPTHS[-1] == 100
    task = ruler_tasks("niah_multivalue", num_tasks=1, target_tokens=8192)[0]
    depths = task.metadata["needle_depths"]
    assert len(depths) == 4 and depths == sorted(depths)
    assert all(0 <= d <= 100 for d in depths)


def test_vt_chain_resolves_to_every_answer_in_order():
    task = ruler_tasks("vt", num_tasks=1, target_tokens=4096, seed=5)[0]
    statements = re.findall(r"VAR (\w+) = (VAR \w+|\d+)", full_text(task))
    assert len(statements) == 5
    value = re.search(r"assigned the value (\d+)", task.question).group(1)
    bound = {}
    for var, rhs in statements:  # in stream order: each hop refers to an earlier variable
        bound[var] = bound[rhs[4:]] if rhs.startswith("VAR ") else rhs
    assert sorted(v for v, x in bound.items() if x == value) == sorted(task.answers)
    assert list(task.gold_context) == [f"VAR {v} = {r}" for v, r in statements]


@pytest.mark.parametrize("length,common,rare", [(2048, 6, 1), (8192, 30, 3)])
def test_cwe_common_words_repeat_as_in_ruler(length, common, rare):
    task = ruler_tasks("cwe", num_tasks=1, target_tokens=length)[0]
    entries = re.findall(r"(\d+)\. (\w+)", full_text(task))
    assert [int(i) for i, _ in entries] == list(range(1, len(entries) + 1))
    counts = Counter(w for _, w in entries)
    assert {counts[w] for w in task.answers} == {common}
    assert len(task.answers) == 10
    assert max(c for w, c in counts.items() if w not in task.answers) == rare


def test_fwe_answers_are_the_three_most_frequent_coded_words():
    task = ruler_tasks("fwe", num_tasks=1, target_tokens=4096)[0]
    counts = Counter(full_text(task).split())
    ranked = [w for w, _ in counts.most_common() if w != "..."]
    assert counts.most_common(1)[0][0] == "..."
    assert set(ranked[:3]) == set(task.answers)
    assert counts[ranked[2]] > counts[ranked[3]]


# -- determinism, laziness, pickling ------------------------------------------------------------
def test_instance_depends_only_on_seed_and_index():
    a = ruler_tasks("niah_multikey_1", num_tasks=5, target_tokens=2048, seed=7)
    b = ruler_tasks("niah_multikey_1", num_tasks=5, target_tokens=2048, seed=7)
    assert a[3] == b[3] and a[0] == b[0]
    assert a[3] != a[2]
    assert ruler_tasks("niah_multikey_1", num_tasks=5, target_tokens=2048, seed=8)[3] != a[3]
    # Keys, values and query do not depend on the length: only the haystack grows.
    longer = ruler_tasks("niah_multikey_1", num_tasks=5, target_tokens=8192, seed=7)[3]
    assert longer.answers == a[3].answers and longer.question == a[3].question


def test_sequence_is_lazy_and_indexable():
    tasks = ruler_tasks("fwe", num_tasks=4, target_tokens=1024)
    assert len(tasks) == 4
    assert tasks[-1] == tasks[3] and [t.task_id for t in tasks[1:3]] == [1, 2]
    assert [t.task_id for t in tasks] == [0, 1, 2, 3]
    with pytest.raises(IndexError):
        tasks[4]


@pytest.mark.parametrize("name", ["niah_single_2", "cwe", "vt"])
def test_pickles_without_its_cache(name):
    tasks = ruler_tasks(name, num_tasks=10, target_tokens=4096, seed=2)
    warm = [tasks[i] for i in range(3)]
    blob = pickle.dumps(tasks)
    assert len(blob) < 4096  # the built tasks are not shipped
    clone = pickle.loads(blob)
    assert [clone[i] for i in range(3)] == warm
    assert clone[9] == tasks[9]


# -- haystack files, tokenizers, long contexts --------------------------------------------------
def test_essay_haystack_comes_from_a_file_and_cycles(tmp_path):
    path = tmp_path / "essays.txt"
    sentences = [f"Essay sentence number {i} talks about making things people want."
                 for i in range(40)]
    path.write_text("\n".join(sentences), encoding="utf-8")
    task = ruler_tasks("niah_single_2", num_tasks=1, target_tokens=2048,
                       haystack_path=path)[0]
    text = full_text(task)
    assert text.startswith(sentences[0])
    assert text.count(sentences[5]) >= 2  # 40 sentences are ~500 tokens: the file repeats
    assert task.metadata["haystack"] == "essay_file"
    assert_on_target(task, 2048)
    assert string_match_all(text, task.answers) == 1.0


def test_bad_haystack_files_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="haystack_path"):
        ruler_tasks("niah_single_2", haystack_path=tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match="haystack_path"):
        ruler_tasks("niah_single_2", target_tokens=512, haystack_path=empty)


@pytest.mark.parametrize("name", ["niah_single_2", "niah_multikey_3", "vt", "cwe", "fwe"])
def test_target_is_met_with_a_bpe_tokenizer(name):
    tokenizer = tiny_bpe()
    counter = load_token_counter(tokenizer)
    task = ruler_tasks(name, num_tasks=1, target_tokens=4096, tokenizer=tokenizer)[0]
    tokens = counter.count(full_text(task))
    assert tokens == task.metadata["tokens"]
    longest = max(counter.count(p) for p in task.context)
    assert 4096 - max(0.02 * 4096, longest) <= tokens <= 4096 * 1.02


def test_a_128k_instance_is_on_target():
    task = ruler_tasks("niah_single_2", num_tasks=1, target_tokens=131072).generate(0)
    assert_on_target(task, 131072)


# -- errors -------------------------------------------------------------------------------------
def test_unknown_task_suggests_the_nearest():
    with pytest.raises(UnknownNameError, match="niah_single_1"):
        ruler_tasks("niah_singel_1")


@pytest.mark.parametrize("kwargs,field", [
    ({"num_tasks": 0}, "num_tasks"), ({"target_tokens": 0}, "target_tokens"),
    ({"target_tokens": "8k"}, "target_tokens"), ({"seed": 1.5}, "seed")])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        ruler_tasks("vt", **kwargs)


@pytest.mark.parametrize("name", ["niah_multiquery", "cwe", "fwe"])
def test_too_small_a_target_fails_at_construction(name):
    with pytest.raises(ConfigError, match="target_tokens"):
        ruler_tasks(name, target_tokens=40)


# -- through the environment --------------------------------------------------------------------
def test_registered_env_streams_the_task_and_scores_string_match_all():
    env = gym.make("MemAgent-RULER-NIAH-MultiValue-v0", num_tasks=2, target_tokens=2048,
                   chunk_tokens=4096)
    obs, _ = env.reset(seed=0, options={"task_id": 1})
    task = env.unwrapped.tasks[1]
    assert obs["question"] == task.question
    assert obs["chunk"] == full_text(task)  # one chunk holds the whole context
    key = re.search(r"for (\S+) mentioned", task.question).group(1)
    needles = [m for m in NEEDLE_RE.finditer(obs["chunk"]) if m.group(2) == key]
    memory = " ".join(m.group(0) for m in needles)
    obs, reward, terminated, _, info = env.step(memory)
    assert obs["phase"] == "answer"
    _, reward, terminated, _, info = env.step(", ".join(m.group(3) for m in needles[:2]))
    assert terminated and info["scorer"] == "string_match_all"
    assert info["reward_components"]["accuracy"] == pytest.approx(0.5)
    env.close()


def test_needle_template_matches_ruler():
    assert NEEDLE.format(type="numbers", key="k", value="1") == \
        "One of the special magic numbers for k is: 1."
