"""Build memgym's embedded tiny MemAgent model from scratch, offline, reproducibly.

    python scripts/build_tiny_memagent.py                  # writes memgym/assets/tiny-memagent
    python scripts/build_tiny_memagent.py --out /tmp/m --steps 200

How the model is made:
1. A byte-level BPE tokenizer (memgym's tiny tokenizer recipe) is trained on MemAgent-format text
   of the synthetic memory task, so task words are single tokens and digits one token each.
2. Demonstrations: the synthetic task is played through the real env (same chunking, memory
   budget and MemAgent prompts as at evaluation) by a *teacher* memory policy. The teacher is the
   scripted oracle (`memgym.data.synthetic.oracle_memory`) except that in a fraction
   `stale_fraction` of episodes it ignores value updates of keys it already holds - the classic
   stale-memory failure of real memory agents. The demonstrations therefore show both habits.
3. Supervised fine-tuning of a small Qwen2 model (random init) on those demonstrations: the
   completions (memory rewrites and boxed answers) weigh 1, the prompt tokens
   `prompt_loss_weight` (0.1), in stages that continue one another (`--init-from`; the
   commands that built the shipped model are in memgym/assets/README.md).

The result is a plausible but imperfect memory agent: it reads, copies facts and answers in the
right format, but at a value update it keeps the stale value about as often as the teacher did.
GRPO in `memgym quickstart` then has something real to fix. Demonstrations use the SFT seed and
the task family mix below; the evaluation splits use other seeds (`experiment.SPLITS`), and the
longer-stream split is longer than anything seen here.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sft import completion_batch, encode_pairs, sft_loss

from memgym.assets import TINY_MEMAGENT
from memgym.quickstart import experiment as X

__all__ = [
    "DEFAULT_OUT",
    "BuildSettings",
    "build",
    "demonstrations",
    "teacher_memory",
    "tokenizer_corpus",
    "train",
]

DEFAULT_OUT = TINY_MEMAGENT


@dataclass
class BuildSettings:
    """Every knob of the build (written to BUILD.json next to the weights)."""

    seed: int = 0
    episodes: int = 300
    """Episodes for the tokenizer corpus; training itself draws fresh episodes every step, so
    the model must learn to copy facts rather than memorise a fixed set of values."""
    episodes_per_step: int = 8
    """Fresh demonstration episodes played per training step (each gives one example per chunk
    plus the answer; the batch is drawn from a rolling buffer of recent examples)."""
    buffer_size: int = 2048
    stale_fraction: float = 0.5
    """Share of demonstration episodes whose teacher ignores updates of keys it already holds."""
    two_key_fraction: float = 0.25
    """Share of demonstrations asking for two keys (the other task family)."""
    filler_min: int = 4
    filler_max: int = 16
    """Filler sentences per demonstration, drawn uniformly in [filler_min, filler_max] (the
    longer-stream evaluation split uses 28)."""
    num_keys: int = X.IN_DOMAIN["num_keys"]
    num_updates: int = X.IN_DOMAIN["num_updates"]
    num_distractor_facts: int = X.IN_DOMAIN["num_distractor_facts"]
    vocab_size: int = 640
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    device: str = "auto"
    """"auto" (CUDA when available, else CPU), "cpu" or "cuda"."""
    init_from: str = ""
    """Continue from a model folder an earlier build wrote (its tokenizer is kept), instead of
    a fresh tokenizer and random weights; use another `seed` so the episodes are new."""
    prompt_loss_weight: float = 0.1
    """Weight of the language-modelling loss on prompt tokens (completions weigh 1). Prompts are
    full of copies (keys from the question, facts in memory and chunk), so predicting them
    teaches the copying a memory agent needs far sooner than completions alone."""


# -- the teacher -----------------------------------------------------------------------------
def _memory_values(memory: str) -> dict[str, str]:
    values = {}
    for line in memory.splitlines():
        key, sep, value = line.partition(":")
        if sep and key != "partial":
            values[key.strip()] = value.strip()
    return values


NOTHING_YET = "No relevant information yet."
"""What the teacher writes while it holds nothing (an empty completion would keep the old memory)."""


def teacher_memory(question: str, memory: str, chunk: str, *, stale: bool) -> str:
    """The oracle's memory rewrite; when `stale`, values already held are never updated."""
    from memgym.data.synthetic import oracle_memory

    new = oracle_memory(question, memory, chunk)
    if not stale or not new:
        return new or NOTHING_YET
    held = _memory_values(memory)
    lines = []
    for line in new.splitlines():
        key, sep, _ = line.partition(":")
        if sep and key.strip() in held:
            line = f"{key.strip()}: {held[key.strip()]}"
        lines.append(line)
    return "\n".join(lines)


def _task_source(rng: random.Random, settings: BuildSettings, index: int):
    from memgym.data.synthetic import synthetic_tasks

    two_keys = rng.random() < settings.two_key_fraction
    knobs = dict(X.IN_DOMAIN, num_keys=settings.num_keys + two_keys, combine=two_keys,
                 num_updates=settings.num_updates,
                 num_distractor_facts=settings.num_distractor_facts,
                 filler_sentences=rng.randint(settings.filler_min, settings.filler_max))
    return synthetic_tasks(num_tasks=1, seed=X.SFT_SEED * 1_000_003 + index, **knobs)


