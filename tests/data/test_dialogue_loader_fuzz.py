"""Fuzzing the dialogue loaders (LoCoMo, LongMemEval, MemoryAgentBench) with hypothesis: any field
of a valid fixture replaced by any JSON value (or deleted) either loads or raises DataError,
never another exception (no KeyError, TypeError or AttributeError escapes)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memgym.data.locomo import parse_locomo_sample
from memgym.data.longmemeval import parse_longmemeval_row
from memgym.data.memoryagentbench import parse_memoryagentbench_row
from memgym.errors import DataError
from memgym.tokenizers import WordTokenCounter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LOCOMO = json.loads((FIXTURES / "locomo_mini.json").read_text(encoding="utf-8"))[0]
LONGMEMEVAL = json.loads((FIXTURES / "longmemeval_mini.json").read_text(encoding="utf-8"))[0]
MAB = json.loads((FIXTURES / "memoryagentbench" / "Accurate_Retrieval-00000-of-00001.jsonl")
                 .read_text(encoding="utf-8").splitlines()[0])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON tree."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths(value, prefix + (i,))
    return out


def mutated(tree: Any, path: tuple, value: Any, delete: bool) -> Any:
    tree = copy.deepcopy(tree)
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return tree


def loads_or_data_error(parse, tree) -> None:
    try:
        parse(tree)
    except DataError:
        pass


@settings(max_examples=60, deadline=None)
@given(path=st.sampled_from(paths(LOCOMO)), value=json_values, delete=st.booleans())
def test_locomo_sample_with_any_field_changed_loads_or_raises_data_error(path, value, delete):
    tree = mutated(LOCOMO, path, value, delete)
    loads_or_data_error(lambda t: parse_locomo_sample(t, include_adversarial=True), tree)


@settings(max_examples=60, deadline=None)
@given(path=st.sampled_from(paths(LONGMEMEVAL)), value=json_values, delete=st.booleans())
def test_longmemeval_row_with_any_field_changed_loads_or_raises_data_error(path, value, delete):
    loads_or_data_error(parse_longmemeval_row, mutated(LONGMEMEVAL, path, value, delete))


@settings(max_examples=40, deadline=None)
@given(path=st.sampled_from(paths(MAB)), value=json_values, delete=st.booleans())
def test_memoryagentbench_row_with_any_field_changed_loads_or_raises_data_error(path, value,
                                                                                delete):
    loads_or_data_error(
        lambda t: parse_memoryagentbench_row(t, index=0, competency="Accurate_Retrieval",
                                             counter=WordTokenCounter(), chunk_tokens=64),
        mutated(MAB, path, value, delete))
