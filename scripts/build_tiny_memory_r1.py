"""Build the tiny Memory-R1 manager of `memgym quickstart memory-r1` from scratch, offline.

    python scripts/build_tiny_memory_r1.py --out memgym/assets/tiny-memory-r1   # the shipped one
    python scripts/build_tiny_memory_r1.py --out /tmp/manager --steps 200
    memgym quickstart memory-r1 --model /tmp/manager                          # start from it

How: the imperfect scripted teacher (`memgym.quickstart.memory_r1.demonstrations`: it ADDs
where it should UPDATE with probability `add_for_update`, DELETEs a retracted fact with
probability `delete`) plays 300 synthetic conversations through the env; a byte-level BPE
tokenizer is trained on the first 400 (prompt, operation lines) pairs; a 3-layer Qwen2 model
(random init) learns them by SFT (completions weigh 1, prompts 0.1). The result, BUILD.json
beside the weights, records every setting and the loss curve.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sft import completion_batch, encode_pairs, sft_loss

from memgym.quickstart.memory_r1 import MANAGER_TEMPLATE, demonstrations

__all__ = ["BuildSettings", "build_manager", "main", "save_manager"]


@dataclass
class BuildSettings:
    """The build of the tiny manager (SFT from the imperfect teacher)."""

    seed: int = 0
    conversations: int = 300
    add_for_update: float = 0.6
    delete: float = 0.2
    vocab_size: int = 400
    hidden_size: int = 96
    num_layers: int = 3
    num_heads: int = 4
    steps: int = 1200
    batch_size: int = 32
    learning_rate: float = 2e-3


def _sft(model: Any, examples: list, settings: BuildSettings, pad_id: int, log) -> list[float]:
    """AdamW with warmup and linear decay over `settings.steps` batches; the losses."""
    import torch

    rng = random.Random(settings.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / 30) * max(0.05, 1 - k / settings.steps))
    model.train()
    losses = []
    for step in range(settings.steps):
        ids, mask, weights = completion_batch(
            rng.sample(examples, min(settings.batch_size, len(examples))), pad_id, 0.1)
        loss = sft_loss(model, ids, mask, weights)[0]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 100 == 0:
            log(f"  sft step {step}: loss {loss.item():.3f}")
    model.eval()
    return losses


def build_manager(settings: BuildSettings | None = None, log=print) -> tuple[Any, Any, dict]:
    """Tokenizer + tiny Qwen2 from scratch, SFT on the teacher's pairs; (model, tokenizer, log)."""
    import torch

    from memgym.testing.tiny_lm import build_tiny_model, build_tiny_tokenizer

    s = settings or BuildSettings()
    t0 = time.perf_counter()
    pairs = demonstrations(s.conversations, seed=s.seed, add_for_update=s.add_for_update,
                           delete=s.delete)
    corpus = [MANAGER_TEMPLATE.text, "user", "assistant"] + [x for p in pairs[:400] for x in p]
    tokenizer = build_tiny_tokenizer(corpus=corpus, vocab_size=s.vocab_size)
    torch.manual_seed(s.seed)
    model = build_tiny_model(tokenizer, hidden_size=s.hidden_size, num_layers=s.num_layers,
                             num_heads=s.num_heads, seed=s.seed, initializer_range=0.02)
    losses = _sft(model, encode_pairs(pairs, tokenizer), s, tokenizer.pad_token_id, log)
    record = {"settings": s.__dict__, "pairs": len(pairs), "final_loss": sum(losses[-20:]) / 20,
              "loss_curve": [round(sum(losses[k:k + 50]) / len(losses[k:k + 50]), 4)
                             for k in range(0, len(losses), 50)],
              "seconds": round(time.perf_counter() - t0, 1),
              "command": "python scripts/build_tiny_memory_r1.py --out DIR "
                         f"--steps {s.steps} --seed {s.seed}"}
    return model, tokenizer, record


def save_manager(out: str | Path, settings: BuildSettings | None = None, log=print) -> dict:
    """Build the tiny manager and save it as a model folder with BUILD.json (the shipped
    `embedded-memory-r1` is this, at the defaults)."""
    model, tokenizer, record = build_manager(settings, log=log)
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "BUILD.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """`python scripts/build_tiny_memory_r1.py --out DIR`: build the tiny Memory-R1 manager."""
    import torch

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", required=True, help="the model folder to write")
    parser.add_argument("--steps", type=int, default=BuildSettings.steps, help="SFT steps")
    parser.add_argument("--conversations", type=int, default=BuildSettings.conversations,
                        help="teacher conversations to learn from")
    parser.add_argument("--seed", type=int, default=BuildSettings.seed)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    record = save_manager(args.out, BuildSettings(steps=args.steps, seed=args.seed,
                                                  conversations=args.conversations))
    print(f"{args.out}: {record['pairs']} demonstrations, final loss {record['final_loss']:.3f}, "
          f"{record['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
