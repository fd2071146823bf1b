"""`render`: a board's verified submissions as a README table, a static HTML page and a plot.

Only verified submissions are ranked (complete ones, by the average over settings, in the board's
order); partial ones (some settings) are listed after them, unranked. Published numbers from
papers (`reported.yaml` beside board.yaml) go in their own "reported" table, never ranked with
verified entries. The HTML page is one file with an inline script (no network, no external
scripts): click a header to sort; `#sort=<column index>&dir=asc|desc` in the URL sorts on load.
The plot is the score against x (context length), one line per verified agent, as MemAgent's
Figure 1.

A question-level board (LoCoMo, LongMemEval) adds columns after the average (its ranked metric):
each shown metric (overall), the ranked metric per category, and each claimed metric marked
"(claimed)": an LLM judge's score that `verify` cannot recompute, never used to rank.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from memgym.errors import ConfigError
from memgym.leaderboard.board import Board
from memgym.leaderboard.verify import Verdict, verify_board

__all__ = ["REPORTED_FILE", "Reported", "Row", "board_rows", "extra_columns", "load_reported", "render_board",
           "render_html", "render_markdown", "render_plot"]

REPORTED_FILE = "reported.yaml"
README_START, README_END = "<!-- leaderboard:start -->", "<!-- leaderboard:end -->"
HTML_FILE, PLOT_FILE = "index.html", "accuracy.png"


@dataclass(frozen=True)
class Row:
    """One table row: an entry's name, model, scores by x, average, and facts to show."""

    rank: int | None
    name: str
    model: str
    recipe: str
    by_x: dict[str, float | None]
    average: float | None
    date: str
    link: str
    command: str
    coverage: str
    extra: tuple[float | None, ...] = ()
    """Question-level boards: the values of `extra_columns(board)`, in order."""


@dataclass(frozen=True)
class Reported:
    """A published number: not verified, never ranked; `source` cites the paper's table/figure."""

    name: str
    model: str
    source: str
    by_x: dict[str, float | None]
    average: float | None
    note: str


def _x_key(x: Any) -> str:
    return str(x)


def _by_x(board: Board, verdict: Verdict) -> dict[str, float | None]:
    """Mean score at each x over the settings there (None unless every setting at x is covered)."""
    out: dict[str, float | None] = {}
    for x in board.x_values:
        names = [s.name for s in board.settings if s.x == x]
        values = [verdict.scores.get(n) for n in names]
        out[_x_key(x)] = None if any(v is None for v in values) else sum(values) / len(values)
    return out


def extra_columns(board: Board) -> list[str]:
    """The headers of a question-level board's columns after the average (none otherwise)."""
    if board.level != "question":
        return []
    return ([*board.shown_metrics] + [f"{board.metric} {c}" for c in board.categories]
            + [f"{m} (claimed)" for m in board.claimed_metrics])


def _extra_values(board: Board, verdict: Verdict) -> tuple[float | None, ...]:
    if board.level != "question":
        return ()
    return (*(verdict.metrics.get(m) for m in board.shown_metrics),
            *(verdict.by_category.get(c, {}).get(board.metric) for c in board.categories),
            *(verdict.claimed.get(m) for m in board.claimed_metrics))


def board_rows(board: Board, verdicts: Sequence[Verdict]) -> list[Row]:
    """Ranked rows of the verified verdicts (complete first, by average), then partial ones."""
    ok = [v for v in verdicts if v.ok and v.scores]
    sign = -1 if board.ranking_order == "descending" else 1
    ok.sort(key=lambda v: (not v.complete, sign * (v.average or 0.0), v.metadata.get("name", "")))
    rows, rank = [], 0
    for v in ok:
        meta = v.metadata
        if v.complete:
            rank += 1
        rows.append(Row(rank if v.complete else None, str(meta.get("name", v.folder.name)),
                        str(meta.get("model", "")), str(meta.get("agent_recipe", "")),
                        _by_x(board, v), v.average, str(meta.get("date", "")),
                        str(meta.get("link", "")), str(meta.get("command", "")),
                        f"{len(v.scores)}/{len(board.settings)}", _extra_values(board, v)))
    return rows


