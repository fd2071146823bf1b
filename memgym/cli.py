"""The `memgym` command line: list environments, evaluate agents, train, quickstart.

Each subcommand's arguments and body live beside the code it drives (`memgym/eval/cli.py`,
`memgym/trainer/cli.py`, ...); this module only wires them together, turns memgym errors into
one clear line and exit status 2, and Ctrl-C into one line (with how to continue) and exit
status 130.

Exit status: 0 done; 2 a memgym error (bad flag, recipe, data, a backend that is down);
3 `memgym eval` finished but some episodes are incomplete (failed LLM calls: rerun with
--resume); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from memgym.errors import MemgymError

EXIT_ERROR, EXIT_INCOMPLETE, EXIT_INTERRUPTED = 2, 3, 130
"""Exit statuses besides 0 (see the module docstring)."""

# what to do after Ctrl-C, per subcommand
RESUME_HINTS: dict[str, str] = {
    "eval": "the finished episodes are kept; rerun the same command with --resume to continue",
    "train": "rerun with --resume OUTPUT_DIR to continue from the last saved checkpoint",
    "quickstart": "rerun `memgym quickstart` (with --overwrite) to start again",
}

# subcommand -> (module with add_arguments(parser) and run(args) -> int, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "envs": ("memgym.cli", "list every registered environment id with a one-line description"),
    "eval": ("memgym.eval.cli", "evaluate an agent recipe on an environment"),
    "train": ("memgym.trainer.cli", "train a memory policy with GRPO from a YAML recipe"),
    "quickstart": ("memgym.quickstart.run", "evaluate, train and re-evaluate the embedded tiny model"),
    "models": ("memgym.models.cli", "list the named models, print one's folder, or prepare it"),
    "leaderboard": ("memgym.leaderboard.cli",
                    "submit eval runs to a board, verify its submissions, render it"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`memgym envs` takes no arguments."""


def run(args: argparse.Namespace) -> int:
    """Print the registered environment ids and what each one is."""
    from rich.console import Console
    from rich.table import Table

    from memgym.envs.registration import ENV_DESCRIPTIONS

    table = Table(title="memgym environments", show_lines=False)
    table.add_column("id", style="bold cyan", no_wrap=True)
    table.add_column("description")
    for env_id, blurb in ENV_DESCRIPTIONS.items():
        table.add_row(env_id, blurb)
    Console(width=max(100, Console().width)).print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    from memgym import __version__

    parser = argparse.ArgumentParser(prog="memgym", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"memgym {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        # an ImportError here is a bug or a missing dependency: let it show, do not hide the
        # subcommand behind "invalid choice"
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `memgym` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except MemgymError as exc:
        print(f"memgym {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        hint = RESUME_HINTS.get(args.command, "")
        print(f"\nmemgym {args.command}: interrupted" + (f"; {hint}" if hint else ""),
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
