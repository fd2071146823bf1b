"""`memgym train RECIPE [key=value ...] [--resume DIR | --overwrite]`: GRPO from a YAML recipe.

    memgym train train/tiny_random_budget.yaml
    memgym train train/tiny_random_budget.yaml num_generations=8 output_dir=runs/q
    memgym train train/memagent_qwen2.5-7b.yaml --resume runs/memagent      # after a crash
    memgym train train/quickstart.yaml --resume runs/q max_steps=80          # train on

`--resume DIR` continues the run in DIR (a run folder, or one of its checkpoint-<step> folders)
with the config stored in its checkpoint: key=value overrides may change only the keys a resume
allows (max_steps, logging and saving frequencies, memory knobs); the recipe's output_dir and
other values are ignored with a note when they differ.

Data parallel: `torchrun --nproc_per_node N -m memgym train RECIPE` or `accelerate launch
--num_processes N -m memgym train RECIPE` (memgym.trainer.distributed); rank 0 logs and saves.
A run resumes at any number of processes (the checkpoint holds one full replica).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from memgym.errors import ConfigError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `train` subcommand's arguments."""
    parser.add_argument("recipe", nargs="?",
                        help="a training recipe: a shipped one by name (e.g. quickstart; "
                             "`memgym agents` lists them) or a YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override recipe keys, e.g. num_generations=8 "
                             "env_kwargs.chunk_tokens=256 (trainer.<key> also accepted)")
    parser.add_argument("--resume", metavar="DIR", default=None,
                        help="continue the run in DIR (a run folder, or a checkpoint-<step> "
                             "folder in it) with its stored config")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh in an output_dir that holds checkpoints (deletes "
                             "them and metrics.jsonl)")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the recipe (env id, env kwargs, agent, model; nothing "
                             "is loaded) and print the resolved config, then exit")
    parser.add_argument("--help-keys", action="store_true",
                        help="list every recipe key with its default and meaning, then exit")


def key_help() -> list[tuple[str, str, str]]:
    """(key, default, first sentence of its docstring) for every GRPOConfig field, in order."""
    import ast
    import dataclasses
    import inspect
    import itertools

    from memgym.trainer.config import GRPOConfig

    body = ast.parse(inspect.getsource(GRPOConfig)).body[0].body
    docs = {stmt.target.id: nxt.value.value for stmt, nxt in itertools.pairwise(body)
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)}
    rows = []
    for f in dataclasses.fields(GRPOConfig):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        doc = " ".join(docs.get(f.name, "").split())
        rows.append((f.name, default, doc.split(". ")[0].rstrip(".")))
    return rows


def _print_keys() -> None:
    """Print key_help() as a table, at least 120 columns wide (it wraps otherwise)."""
    from rich.console import Console
    from rich.table import Table

    table = Table("key", "default", "meaning", title="memgym train: recipe keys (key=value)")
    for row in key_help():
        table.add_row(*row)
    Console(width=max(Console().width, 120)).print(table)


def _explicit_overrides(overrides: list[str]) -> dict[str, Any]:
    from memgym.config import parse_overrides
    from memgym.trainer.config import _flatten_section

    return _flatten_section(parse_overrides(overrides), "overrides")


