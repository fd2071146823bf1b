"""`render`: a board's verified submissions as a README table, a static HTML page and a plot.

Only verified submissions are ranked (complete ones, by the average over settings, in the board's
order); partial ones (some settings) and privileged ones (agents that read the gold, or a task's
hand-written solver: reference lines, rank "ref", dashed in the plot) are listed after them,
unranked. Each setting's cell carries its 95% interval (Wilson's for 0/1 scores), the plot its
bars, and the y axis leaves room above 100% so no marker is clipped. Each entry's "Reproduce"
lines are its per-setting commands (submission.json's `commands`). While any submission cannot
be checked here (the board's data is absent) `render` writes nothing: it never drops an entry. Published numbers from
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
from dataclasses import dataclass, field
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
_DATA_BOARDS = ("locomo", "longmemeval")
"""Boards whose data `memgym data get <board>` fetches (the rest build theirs, or name a file)."""
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
    ci_by_x: dict[str, list[float] | None] = field(default_factory=dict)
    """The 95% interval at each x (Wilson for 0/1 scores, else bootstrap; None where unknown)."""
    reference: str = ""
    """Why the entry is a reference line (a privileged agent), never ranked; "" otherwise."""
    commands: dict[str, str] = field(default_factory=dict)
    """Per setting, the command that reproduces its run (from run.json)."""


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
    return ([*board.shown_metrics]
            + [f"{m} {c}" for c in board.categories for m in board.category_metrics]
            + [f"{m} (claimed)" for m in board.claimed_metrics])


def _extra_values(board: Board, verdict: Verdict) -> tuple[float | None, ...]:
    if board.level != "question":
        return ()
    return (*(verdict.metrics.get(m) for m in board.shown_metrics),
            *(verdict.by_category.get(c, {}).get(m) for c in board.categories
              for m in board.category_metrics),
            *(verdict.claimed.get(m) for m in board.claimed_metrics))


def _ci_by_x(board: Board, verdict: Verdict) -> dict[str, list[float] | None]:
    """The 95% interval at each x that holds one setting (None elsewhere)."""
    out: dict[str, list[float] | None] = {}
    for x in board.x_values:
        names = [s.name for s in board.settings if s.x == x]
        out[_x_key(x)] = verdict.ci95.get(names[0]) if len(names) == 1 else None
    return out


def board_rows(board: Board, verdicts: Sequence[Verdict]) -> list[Row]:
    """The verified verdicts as rows: complete ones ranked by average, then partial ones and
    privileged ones (reference lines: they read the gold), both unranked."""
    ok = [v for v in verdicts if v.ok and v.scores]
    sign = -1 if board.ranking_order == "descending" else 1
    ok.sort(key=lambda v: (not v.complete or bool(v.privileged), sign * (v.average or 0.0),
                           v.metadata.get("name", "")))
    rows, rank = [], 0
    for v in ok:
        meta = v.metadata
        ranked = v.complete and not v.privileged
        rank += ranked
        commands = meta.get("commands") if isinstance(meta.get("commands"), dict) else {}
        rows.append(Row(rank if ranked else None, str(meta.get("name", v.folder.name)),
                        str(meta.get("model", "")), str(meta.get("agent_recipe", "")),
                        _by_x(board, v), v.average, str(meta.get("date", "")),
                        str(meta.get("link", "")), str(meta.get("command", "")),
                        f"{len(v.scores)}/{len(board.settings)}", _extra_values(board, v),
                        _ci_by_x(board, v), v.privileged or "",
                        {str(k): str(c) for k, c in commands.items()}))
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
    _check_reported_fields(item, where)
    unit = item.get("unit", "fraction")
    if unit not in ("fraction", "percent"):
        raise ConfigError(f"{where}: field 'unit' is {unit!r}; use fraction or percent")
    value = _ReportedValue(where, 100.0 if unit == "percent" else 1.0)
    if "scores" not in item:
        raise ConfigError(f"{where}: field 'scores' is required ({{x: value}}, null where none)")
    columns = {_x_key(x) for x in board.x_values}
    scores = {}
    for k, v in _mapping(item, "scores", where).items():
        if _x_key(k) not in columns:
            raise ConfigError(f"{where}: field 'scores': x {_x_key(k)!r} is not a column of the "
                              f"board ({board.x_values})")
        scores[_x_key(k)] = value(v, f"scores.{k}")
    return Reported(item["name"].strip(), item["model"].strip(), item["source"].strip(), scores,
                    value(item.get("average"), "average"), str(item.get("note") or ""),
                    item["table"].strip(), item["setting"].strip(),
                    _reported_extra(board, item, where, value))


_REPORTED_TEXTS = {"name": "the agent", "model": "the model", "source": "the paper's URL",
                   "table": "the table or figure", "setting": "lengths, split, metric, judge"}


def _check_reported_fields(item: dict, where: str) -> None:
    """No unknown field; every text field present and non-empty."""
    unknown = sorted(set(map(str, item)) - set(REPORTED_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (fields: "
                          f"{', '.join(REPORTED_FIELDS)})")
    for key, text in _REPORTED_TEXTS.items():
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ConfigError(f"{where}: field {key!r} is required (text: {text})")


@dataclass(frozen=True)
class _ReportedValue:
    """Reads one reported number (as printed, in [0, top]) into a fraction."""

    where: str
    top: float

    def __call__(self, v: Any, name: str) -> float | None:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= self.top:
            unit = "percent" if self.top == 100 else "fraction"
            raise ConfigError(f"{self.where}: field {name!r} is {v!r}; a number in "
                              f"[0, {self.top:g}] (unit {unit}) or null")
        return float(v) / self.top


def _mapping(item: dict, name: str, where: str) -> dict:
    got = item.get(name, {})
    if not isinstance(got, dict):
        raise ConfigError(f"{where}: field {name!r} must be a mapping")
    return got


def _reported_extra(board: Board, item: dict, where: str, value: _ReportedValue
                    ) -> tuple[float | None, ...]:
    """A question-level board's extra columns from an entry's `metrics` and `by_category`."""
    metrics, by_category = _mapping(item, "metrics", where), _mapping(item, "by_category", where)
    if (metrics or by_category) and board.level != "question":
        raise ConfigError(f"{where}: fields 'metrics' and 'by_category' are for question-level "
                          "boards only")
    # any scorer the source reports is kept (the table shows the board's columns)
    known = tuple(dict.fromkeys((*board.metrics, *QUESTION_METRICS, *board.claimed_metrics)))

    def read(values: dict, at: str) -> dict[str, float | None]:
        for m in values:
            if m not in known:
                raise ConfigError(f"{where}: field '{at}': {m!r} is not a metric of the board "
                                  f"({', '.join(known)})")
        return {m: value(v, f"{at}.{m}") for m, v in values.items()}

    overall = read(metrics, "metrics")
    per_cat: dict[str, dict[str, float | None]] = {}
    for c, values in by_category.items():
        if c not in board.categories:
            raise ConfigError(f"{where}: field 'by_category': {c!r} is not a category of the "
                              f"board ({', '.join(board.categories)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: field 'by_category.{c}' must be a mapping "
                              "{metric: value}")
        per_cat[c] = read(values, f"by_category.{c}")
    if board.level != "question":
        return ()
    return (*(overall.get(m) for m in board.shown_metrics),
            *(per_cat.get(c, {}).get(m) for c in board.categories for m in board.category_metrics),
            *(overall.get(m) for m in board.claimed_metrics))


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
    lines = [_table_note(board) + (_question_note(board) if extra else ""), "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        name = f"[{_md(r.name)}]({r.link})" if r.link else _md(r.name)
        cells = [_rank(r), name, _md(r.model), f"`{_md(r.recipe)}`",
                 *(_pct_ci(r.by_x.get(x), r.ci_by_x.get(x)) for x in xs), _pct(r.average),
                 *(_pct(v) for v in r.extra), r.coverage, r.date]
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append("| " + " | ".join(["-", "(no verified submission yet)"] + [""] *
                                       (len(head) - 2)) + " |")
    lines += _reference_lines(rows) + _reproduce_lines(rows)
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


METRIC_SCALES = {
    "f1": "LoCoMo's official F1 (Porter-stemmed tokens; articles and 'and' dropped)",
    "mem0_f1": "mem0's F1 (sets of tokens, no stemming: the scale of Memory-R1's published F1)",
    "em": "LoCoMo's EM (equal sets of normalised tokens)",
    "bleu1": "mem0's BLEU-1 (nltk, punkt-split tokens)",
}
"""What scale each question-level metric is, named on the board so no one compares two."""


def _table_note(board: Board) -> str:
    return (f"Scores: {board.metric} (%), recomputed from the predictions by "
            f"`memgym leaderboard verify`; columns: {board.x_label}; in brackets the 95% "
            "interval over tasks (Wilson's for 0/1 scores, a bootstrap otherwise). Rank `ref`: "
            "a privileged agent (it reads the gold, or is the task's hand-written solver), a "
            "reference line, never ranked.")


def _rank(row: Row) -> str:
    return str(row.rank) if row.rank else ("ref" if row.reference else "-")


def _pct_ci(value: float | None, ci: Sequence[float] | None) -> str:
    if value is None or not ci:
        return _pct(value)
    return f"{_pct(value)} [{_pct(ci[0])}, {_pct(ci[1])}]"


def _reference_lines(rows: Sequence[Row]) -> list[str]:
    refs = [r for r in rows if r.reference]
    if not refs:
        return []
    return ["", "Reference lines (privileged, not ranked):", "",
            *(f"- **{_md(r.name)}**: {_md(r.reference)}" for r in refs)]


def _reproduce_lines(rows: Sequence[Row]) -> list[str]:
    """Per entry, per setting, the command that reproduces that setting's run."""
    lines: list[str] = []
    for r in rows:
        if r.commands:
            lines += [f"- **{_md(r.name)}**:"]
            lines += [f"  - {_md(k)}: `{c}`" for k, c in r.commands.items()]
        elif r.command:
            lines += [f"- **{_md(r.name)}**: `{r.command}`"]
    return ["", "Reproduce (each setting's run, from its run.json):", "", *lines] if lines else []