def demonstrations(settings: BuildSettings, tokenizer: Any, *, first: int = 0,
                   count: int | None = None) -> list[tuple[str, str]]:
    """(prompt, completion) pairs from teacher-played episodes `first .. first+count-1`.

    Episode i depends only on (settings.seed, i), so a stream of fresh episodes is reproducible.
    """
    from memgym.agents.prompts import MEMAGENT_FINAL, MEMAGENT_UPDATE
    from memgym.data.synthetic import oracle_answer
    from memgym.envs.long_context import LongContextMemoryEnv

    pairs: list[tuple[str, str]] = []
    for i in range(first, first + (settings.episodes if count is None else count)):
        rng = random.Random(f"{settings.seed}:{i}")
        env = LongContextMemoryEnv(_task_source(rng, settings, i), tokenizer=tokenizer,
                                   **X.ENV_KWARGS)
        stale = rng.random() < settings.stale_fraction
        obs, _ = env.reset(seed=i, options={"task_id": 0})
        while obs["phase"] == "update":
            memory = teacher_memory(obs["question"], obs["memory"], obs["chunk"], stale=stale)
            prompt = MEMAGENT_UPDATE.render(question=obs["question"], memory=obs["memory"],
                                            chunk=obs["chunk"])
            pairs.append((prompt, memory))
            obs, *_ = env.step(memory)
        answer = oracle_answer(obs["question"], obs["memory"])
        pairs.append((MEMAGENT_FINAL.render(question=obs["question"], memory=obs["memory"]),
                      answer))
    return pairs


def tokenizer_corpus(settings: BuildSettings) -> list[str]:
    """Text the tokenizer is trained on: prompts and completions of `settings.episodes` episodes."""
    from memgym.agents.prompts import MEMAGENT_FINAL, MEMAGENT_UPDATE

    lines = [MEMAGENT_UPDATE.text, MEMAGENT_FINAL.text, "No previous memory", "user", "assistant"]
    for prompt, completion in demonstrations(settings, tokenizer=None):
        lines += [prompt, completion]
    return lines


# -- training --------------------------------------------------------------------------------
def train(model: Any, tokenizer: Any, settings: BuildSettings, log=print) -> list[float]:
    """Fine-tuning (completions, plus prompts at `prompt_loss_weight`); returns the completion
    loss averaged over every 50 steps."""
    from collections import deque

    import torch

    rng = random.Random(settings.seed + 1)
    pad_id = tokenizer.pad_token_id
    buffer: deque = deque(maxlen=settings.buffer_size)
    next_episode = 0

    def refill(episodes: int) -> None:
        nonlocal next_episode
        buffer.extend(encode_pairs(demonstrations(settings, tokenizer, first=next_episode,
                                             count=episodes), tokenizer))
        next_episode += episodes

    refill(max(settings.batch_size, settings.buffer_size // 6))
    device = next(model.parameters()).device
    opt = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                            betas=(0.9, 0.98), weight_decay=settings.weight_decay)

    def lr_at(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    losses, running, running_completion = [], 0.0, 0.0
    for step in range(settings.steps):
        refill(settings.episodes_per_step)
        batch = completion_batch(rng.sample(list(buffer), settings.batch_size), pad_id,
                       settings.prompt_loss_weight)
        batch = tuple(t.to(device) for t in batch)
        loss, completion_loss = sft_loss(model, *batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running += loss.item()
        running_completion += completion_loss.item()
        if (step + 1) % 50 == 0:
            losses.append(running_completion / 50)
            log(f"step {step + 1}/{settings.steps}  loss {running / 50:.4f}  "
                f"completion loss {running_completion / 50:.4f}")
            running, running_completion = 0.0, 0.0
    model.eval()
    return losses


def build(out: str | Path = DEFAULT_OUT, settings: BuildSettings | None = None,
          log=print) -> dict[str, Any]:
    """Build tokenizer and model, fine-tune, save into `out`; return the build record."""
    import torch

    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

    settings = settings or BuildSettings()
    out = Path(out)
    start = time.perf_counter()
    random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    if settings.init_from:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(settings.init_from)
        model = AutoModelForCausalLM.from_pretrained(settings.init_from, dtype=torch.float32)
    else:
        tokenizer = build_tiny_tokenizer(corpus=tokenizer_corpus(settings),
                                         vocab_size=settings.vocab_size)
        model = build_tiny_model(tokenizer, hidden_size=settings.hidden_size,
                                 num_layers=settings.num_layers, num_heads=settings.num_heads,
                                 intermediate_size=settings.intermediate_size,
                                 seed=settings.seed, initializer_range=0.02)
    device = settings.device if settings.device != "auto" else (
        "cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    losses = train(model, tokenizer, settings, log=log)
    out.mkdir(parents=True, exist_ok=True)
    model.to("cpu").save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    record = {
        "settings": asdict(settings),
        "parameters": sum(p.numel() for p in model.parameters()),
        "demonstration_episodes": settings.steps * settings.episodes_per_step,
        "completion_loss_every_50_steps": [round(x, 4) for x in losses],
        "build_seconds": round(time.perf_counter() - start, 1),
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "torch": torch.__version__,
    }
    (out / "BUILD.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"saved {record['parameters']:,}-parameter model to {out} "
        f"in {record['build_seconds']} s")
    return record


def main(argv: list[str] | None = None) -> None:
    """Command line: `python scripts/build_tiny_memagent.py [--out DIR] [--steps N] ...`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    for name, value in asdict(BuildSettings()).items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    build(out, BuildSettings(**{**asdict(BuildSettings()), **args}))


if __name__ == "__main__":
    main()