def _resume_config(resume: str, given: Any, overrides: list[str]) -> Any:
    """The config a resumed run uses: the checkpoint's, with the command line's overrides."""
    from memgym.trainer.checkpoint import read_trainer_state, resolve_resume
    from memgym.trainer.config import (
        RESUME_SAFE_KEYS,
        check_resume_config,
        config_changes,
        load_config,
    )

    folder = resolve_resume(resume)
    run_dir = folder.parent
    explicit = _explicit_overrides(overrides)
    saved = read_trainer_state(folder).get("config")
    if saved is None:  # an older checkpoint: the recipe is all there is
        config = load_config(given.to_dict(), {"output_dir": str(run_dir)})
    else:
        config = load_config(saved, {**explicit, "output_dir": str(run_dir)})
        check_resume_config(saved, config, where=resume)
        recipe_only = {k: v for k, v in config_changes(config.to_dict(), given).items()
                       if k not in explicit and k != "output_dir"}
        bad = {k: v for k, v in recipe_only.items() if k not in RESUME_SAFE_KEYS}
        if bad:
            listed = "; ".join(f"{k}: checkpoint {a!r}, recipe {b!r}"
                               for k, (a, b) in sorted(bad.items()))
            raise ConfigError(f"--resume {resume}: the recipe differs from the run's stored "
                               f"config ({listed}); resume with the recipe the run used, or "
                               "start a new run in another output_dir")
        for k, (kept, ignored) in sorted(recipe_only.items()):
            print(f"note: the recipe's {k}={ignored!r} is ignored: the run keeps {k}={kept!r} "
                  f"(pass {k}=... on the command line to change it)", file=sys.stderr)
    if Path(given.output_dir).resolve() != run_dir.resolve():
        print(f"note: continuing in {run_dir}; the recipe's output_dir={given.output_dir!r} is "
              "ignored", file=sys.stderr)
    return config


def _guard_output_dir(out: Path, overwrite: bool) -> None:
    """Refuse to restart over a run's checkpoints unless --overwrite (which clears them)."""
    from memgym.trainer.checkpoint import CHECKPOINT_PREFIX, latest_checkpoint

    if latest_checkpoint(out) is None:
        return
    if not overwrite:
        raise ConfigError(f"output_dir {out} already holds checkpoints of a run; pass --resume "
                           f"{out} to continue it, or --overwrite to start afresh there")
    from memgym.trainer.distributed import world_from_env

    if world_from_env()[0] != 0:  # under torchrun every rank checks; rank 0 clears
        return
    for path in out.glob(f"{CHECKPOINT_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    """Load and validate the recipe, then train (or print it with --dry-run)."""
    import json

    from memgym.trainer.config import load_config

    if args.help_keys:
        _print_keys()
        return 0
    if args.recipe is None:
        raise ConfigError("memgym train needs a RECIPE (e.g. train/quickstart.yaml); "
                          "`memgym train --help-keys` lists the recipe keys")
    config = load_config(args.recipe, args.overrides)
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite exclude each other")
    if args.resume:
        config = _resume_config(args.resume, config, args.overrides)
    if args.dry_run:
        from memgym.trainer.validate import check_recipe

        for note in check_recipe(config):
            print(note, file=sys.stderr)
        print(json.dumps(config.to_dict(), indent=2, default=str))
        return 0
    if not args.resume:
        _guard_output_dir(Path(config.output_dir), args.overwrite)
    from memgym.envs.validation import validate_env

    # a typo fails here, not after the model loads; `module:Env-v0` imports from the working dir
    validate_env(config.env_id, config.env_kwargs, field="env_id", kwargs_field="env_kwargs")
    from memgym.trainer.distributed import world_from_env
    from memgym.trainer.module_policy import trainer_for

    main_rank = world_from_env()[0] == 0  # under torchrun / accelerate only rank 0 talks
    logging.basicConfig(level=logging.INFO if main_rank else logging.WARNING,
                        format="%(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    trainer = trainer_for(config, resume_from=args.resume)  # GRPO, or a module_policy recipe
    try:
        rows = trainer.train()
    except KeyboardInterrupt:
        print(f"\ninterrupted at step {trainer.step}; continue with: memgym train {args.recipe} "
              f"--resume {config.output_dir}", file=sys.stderr)
        return 130
    finally:
        trainer.close()
    if rows and main_rank:
        last = rows[-1]
        print(f"done: step {last['step']}, reward {last.get('reward', float('nan')):.4f}; "
              f"metrics in {config.output_dir}/metrics.jsonl")
    return 0