def _question_note(board: Board) -> str:
    text = (f" Ranked by {board.metric} over every question (the average); "
            + (f"{', '.join(board.shown_metrics)} recomputed too; " if board.shown_metrics else "")
            + (f"{', '.join(board.category_metrics)} per category "
               f"({', '.join(board.categories)})." if board.categories else ""))
    scales = [f"{m} is {METRIC_SCALES[m]}" for m in board.metrics if m in METRIC_SCALES]
    if scales:
        text += (" Scales: " + "; ".join(scales) + ". A reported number sits in the column of "
                 "its own scale.")
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
           (f"<p>{esc(_table_note(board))}{esc(_question_note(board)) if extra else ''} "
            "Click a header to sort.</p>"),
           "<table id='board'><thead><tr>"
           + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for r in rows:
        name = (f"<a href='{esc(r.link, quote=True)}'>{esc(r.name)}</a>"
                if r.link.startswith(("https://", "http://")) else esc(r.name))
        nums = [*((r.by_x.get(x), r.ci_by_x.get(x)) for x in xs), (r.average, None),
                *((v, None) for v in r.extra)]
        cells = [f"<td data-value='{r.rank or ''}'>{_rank(r)}</td>",
                 f"<td class='t' data-value='{esc(r.name, quote=True)}'>{name}</td>",
                 f"<td class='t'>{esc(r.model)}</td>", f"<td class='t'>{esc(r.recipe)}</td>",
                 *(f"<td data-value='{'' if v is None else repr(float(v))}'>"
                   f"{esc(_pct_ci(v, ci))}</td>" for v, ci in nums),
                 f"<td>{esc(r.coverage)}</td>", f"<td>{esc(r.date)}</td>"]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    out += [f"<p>{esc(line)}</p>" for line in _reference_lines(rows) if line]
    out += _reproduce_html(rows)
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


