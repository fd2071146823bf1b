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

from memgym.errors import ConfigError, MemgymError

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
    "agents": ("memgym.agents.cli", "list the shipped agent and training recipes (usable by name)"),
    "eval": ("memgym.eval.cli", "evaluate an agent recipe on an environment"),
    "train": ("memgym.trainer.cli", "train a memory policy with GRPO from a YAML recipe"),
    "quickstart": ("memgym.quickstart.run", "evaluate, train and re-evaluate the embedded tiny model"),
    "models": ("memgym.models.cli", "list the named models, print one's folder, or prepare it"),
    "leaderboard": ("memgym.leaderboard.cli",
                    "submit eval runs to a board, verify its submissions, render it"),
    "data": ("memgym.data.download", "list the real datasets, download one, print its path"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`memgym envs` lists the ids; `envs catalog` and `envs new` are for env authors."""
    sub = parser.add_subparsers(dest="envs_command")
    catalog = sub.add_parser("catalog", help="print, --write or --check the catalog of "
                                             "envs/README.md (generated from the registry)")
    catalog.add_argument("--file", default="envs/README.md", metavar="PATH",
                         help="the file holding the catalog markers (default envs/README.md)")
    mode = catalog.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="regenerate it in place")
    mode.add_argument("--check", action="store_true", help="exit 2 if it is stale")
    new = sub.add_parser("new", help="write a custom-environment package skeleton that passes "
                                     "its own tests")
    new.add_argument("name", metavar="NAME", help="package name, e.g. my-task")
    new.add_argument("--dir", default=".", metavar="DIR", help="where to create NAME/")


def run(args: argparse.Namespace) -> int:
    """Print the registered environment ids and what each one is (or run an authoring command)."""
    if getattr(args, "envs_command", None) is not None:
        return _run_authoring(args)
    from rich.console import Console
    from rich.table import Table

    from memgym.envs.registration import ENV_DESCRIPTIONS, PLUGIN_ENVS

    table = Table(title="memgym environments", show_lines=False)
    table.add_column("id", style="bold cyan", no_wrap=True)
    table.add_column("description")
    for env_id, blurb in ENV_DESCRIPTIONS.items():
        table.add_row(env_id, blurb)
    for env_id, (plugin, blurb) in PLUGIN_ENVS.items():  # outside packages (entry points)
        table.add_row(env_id, f"{blurb} [from {plugin}]".strip())
    Console(width=max(100, Console().width)).print(table)
    return 0


def _run_authoring(args: argparse.Namespace) -> int:
    """`memgym envs catalog` and `memgym envs new`."""
    from memgym.envs import authoring

    if args.envs_command == "new":
        root = authoring.new_env_package(args.name, args.dir)
        print(f"wrote {root}; test it with: cd {root} && PYTHONPATH=. python -m pytest tests")
        return 0
    if args.write:
        changed = authoring.write_catalog(args.file)
        print(f"{args.file}: catalog {'regenerated' if changed else 'already up to date'}")
        return 0
    if args.check:
        stale = authoring.check_catalog(args.file)
        if stale:
            raise ConfigError(stale)
        print(f"{args.file}: catalog up to date")
        return 0
    print(authoring.catalog_markdown(), end="")
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
