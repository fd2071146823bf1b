"""`memgym train RECIPE [key=value ...] [--resume DIR]`: GRPO from a YAML recipe.

    memgym train train/tiny_random_budget.yaml
    memgym train train/tiny_random_budget.yaml num_generations=8 output_dir=runs/q
    memgym train train/memagent_qwen2.5-7b.yaml --resume runs/memagent      # after a crash
"""

from __future__ import annotations

import argparse
import logging
import warnings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `train` subcommand's arguments."""
    parser.add_argument("recipe", help="a training recipe (YAML), e.g. train/tiny_random_budget.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override recipe keys, e.g. num_generations=8 "
                             "env_kwargs.chunk_tokens=256 (trainer.<key> also accepted)")
    parser.add_argument("--resume", metavar="DIR", default=None,
                        help="continue from a run folder (its latest checkpoint) or a "
                             "checkpoint-<step> folder")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the recipe and print the resolved config, then exit")


def run(args: argparse.Namespace) -> int:
    """Load and validate the recipe, then train (or print it with --dry-run)."""
    import json

    from memgym.trainer.config import load_config

    config = load_config(args.recipe, args.overrides)
    if args.dry_run:
        print(json.dumps(config.to_dict(), indent=2, default=str))
        return 0
    from memgym.trainer.grpo import GRPOTrainer

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    trainer = GRPOTrainer(config, resume_from=args.resume)
    try:
        rows = trainer.train()
    finally:
        trainer.close()
    if rows:
        last = rows[-1]
        print(f"done: step {last['step']}, reward {last.get('reward', float('nan')):.4f}; "
              f"metrics in {config.output_dir}/metrics.jsonl")
    return 0
