"""bench/make_smollm2_memagent_adapter.py: the demonstrations are balanced so that the empty
memory reply cannot dominate (the first adapter collapsed onto it), seeded, and capped by kind."""

from __future__ import annotations

import importlib.util
import random
from collections import Counter
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "make_smollm2_memagent_adapter.py"
_spec = importlib.util.spec_from_file_location("make_smollm2_memagent_adapter", SCRIPT)
adapter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(adapter)

NO_FACTS = adapter.NO_FACTS


def _demos(add: int, final: int, empty: int, carry: int) -> list[dict]:
    kinds = ["add"] * add + ["final"] * final + ["keep_empty"] * empty + ["carry"] * carry
    return [{"kind": k, "id": i, "source": "hotpotqa"} for i, k in enumerate(kinds)]


def test_turn_kind_tells_a_memory_change_from_the_empty_reply_and_a_carried_memory():
    assert adapter.turn_kind("", NO_FACTS) == "keep_empty"
    assert adapter.turn_kind(NO_FACTS, NO_FACTS) == "keep_empty"
    assert adapter.turn_kind("", "") == "keep_empty"  # the synthetic oracle's empty memory
    assert adapter.turn_kind(NO_FACTS, "- A: a.") == "add"
    assert adapter.turn_kind("- A: a.", "- A: a.\n- B: b.") == "add"
    assert adapter.turn_kind("- A: a.", "- A: a.") == "carry"
    assert adapter.turn_kind("red: 1", "red: 1\n") == "carry"
    assert adapter.turn_kind(None, "The answer is \\boxed{x}.") == "final"


def test_balance_keeps_every_change_and_final_and_caps_unchanged_turns_half_empty_half_carry():
    demos = _demos(add=30, final=10, empty=200, carry=50)
    out = adapter.balance(demos, 0.25, random.Random(0))
    mix = Counter(d["kind"] for d in out)
    assert mix["add"] == 30 and mix["final"] == 10
    assert mix["keep_empty"] + mix["carry"] == round(0.25 / 0.75 * 40) == 13
    assert mix["carry"] == 6 and mix["keep_empty"] == 7
    assert out == adapter.balance(demos, 0.25, random.Random(0))  # seeded


def test_balance_fills_from_the_other_unchanged_kind_when_one_runs_short():
    out = adapter.balance(_demos(add=30, final=10, empty=200, carry=2), 0.25, random.Random(0))
    mix = Counter(d["kind"] for d in out)
    assert mix["carry"] == 2 and mix["keep_empty"] == 11


def test_balance_at_share_one_keeps_every_turn_and_rejects_a_share_outside_0_1():
    demos = _demos(add=3, final=1, empty=9, carry=4)
    assert adapter.balance(demos, 1.0, random.Random(0)) == demos
    with pytest.raises(ValueError, match="keep_share"):
        adapter.balance(demos, 1.5, random.Random(0))


def test_stratified_cap_keeps_each_kinds_share():
    demos = _demos(add=60, final=40, empty=20, carry=20)
    out = adapter.stratified(demos, 70, random.Random(1))
    mix = Counter(d["kind"] for d in out)
    assert len(out) == 70 and mix == {"add": 30, "final": 20, "keep_empty": 10, "carry": 10}
    assert len({d["id"] for d in out}) == 70
    assert sorted(d["id"] for d in adapter.stratified(demos, 500, random.Random(1))) == \
        list(range(140))
