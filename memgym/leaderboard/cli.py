"""`memgym leaderboard`: submit eval runs to a board, verify a board's submissions, render it.

    memgym leaderboard submit runs/hqa --board leaderboards/ruler-hqa --name my-agent \\
        --model Qwen/Qwen2.5-7B-Instruct --out leaderboards/ruler-hqa/submissions/
    memgym leaderboard verify leaderboards/ruler-hqa   # recomputes every score from predictions
    memgym leaderboard render leaderboards/ruler-hqa   # README table, index.html, accuracy.png
    memgym leaderboard show leaderboards/ruler-hqa     # the settings and the eval commands

`verify` exits 2 when any submission is rejected (each reason names the file and the field), 3
when none is rejected but some cannot be verified here (the board's data is absent: every check
that needs no gold still ran), 0 when every one is verified. `render` refuses (exit 2, nothing
written) while any submission cannot be checked, so it never drops an entry it could not check.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def _board_path(value: str) -> Path:
    """A board folder, or a board id under ./leaderboards/."""
    path = Path(value)
    if not path.exists() and (Path("leaderboards") / value).is_dir():
        return Path("leaderboards") / value
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `memgym leaderboard` subcommands and their flags."""
    sub = parser.add_subparsers(dest="leaderboard_command", required=True)
    submit = sub.add_parser("submit", help="make a submission from `memgym eval` output folders")
    submit.add_argument("run_dir", metavar="RUN_DIR",
                        help="a `memgym eval --out` folder, or a folder of them (one per setting)")
    submit.add_argument("--board", required=True, metavar="B",
                        help="the board folder (or its id under ./leaderboards)")
    submit.add_argument("--name", required=True, metavar="N", help="the entry's name")
    submit.add_argument("--model", required=True, metavar="M",
                        help="the model evaluated ('none' for agents without one)")
    submit.add_argument("--out", default=None, metavar="DIR",
                        help="where to write it (default: the board's submissions/)")
    submit.add_argument("--hardware", default=None, help="default: this machine")
    submit.add_argument("--date", default=None, help="YYYY-MM-DD (default: today)")
    submit.add_argument("--link", default="", help="a URL (paper, code, model card)")
    submit.add_argument("--command", default="", dest="reproduce",
                        help="the command that reproduces the runs (default: from run.json)")
    submit.add_argument("--notes", default="", help="one line shown with the entry")
    submit.add_argument("--overwrite", action="store_true",
                        help="replace an existing submission of the same name")
    for name, text in (("verify", "recompute every score of a board's submissions"),
                       ("render", "write the board's README table, index.html and plot"),
                       ("show", "print a board's settings and the eval command of each")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("board", metavar="BOARD_DIR", help="the board folder (or its id)")


def run(args: argparse.Namespace) -> int:
    """Dispatch to submit / verify / render / show."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True)
    if args.leaderboard_command == "submit":
        from memgym.leaderboard.board import load_board
        from memgym.leaderboard.submit import make_submission

        board_dir = _board_path(args.board)
        out = args.out or load_board(board_dir).submissions_dir
        target, verdict = make_submission(
            args.run_dir, board_dir, name=args.name, model=args.model, out=out,
            hardware=args.hardware, date=args.date, link=args.link, command=args.reproduce,
            notes=args.notes, overwrite=args.overwrite)
        state = "verified" if verdict.ok else f"written, unverifiable here: {verdict.unverifiable}"
        console.print(f"wrote {escape(str(target))} ({escape(state)}); average "
                      f"{verdict.average if verdict.average is not None else '-'} over "
                      f"{len(verdict.scores)} settings")
        return 0 if verdict.ok else EXIT_UNVERIFIABLE
    if args.leaderboard_command == "show":
        from memgym.leaderboard.board import load_board

        board = load_board(_board_path(args.board))
        print(f"{board.id}: {board.title} ({len(board.settings)} settings, {board.episodes} "
              f"tasks each, avg_k in {list(board.avg_k)})")
        free = " ".join(f"{k}=..." for k in board.free_env_kwargs)
        for line in _data_lines(board):
            print(line)
        for s in board.settings:
            print(f"  {s.name}: memgym eval {s.eval_command()} --episodes {board.episodes}"
                  + (f"  [free: {free}]" if free else ""))
        return 0
    if args.leaderboard_command == "verify":
        return _verify(args, console)
    from memgym.leaderboard.render import render_board

    files, verdicts = render_board(_board_path(args.board))
    skipped = [v.folder.name for v in verdicts if not v.ok]
    console.print("wrote " + ", ".join(escape(str(f)) for f in files)
                  + (f"; left out (not verified): {', '.join(skipped)}" if skipped else ""))
    return 0


EXIT_REJECTED, EXIT_UNVERIFIABLE = 2, 3
"""`verify`'s exit statuses besides 0 (see the module docstring)."""


def _verify(args: argparse.Namespace, console) -> int:
    """`memgym leaderboard verify`: one line per submission, then the counts."""
    from rich.markup import escape

    from memgym.leaderboard.verify import verify_board

    board, verdicts = verify_board(_board_path(args.board))
    for v in verdicts:
        name = escape(v.folder.name)
        if v.problems:
            console.print(f"[bold red]rejected[/] {name}:")
            for p in v.problems[:50]:
                console.print(f"  {escape(str(p))}")
        elif v.unverifiable:
            console.print(f"[yellow]unverifiable here[/] {name}: well-formed, scores not "
                          f"recomputed: {escape(v.unverifiable)}")
        else:
            ref = f" (reference line, not ranked: {escape(v.privileged)})" if v.privileged else ""
            console.print(f"[green]verified[/] {name}: average {v.average:.4f} over "
                          f"{len(v.scores)}/{len(board.settings)} settings{ref}")
    rejected = sum(bool(v.problems) for v in verdicts)
    unverifiable = sum(bool(v.unverifiable) and not v.problems for v in verdicts)
    console.print(f"{board.id}: {len(verdicts)} submissions, {rejected} rejected, "
                  f"{unverifiable} unverifiable here")
    return EXIT_REJECTED if rejected else EXIT_UNVERIFIABLE if unverifiable else 0


def _data_lines(board) -> list[str]:
    """Where the board reads its data files, and for each absent one how to get it."""
    from memgym.data.download import DATASETS

    files = sorted({str(v) for s in board.settings for k, v in s.env_kwargs.items()
                    if k == "data_path" and isinstance(v, str)})
    if not files:
        return []
    lines = [f"  data ({board.data_dir}):"]
    for f in files:
        path = Path(f)
        known = next((d.name for d in DATASETS.values()
                      if any(Path(x.name).name == path.name for x in d.files)), None)
        if path.is_file():
            lines.append(f"    {path} (present)")
        elif known:
            lines.append(f"    {path} (absent: `memgym data get {known}`)")
        else:
            var = (board.raw.get("data") or {}).get("env") or "the board's data variable"
            lines.append(f"    {path} (absent: put the file there, or set {var} to the folder "
                         "that holds it)")
    return lines
