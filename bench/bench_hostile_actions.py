"""How long the memory bank takes to refuse hostile actions: megabyte strings and deep nesting
(the cases of tests/memory/test_operations.py, which checks that they are refused, not raised;
the time is measured here because a wall-clock bound in a test fails on loaded machines).

    python bench/bench_hostile_actions.py            # one row per case, seconds, mem0 then RMM
"""

from __future__ import annotations

import time

HOSTILE_ACTIONS = {
    "1 MB of x": "x" * 1_000_000, "1M [": "[" * 1_000_000, "500K {": "{" * 500_000,
    '200K {"memory":': '{"memory": ' * 200_000, "100K [ then ]": "[" * 100_000 + "]" * 100_000,
    "Merge(0, + 1M (": "Merge(0, " + "(" * 1_000_000, "100K Add() lines": "Add()\n" * 100_000,
    "300K RLO NUL surrogate": "\u202e\u0000\udcff" * 300_000,
}
"""The hostile actions, named (the same strings as the test's)."""


def main() -> None:
    """Print a markdown table: each case's time through the mem0 JSON and the RMM parsers."""
    from memgym.memory import MemoryBank

    print("| action | mem0 JSON s | RMM s |\n|---|---:|---:|")
    worst = 0.0
    for name, text in HOSTILE_ACTIONS.items():
        start = time.perf_counter()
        MemoryBank().apply_text(text)
        mem0 = time.perf_counter() - start
        start = time.perf_counter()
        MemoryBank().apply_text(text, "rmm", summary="s", candidate_ids=["0"])
        rmm = time.perf_counter() - start
        worst = max(worst, mem0 + rmm)
        print(f"| {name} | {mem0:.3f} | {rmm:.3f} |")
    print(f"\nslowest case, both parsers: {worst:.2f} s")


if __name__ == "__main__":
    main()
