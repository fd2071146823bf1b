"""Cost against context length: MemAgent (one call per chunk) versus full context (one long call).

Measured from the Turns the agents record, with memgym's tiny transformers model on CPU (random
weights: the answers are meaningless, the costs are real). For each context length it runs the
same task through both agents and reports LLM calls, total and peak prompt tokens, completion
tokens and wall time. MemAgent's total prompt tokens grow linearly with the length while its peak
prompt stays bounded by chunk + memory + template; full context's single prompt grows with the
length and its attention cost with the square of it.

    python bench/bench_agents.py                    # lengths 1k 2k 4k 8k tokens
    python bench/bench_agents.py --lengths 1024 4096 --chunk-tokens 512 --repeats 2
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from memgym.agents import run_episode
from memgym.agents.baselines import ContextAnswerer, FullContextAgent
from memgym.agents.overwrite import make_memagent
from memgym.data.task import Task
from memgym.envs import LongContextMemoryEnv
from memgym.llm import SamplingParams, TransformersBackend
from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer
from memgym.tokenizers import HFTokenCounter

WORDS = ["the", "river", "flows", "through", "the", "old", "town", "and", "into", "the", "sea", "the", "film", "was", "directed", "by", "a", "woman", "who", "grew", "up", "in", "a", "small", "village", "near", "the", "mountains", "in", "the", "year", "the", "company", "opened", "its", "first", "office", "in", "London", "and", "later", "moved", "to", "New", "York"]


def make_task(length: int, counter: HFTokenCounter, seed: int = 0) -> Task:
    """One question over `length` tokens of filler documents with the answer in the middle."""
    rng = random.Random(seed)
    pieces, total, i = [], 0, 0
    needle = "Document 0:\nLuna\nThe cat Luna lives in Paris."
    while total < length:
        i += 1
        piece = f"Document {i}:\nTitle {i}\n" + " ".join(rng.choice(WORDS) for _ in range(80))
        pieces.append(piece)
        total += counter.count(piece) + 1
    pieces.insert(len(pieces) // 2, needle)
    return Task(0, "Where does the cat Luna live?", ("Paris",), pieces)


def measure(agent, env) -> dict:
    """Play one episode and sum its Turns."""
    start = time.perf_counter()
    episode = asyncio.run(run_episode(env, agent, seed=0, task_id=0))
    wall = time.perf_counter() - start
    prompts = [len(t.prompt_ids) for t in episode.turns]
    return {"calls": len(episode.turns), "prompt_total": sum(prompts),
            "prompt_peak": max(prompts, default=0),
            "completion_total": sum(len(t.completion_ids) for t in episode.turns),
            "wall_s": wall}


def main() -> None:
    """Run the benchmark and print one row per (agent, length)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--memory-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=16,
                        help="max new tokens of each memory update and answer")
    parser.add_argument("--repeats", type=int, default=1, help="runs per point (best wall time)")
    args = parser.parse_args()

    tokenizer = build_tiny_tokenizer()
    counter = HFTokenCounter(tokenizer)
    greedy = SamplingParams(max_new_tokens=args.new_tokens, temperature=0.0)
    with TransformersBackend(build_tiny_model(tokenizer), tokenizer) as backend:
        agents = {
            "memagent": make_memagent(backend, memory_max_new_tokens=args.new_tokens,
                                      answer_max_new_tokens=args.new_tokens, temperature=0.0),
            "full_context": FullContextAgent(ContextAnswerer(
                backend, sampling=greedy, counter=counter, max_context_tokens=1 << 20)),
        }
        print(f"tiny model (CPU), chunk {args.chunk_tokens} tokens, memory "
              f"{args.memory_tokens} tokens, {args.new_tokens} new tokens per call")
        print(f"{'agent':<13}{'context':>8}{'calls':>7}{'prompt tok':>12}{'peak prompt':>13}"
              f"{'compl tok':>11}{'wall s':>9}")
        for length in args.lengths:
            task = make_task(length, counter)
            for name, agent in agents.items():
                env = LongContextMemoryEnv([task], chunk_tokens=args.chunk_tokens,
                                           memory_tokens=args.memory_tokens, tokenizer=tokenizer)
                runs = [measure(agent, env) for _ in range(args.repeats)]
                row = min(runs, key=lambda r: r["wall_s"])
                print(f"{name:<13}{length:>8}{row['calls']:>7}{row['prompt_total']:>12}"
                      f"{row['prompt_peak']:>13}{row['completion_total']:>11}"
                      f"{row['wall_s']:>9.2f}")


if __name__ == "__main__":
    main()