def _reproduce_html(rows: Sequence[Row]) -> list[str]:
    items = [f"<li><b>{html.escape(r.name)}</b><ul>" + "".join(
        f"<li>{html.escape(k)}: <code>{html.escape(c)}</code></li>"
        for k, c in r.commands.items()) + "</ul></li>" for r in rows if r.commands]
    return ["<h2>Reproduce</h2><ul>" + "".join(items) + "</ul>"] if items else []


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
        _plot_row(ax, r, positions, xs)
    if numeric and board.x_scale == "log":
        ax.set_xscale("log")
    if numeric:
        ax.set_xticks(positions, [str(x) for x in xs], rotation=45 if len(xs) > 6 else 0)
    else:
        ax.set_xticks(positions, [str(x) for x in xs])
    ax.minorticks_off()
    ax.set_xlabel(board.x_label)
    ax.set_ylabel(f"{board.metric} (%)")
    ax.set_ylim(-4, 104)  # room for markers and intervals at 0% and 100% (never clipped)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(board.title)
    ax.grid(alpha=0.3)
    if rows:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def _plot_row(ax: Any, row: Row, positions: Sequence[Any], xs: Sequence[Any]) -> None:
    """One entry's line with its 95% intervals; a reference line dashed and grey."""
    points = [(p, row.by_x.get(_x_key(x)), row.ci_by_x.get(_x_key(x)))
              for p, x in zip(positions, xs)]
    points = [(p, 100 * v, ci) for p, v, ci in points if v is not None]
    if not points:
        return
    px, py = [p for p, _, _ in points], [v for _, v, _ in points]
    low = [v - 100 * ci[0] if ci else 0.0 for _, v, ci in points]
    high = [100 * ci[1] - v if ci else 0.0 for _, v, ci in points]
    style = {"color": "0.45", "linestyle": "--"} if row.reference else {}
    label = f"{row.name} (reference)" if row.reference else row.name
    ax.errorbar(px, py, yerr=[low, high], marker="o", capsize=3, label=label, **style)


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

    Raises:
        ConfigError: some submission cannot be checked here (the board's data is absent);
            nothing is written, so the committed board keeps every entry.
    """
    board, verdicts = verify_board(board_dir)
    unchecked = [v for v in verdicts if v.unverifiable]
    if unchecked:  # rendering now would drop entries that may be perfectly good
        raise ConfigError(
            f"board {board.id}: {len(unchecked)} submission(s) cannot be checked here "
            f"({', '.join(v.folder.name for v in unchecked[:5])}): {unchecked[0].unverifiable}. "
            "Nothing was written; get the board's data first"
            + (f" (`memgym data get {board.id}`)" if board.id in _DATA_BOARDS else "") + ".")
    rows, reported = board_rows(board, verdicts), load_reported(board)
    readme = _write_readme(board, render_markdown(board, rows, reported))
    page = board.folder / HTML_FILE
    page.write_text(render_html(board, rows, reported), encoding="utf-8")
    plot = render_plot(board, rows, board.folder / PLOT_FILE)
    return [readme, page, plot], verdicts
