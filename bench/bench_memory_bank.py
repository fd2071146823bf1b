"""Memory-bank overhead: applying operations and retrieving from a 1,000-entry bank, with BM25
(bm25s, the offline default) and dense retrieval (all-MiniLM-L6-v2 on CPU).

Entries are synthetic LoCoMo-like facts ("Speaker 3 visited the lake with a friend in May"),
two speakers. Timed: 1,000 ADDs through `apply_text` (mem0 JSON, 50 items per action), 100
UPDATEs, Memory-R1's retrieval (30 per speaker, 60 in all) and a plain top-60; for dense, the
first retrieval (every entry embedded, cold cache), a warm one, and one after an UPDATE (one
entry re-embedded). Median of `--repeats` runs where a step is repeatable.

    python bench/bench_memory_bank.py                 # both retrievers
    python bench/bench_memory_bank.py --retrievers bm25 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

SPEAKERS = ("Caroline", "Melanie")
VERBS = ["visited", "painted", "adopted", "talked about", "bought", "cooked", "read about",
         "planned", "photographed", "watched"]
OBJECTS = ["the lake", "a sunset", "a puppy", "her new job", "a guitar", "pasta", "a novel",
           "a road trip", "the mountains", "a concert", "a pottery class", "the garden"]
TIMES = ["in May", "last week", "on Sunday", "in 2022", "yesterday", "over the summer"]


def facts(n: int) -> list[tuple[str, str]]:
    """`n` distinct (speaker, fact) pairs."""
    out = []
    for i in range(n):
        speaker = SPEAKERS[i % 2]
        out.append((speaker, f"{speaker} {VERBS[i % 10]} {OBJECTS[(i // 10) % 12]} "
                             f"{TIMES[(i // 120) % 6]} (note {i})"))
    return out


def _ms(fn, repeats: int = 1) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench(kind: str, n: int, repeats: int) -> dict:
    """Time one retriever kind on an `n`-entry bank."""
    from memgym.memory import MemoryBank, make_retriever

    load_start = time.perf_counter()
    bank = MemoryBank(retriever=make_retriever(kind))
    load_ms = (time.perf_counter() - load_start) * 1000
    rows = facts(n)
    start = time.perf_counter()
    for chunk in range(0, n, 50):
        for speaker in SPEAKERS:
            items = [{"id": "0", "event": "ADD", "text": t}
                     for s, t in rows[chunk:chunk + 50] if s == speaker]
            bank.apply_text(json.dumps({"memory": items}), speaker=speaker, session=1)
    add_us = (time.perf_counter() - start) * 1e6 / n
    assert len(bank) == n, len(bank)
    start = time.perf_counter()
    for i in range(100):
        bank.apply_text(json.dumps({"memory": [
            {"id": str(i * 7), "event": "UPDATE", "text": f"{rows[i * 7][1]} (updated)"}]}))
    update_us = (time.perf_counter() - start) * 1e6 / 100
    query = "When did Caroline adopt a puppy?"
    out = {"retriever": kind, "entries": n, "load_ms": load_ms, "add_us": add_us,
           "update_us": update_us}
    out["first_retrieve_ms"] = _ms(lambda: bank.retrieve_per_speaker(query, 30, SPEAKERS))
    out["per_speaker_ms"] = _ms(lambda: bank.retrieve_per_speaker(query, 30, SPEAKERS), repeats)
    out["top60_ms"] = _ms(lambda: bank.retrieve(query, 60), repeats)
    bank.apply_text(json.dumps({"memory": [{"id": "3", "event": "UPDATE",
                                            "text": "Melanie adopted a kitten in June"}]}))
    out["after_update_ms"] = _ms(lambda: bank.retrieve(query, 60))
    top = bank.retrieve(query, 1)[0].text
    out["top1"] = top
    if kind == "dense":
        out["cache"] = f"{bank.retriever.hits} hits / {bank.retriever.misses} misses"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrievers", nargs="+", default=["bm25", "dense"])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print("| retriever | entries | load ms | ADD µs/op | UPDATE µs/op | first 30+30 ms | "
          "30+30 ms | top-60 ms | top-60 after UPDATE ms | top-1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for kind in args.retrievers:
        r = bench(kind, args.entries, args.repeats)
        print(f"| {kind} | {r['entries']} | {r['load_ms']:.0f} | {r['add_us']:.0f} | "
              f"{r['update_us']:.0f} | {r['first_retrieve_ms']:.1f} | {r['per_speaker_ms']:.1f} | "
              f"{r['top60_ms']:.1f} | {r['after_update_ms']:.1f} | {r['top1']} |")
        if "cache" in r:
            print(f"<!-- dense cache: {r['cache']} -->")


if __name__ == "__main__":
    main()
