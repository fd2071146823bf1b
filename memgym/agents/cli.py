"""`memgym agents`: the shipped agent recipes (usable by name: `memgym eval --agent memagent`)
and the shipped training recipes (`memgym train quickstart`), one line each."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`memgym agents` takes no arguments but --paths."""
    parser.add_argument("--paths", action="store_true",
                        help="print each recipe's file too (copy one to start your own)")


def run(args: argparse.Namespace) -> int:
    """Print the shipped agent recipes (name, kind, summary), then the training recipes."""
    import yaml
    from rich.console import Console
    from rich.table import Table

    from memgym.agents.recipe import AGENT_KINDS
    from memgym.recipes import recipe_summary, shipped_recipes

    console = Console(width=max(100, Console().width))
    agents = Table(title="agent recipes (memgym eval --agent NAME)")
    training = Table(title="training recipes (memgym train NAME)")
    for table in (agents, training):
        table.add_column("name", style="bold cyan", no_wrap=True)
    agents.add_column("kind", no_wrap=True)
    for table in (agents, training):
        table.add_column("what it is")
        if args.paths:
            table.add_column("file")
    for name, path in shipped_recipes("agents").items():
        kind = str((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("kind", "?"))
        summary = recipe_summary(path)
        if len(summary) < 12 and kind in AGENT_KINDS:  # a bare name: say what the kind does
            summary = AGENT_KINDS[kind].description.rstrip(".")
        agents.add_row(name, kind, summary, *([str(path)] if args.paths else []))
    for name, path in shipped_recipes("train").items():
        training.add_row(name, recipe_summary(path), *([str(path)] if args.paths else []))
    console.print(agents)
    console.print(training)
    console.print("Your own agent: a recipe whose kind is package.module:Name (agents/README.md, "
                  "\"Compose your own memory agent\").")
    return 0
