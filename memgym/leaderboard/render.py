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
from memgym.leaderboard.board import QUESTION_METRICS, Board
from memgym.leaderboard.verify import Verdict, verify_board

__all__ = ["REPORTED_FIELDS", "REPORTED_FILE", "Reported", "Row", "board_rows", "extra_columns",
           "load_reported", "render_board", "render_html", "render_markdown", "render_plot",
           "reported_columns"]

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
    """A published number: not verified, never ranked; cites its source, table and setting.

    Values are fractions (0-1) like verified scores; `reported.yaml` may give them as printed
    (`unit: percent`), and `load_reported` converts them.
    """

    name: str
    model: str
    source: str
    by_x: dict[str, float | None]
    average: float | None
    note: str
    table: str = ""
    """Where in the source: "Table 2", "Figure 5"."""
    setting: str = ""
    """The exact setting: lengths, split, metric, judge, runs."""
    extra: tuple[float | None, ...] = ()
    """Question-level boards: the values of `extra_columns(board)`, in order."""


REPORTED_FIELDS = ("name", "model", "source", "table", "setting", "scores", "average", "metrics",
                   "by_category", "unit", "note")
"""The keys of a reported.yaml entry; name, model, source, table, setting and scores are required."""


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
    """The board's published numbers (reported.yaml), or [] when it has none.

    Each entry: name, model, source (a URL), table (where in it), setting (the exact setting),
    scores {x: value} (the ranked metric per column; null where the source has none), and
    optionally average, note, unit ("fraction", the default, or "percent": values as printed),
    and on a question-level board metrics {metric: overall value} (the board's metric, shown and
    claimed metrics) and by_category {category: {metric: value}}. A bad entry is a ConfigError
    naming the file, the entry and the field.
    """
    path = board.folder / REPORTED_FILE
    if not path.is_file():
        return []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: a list of entries {{{', '.join(REPORTED_FIELDS)}}}")
    return [_reported_entry(board, path, i, item) for i, item in enumerate(raw)]


def _reported_entry(board: Board, path: Path, i: int, item: Any) -> Reported:
    """One validated reported.yaml entry (see `load_reported`)."""
    where = f"{path}: entry {i}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a mapping with {', '.join(REPORTED_FIELDS)}")
    where += f" ({item.get('name')!r})" if item.get("name") else ""
    unknown = sorted(set(map(str, item)) - set(REPORTED_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (fields: "
                          f"{', '.join(REPORTED_FIELDS)})")
    for key in ("name", "model", "source", "table", "setting"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ConfigError(f"{where}: field {key!r} is required (text: " + {
                "name": "the agent", "model": "the model", "source": "the paper's URL",
                "table": "the table or figure", "setting": "lengths, split, metric, judge"}[key]
                + ")")
    unit = item.get("unit", "fraction")
    if unit not in ("fraction", "percent"):
        raise ConfigError(f"{where}: field 'unit' is {unit!r}; use fraction or percent")

    def value(v: Any, field: str) -> float | None:
        if v is None:
            return None
        top = 100.0 if unit == "percent" else 1.0
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= top:
            raise ConfigError(f"{where}: field {field!r} is {v!r}; a number in [0, {top:g}] "
                              f"(unit {unit}) or null")
        return float(v) / top

    def mapping(field: str) -> dict:
        got = item.get(field, {})
        if not isinstance(got, dict):
            raise ConfigError(f"{where}: field {field!r} must be a mapping")
        return got

    if "scores" not in item:
        raise ConfigError(f"{where}: field 'scores' is required ({{x: value}}, null where none)")
    columns = {_x_key(x) for x in board.x_values}
    scores = {}
    for k, v in mapping("scores").items():
        if _x_key(k) not in columns:
            raise ConfigError(f"{where}: field 'scores': x {_x_key(k)!r} is not a column of the "
                              f"board ({board.x_values})")
        scores[_x_key(k)] = value(v, f"scores.{k}")
    metrics, by_category = mapping("metrics"), mapping("by_category")
    if (metrics or by_category) and board.level != "question":
        raise ConfigError(f"{where}: fields 'metrics' and 'by_category' are for question-level "
                          "boards only")
    # any LoCoMo scorer the source reports is kept (the table shows the board's columns)
    known = tuple(dict.fromkeys((*board.metrics, *QUESTION_METRICS, *board.claimed_metrics)))
    overall = {}
    for m, v in metrics.items():
        if m not in known:
            raise ConfigError(f"{where}: field 'metrics': {m!r} is not a metric of the board "
                              f"({', '.join(known)})")
        overall[m] = value(v, f"metrics.{m}")
    per_cat: dict[str, dict[str, float | None]] = {}
    for c, values in by_category.items():
        if c not in board.categories:
            raise ConfigError(f"{where}: field 'by_category': {c!r} is not a category of the "
                              f"board ({', '.join(board.categories)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: field 'by_category.{c}' must be a mapping "
                              "{metric: value}")
        for m, v in values.items():
            if m not in known:
                raise ConfigError(f"{where}: field 'by_category.{c}': {m!r} is not a metric of "
                                  f"the board ({', '.join(known)})")
        per_cat[c] = {m: value(v, f"by_category.{c}.{m}") for m, v in values.items()}
    extra = () if board.level != "question" else (
        *(overall.get(m) for m in board.shown_metrics),
        *(per_cat.get(c, {}).get(board.metric) for c in board.categories),
        *(overall.get(m) for m in board.claimed_metrics))
    return Reported(item["name"].strip(), item["model"].strip(), item["source"].strip(), scores,
                    value(item.get("average"), "average"), str(item.get("note") or ""),
                    item["table"].strip(), item["setting"].strip(), extra)


def _pct(value: float | None, digits: int = 1) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        f"{100 * value:.{digits}f}"


def reported_columns(board: Board) -> list[str]:
    """The reported table's headers: no rank, no recipe; each number as the source prints it."""
    return ["name", "model", *(_x_key(x) for x in board.x_values), "average",
            *(h.replace(" (claimed)", " (reported)") for h in extra_columns(board)), "source",
            "setting"]


def _reported_cells(board: Board, e: Reported) -> list[str | float | None]:
    """One reported entry's cells: texts, then numbers (fractions), then texts."""
    xs = [_x_key(x) for x in board.x_values]
    return [e.name, e.model, *(e.by_x.get(x) for x in xs), e.average, *e.extra,
            f"{e.source}, {e.table}", e.setting + (f" Note: {e.note}" if e.note else "")]


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
        rhead = reported_columns(board)
        lines += [("Numbers as the source prints them (%, two decimals); each row names its "
                   "source, table and setting. None of them is recomputed here."), "",
                  "| " + " | ".join(rhead) + " |", "|" + "---|" * len(rhead)]
        for e in reported:
            cells = [_pct(c, 2) if c is None or isinstance(c, float) else _md(c)
                     for c in _reported_cells(board, e)]
            lines.append("| " + " | ".join(cells) + " |")
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
                   "<p>Numbers as the source prints them (%); not sortable, never ranked.</p>"
                   "<table id='reported'><thead><tr>"
                   + "".join(f"<th>{esc(h)}</th>" for h in reported_columns(board))
                   + "</tr></thead><tbody>")
        for e in reported:
            out.append("<tr>" + "".join(
                f"<td>{_pct(c, 2)}</td>" if c is None or isinstance(c, float)
                else f"<td class='t'>{esc(c)}</td>" for c in _reported_cells(board, e))
                + "</tr>")
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