def load_reported(board: Board) -> list[Reported]:
    """The board's published numbers (reported.yaml), or [] when it has none."""
    path = board.folder / REPORTED_FILE
    if not path.is_file():
        return []
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: a list of entries {{name, model, source, scores, note}}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("source") or not isinstance(
                item.get("scores"), dict):
            raise ConfigError(f"{path}: entry {i} needs name, source (paper + table/figure) and "
                              "scores {x: value}")
        scores = {_x_key(k): (None if v is None else float(v)) for k, v in item["scores"].items()}
        unknown = set(scores) - {_x_key(x) for x in board.x_values}
        if unknown:
            raise ConfigError(f"{path}: entry {i} ({item.get('name')}): x {min(unknown)!r} "
                              f"is not a column of the board ({board.x_values})")
        out.append(Reported(str(item.get("name", "")), str(item.get("model", "")),
                            str(item["source"]), scores,
                            None if item.get("average") is None else float(item["average"]),
                            str(item.get("note", ""))))
    return out


def _pct(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        f"{100 * value:.1f}"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(board: Board, rows: Sequence[Row], reported: Sequence[Reported]) -> str:
    """The leaderboard section of the board's README (verified table, then reported)."""
    xs = [_x_key(x) for x in board.x_values]
    extra = extra_columns(board)
    head = ["rank", "name", "model", "recipe", *xs, "average", *extra, "settings", "date"]
    lines = [(f"Scores: {board.metric} (%), recomputed from the predictions by "
              f"`memgym leaderboard verify`; columns: {board.x_label}."
              + (_question_note(board) if extra else "")), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        name = f"[{_md(r.name)}]({r.link})" if r.link else _md(r.name)
        cells = [str(r.rank) if r.rank else "-", name, _md(r.model), f"`{_md(r.recipe)}`",
                 *(_pct(r.by_x.get(x)) for x in xs), _pct(r.average),
                 *(_pct(v) for v in r.extra), r.coverage, r.date]
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append("| " + " | ".join(["-", "(no verified submission yet)"] + [""] *
                                       (len(head) - 2)) + " |")
    if any(r.command for r in rows):
        lines += ["", "Reproduce:", ""]
        lines += [f"- **{_md(r.name)}**: `{r.command}`" for r in rows if r.command]
    lines += ["", "### Reported (published numbers, not verified, not ranked)", ""]
    if reported:
        rhead = ["name", "model", *xs, "average", "source"]
        lines += ["| " + " | ".join(rhead) + " |", "|" + "---|" * len(rhead)]
        for e in reported:
            lines.append("| " + " | ".join([_md(e.name), _md(e.model),
                                            *(_pct(e.by_x.get(x)) for x in xs), _pct(e.average),
                                            _md(e.source + (f" ({e.note})" if e.note else ""))])
                         + " |")
    else:
        lines.append("(none)")
    return "\n".join(lines) + "\n"


def _question_note(board: Board) -> str:
    text = (f" Ranked by {board.metric} over every question (the average); "
            + (f"{', '.join(board.shown_metrics)} recomputed too; " if board.shown_metrics else "")
            + (f"{board.metric} per category ({', '.join(board.categories)})."
               if board.categories else ""))
    if board.claimed_metrics:
        text += (f" {', '.join(board.claimed_metrics)} (claimed): the submitter's LLM judge, "
                 "which verify cannot recompute: unverified, never ranked.")
    return text


_SCRIPT = """
(function () {
  var table = document.getElementById('board');
  function cellValue(row, i) {
    var cell = row.cells[i], v = cell.getAttribute('data-value');
    if (v === null) { v = cell.textContent; }
    var n = parseFloat(v);
    return v === '' ? null : (isNaN(n) ? v.toLowerCase() : n);
  }
  function sortBy(i, dir) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, i), y = cellValue(b, i);
      if (x === y) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      return (x < y ? -1 : 1) * (dir === 'asc' ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    var heads = table.tHead.rows[0].cells;
    for (var k = 0; k < heads.length; k++) { heads[k].removeAttribute('aria-sort'); }
    heads[i].setAttribute('aria-sort', dir === 'asc' ? 'ascending' : 'descending');
    table.setAttribute('data-sorted', i + ':' + dir);
  }
  var heads = table.tHead.rows[0].cells;
  for (var k = 0; k < heads.length; k++) {
    (function (i) {
      heads[i].addEventListener('click', function () {
        var now = heads[i].getAttribute('aria-sort');
        sortBy(i, now === 'descending' ? 'asc' : 'desc');
      });
    })(k);
  }
  var m = /sort=(\\d+)(?:&dir=(asc|desc))?/.exec(window.location.hash);
  if (m && +m[1] < heads.length) { sortBy(+m[1], m[2] || 'desc'); }
})();
"""


def render_html(board: Board, rows: Sequence[Row], reported: Sequence[Reported]) -> str:
    """A self-contained sortable HTML page of the board (inline CSS and script, no network)."""
    esc = html.escape
    xs = [_x_key(x) for x in board.x_values]
    extra = extra_columns(board)
    head = ["rank", "name", "model", "recipe", *xs, "average", *extra, "settings", "date"]
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           ("<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' file:\">"),
           f"<title>{esc(board.title)}</title>",
           ("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
            "th{cursor:pointer;background:#f4f4f4}td.t{text-align:left}</style></head><body>"),
           f"<h1>{esc(board.title)}</h1><p>{esc(board.description)}</p>",
           (f"<p>{esc(board.metric)} (%), recomputed from predictions; columns: "
            f"{esc(board.x_label)}.{esc(_question_note(board)) if extra else ''} "
            "Click a header to sort.</p>"),
           "<table id='board'><thead><tr>"
           + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for r in rows:
        name = (f"<a href='{esc(r.link, quote=True)}'>{esc(r.name)}</a>"
                if r.link.startswith(("https://", "http://")) else esc(r.name))
        nums = [*(r.by_x.get(x) for x in xs), r.average, *r.extra]
        cells = [f"<td data-value='{r.rank or ''}'>{r.rank or '-'}</td>",
                 f"<td class='t' data-value='{esc(r.name, quote=True)}'>{name}</td>",
                 f"<td class='t'>{esc(r.model)}</td>", f"<td class='t'>{esc(r.recipe)}</td>",
                 *(f"<td data-value='{'' if v is None else repr(float(v))}'>{_pct(v)}</td>"
                   for v in nums),
                 f"<td>{esc(r.coverage)}</td>", f"<td>{esc(r.date)}</td>"]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if reported:
        out.append("<h2>Reported (published numbers, not verified, not ranked)</h2>"
                   "<table id='reported'><thead><tr>"
                   + "".join(f"<th>{esc(h)}</th>" for h in ["name", "model", *xs, "average",
                                                             "source"])
                   + "</tr></thead><tbody>")
        for e in reported:
            out.append("<tr>" + f"<td class='t'>{esc(e.name)}</td><td class='t'>{esc(e.model)}</td>"
                       + "".join(f"<td>{_pct(e.by_x.get(x))}</td>" for x in xs)
                       + f"<td>{_pct(e.average)}</td><td class='t'>{esc(e.source)}</td></tr>")
        out.append("</tbody></table>")
    out.append(f"<p><img src='{PLOT_FILE}' alt='{esc(board.metric)} against "
               f"{esc(board.x_label)}'></p>")
    out.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"


def render_plot(board: Board, rows: Sequence[Row], path: Path) -> Path:
    """Score against x, one line per verified agent (matplotlib, Agg backend); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = board.x_values
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    numeric = board.x_scale != "categorical" and all(isinstance(x, (int, float)) for x in xs)
    positions = list(xs) if numeric else list(range(len(xs)))
    for r in rows:
        points = [(p, r.by_x.get(_x_key(x))) for p, x in zip(positions, xs)]
        points = [(p, 100 * v) for p, v in points if v is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label=r.name)
    if numeric and board.x_scale == "log":
        ax.set_xscale("log")
    if numeric:
        ax.set_xticks(positions, [str(x) for x in xs], rotation=45 if len(xs) > 6 else 0)
    else:
        ax.set_xticks(positions, [str(x) for x in xs])
    ax.minorticks_off()
    ax.set_xlabel(board.x_label)
    ax.set_ylabel(f"{board.metric} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(board.title)
    ax.grid(alpha=0.3)
    if rows:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def _write_readme(board: Board, section: str) -> Path:
    path = board.folder / "README.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else \
        f"# {board.title}\n\n{board.description}\n\n"
    block = f"{README_START}\n{section}{README_END}"
    if README_START in text and README_END in text:
        start, end = text.index(README_START), text.index(README_END) + len(README_END)
        text = text[:start] + block + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n## Leaderboard\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def render_board(board_dir: str | Path) -> tuple[list[Path], list[Verdict]]:
    """Verify a board's submissions and write its README section, index.html and accuracy.png.

    Returns the files written and the verdicts (rejected submissions are left out of the page).
    """
    board, verdicts = verify_board(board_dir)
    rows, reported = board_rows(board, verdicts), load_reported(board)
    readme = _write_readme(board, render_markdown(board, rows, reported))
    page = board.folder / HTML_FILE
    page.write_text(render_html(board, rows, reported), encoding="utf-8")
    plot = render_plot(board, rows, board.folder / PLOT_FILE)
    return [readme, page, plot], verdicts
