"""render: the README table, the static sortable HTML page (driven in headless Chromium) and the plot."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from leaderboard_helpers import CHROMIUM
from leaderboard_helpers import dump_dom as _dump_dom

from memgym.leaderboard.board import load_board
from memgym.leaderboard.render import (
    Reported,
    Row,
    board_rows,
    load_reported,
    render_board,
    render_html,
    render_markdown,
)


class _Page(HTMLParser):
    """Collects the board table's rows (cell texts) and every src/href attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self.scripts_with_src = 0
        self.attrs: dict[str, str] = {}
        self._table = self._cell = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "script" and "src" in a:
            self.scripts_with_src += 1
        if tag == "table" and a.get("id") == "board":
            self._table = True
            self.attrs = {k: v or "" for k, v in attrs}
        elif tag == "tr" and self._table:
            self.rows.append([])
        elif tag == "td" and self._table:
            self._cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = False
        if tag == "td":
            self._cell = False

    def handle_data(self, data):
        if self._cell and self._table:
            self.rows[-1][-1] += data


def _rows(board, names_scores):
    return [Row(i + 1, n, "m", "agents/x.yaml", {str(x): s for x in board.x_values}, s,
                "2025-01-01", "", "cmd", "2/2") for i, (n, s) in enumerate(names_scores)]


def test_render_board_writes_readme_table_page_and_plot(submission):
    files, _verdicts = render_board(submission.parents[1])
    readme, page, plot = files
    text = readme.read_text()
    # the scripted oracle is a reference line (rank "ref"), its intervals Wilson's over 4 tasks
    assert "| ref | [oracle](https://example.org/x) | none | `agents/scripted_oracle.yaml` | " \
           "100.0 [51.0, 100.0] | 100.0 [51.0, 100.0] | 100.0 | 2/2 | 2025-01-01 |" in text
    parsed = _Page()
    parsed.feed(page.read_text())
    assert [r[1] for r in parsed.rows if r] == ["oracle"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_is_idempotent_and_keeps_the_rest_of_the_readme(submission):
    board_dir = submission.parents[1]
    (board_dir / "README.md").write_text("# Tiny\n\nintro text\n")
    render_board(board_dir)
    first = (board_dir / "README.md").read_text()
    render_board(board_dir)
    assert (board_dir / "README.md").read_text() == first and first.startswith("# Tiny\n\nintro")


def test_rejected_submission_is_left_out_of_every_output(submission):
    bad = submission.parent / "cheater"
    shutil.copytree(submission, bad)
    meta = json.loads((bad / "submission.json").read_text())
    meta["name"], meta["scores"]["average"] = "cheater", 0.2
    (bad / "submission.json").write_text(json.dumps(meta))
    files, verdicts = render_board(submission.parents[1])
    assert {v.folder.name: v.ok for v in verdicts} == {"cheater": False, "oracle": True}
    assert "cheater" not in files[0].read_text() and "cheater" not in files[1].read_text()


REPORTED_ENTRY = ("- {name: Paper agent, model: X-7B, source: 'https://arxiv.org/abs/0000.0000', "
                  "table: Table 1, setting: 'tiny setting, accuracy', scores: {a: 0.5, b: 0.7}, "
                  "average: 0.6}\n")


def test_reported_numbers_are_a_separate_unranked_table(tiny_board):
    (tiny_board / "reported.yaml").write_text(REPORTED_ENTRY)
    board = load_board(tiny_board)
    reported = load_reported(board)
    md = render_markdown(board, [], reported)
    verified, _, rest = md.partition("### Reported")
    assert "Paper agent" not in verified
    assert ("| Paper agent | X-7B | 50.00 | 70.00 | 60.00 | https://arxiv.org/abs/0000.0000, "
            "Table 1 | tiny setting, accuracy |") in rest


def test_reported_percent_values_are_read_as_printed(tiny_board):
    (tiny_board / "reported.yaml").write_text(
        "- {name: p, model: m, source: u, table: T2, setting: s, unit: percent,"
        " scores: {a: 83.59, b: null}, note: 'N/A in the paper'}\n")
    (entry,) = load_reported(load_board(tiny_board))
    assert entry.by_x == {"a": pytest.approx(0.8359), "b": None} and entry.average is None
    assert "| p | m | 83.59 |  |  | u, T2 | s Note: N/A in the paper |" in render_markdown(
        load_board(tiny_board), [], [entry])


@pytest.mark.parametrize(("text", "message"), [
    ("- {name: p, source: s, table: t, setting: s, scores: {zz: 0.5}}\n",
     "field 'model' is required"),
    ("- {name: p, model: m, source: s, table: t, setting: s, scores: {zz: 0.5}}\n",
     "field 'scores': x 'zz' is not a column"),
    ("- {name: p, model: m, source: s, setting: s, scores: {a: 0.5}}\n",
     "entry 0 \\('p'\\): field 'table' is required"),
    ("- {name: p, model: m, source: s, table: t, setting: s}\n", "field 'scores' is required"),
    ("- {name: p, model: m, source: s, table: t, setting: s, scores: {a: 57.3}}\n",
     "field 'scores.a' is 57.3; a number in \\[0, 1\\] \\(unit fraction\\)"),
    ("- {name: p, model: m, source: s, table: t, setting: s, scores: {a: high}}\n",
     "field 'scores.a' is 'high'"),
    ("- {name: p, model: m, source: s, table: t, setting: s, scores: {a: 1}, unit: pct}\n",
     "field 'unit' is 'pct'"),
    ("- {name: p, model: m, source: s, table: t, setting: s, scores: {a: 1}, judge: 9}\n",
     "unknown field 'judge'"),
    ("- {name: p, model: m, source: s, table: t, setting: s, scores: {a: 1}, metrics: {f1: 1}}\n",
     "'metrics' and 'by_category' are for question-level boards only"),
    ("- just a string\n", "entry 0: a mapping"),
    ("{name: p}\n", "a list of entries"),
    ("- {name: [unclosed\n", "not valid YAML"),
])
def test_malformed_reported_yaml_names_the_file_and_field(tiny_board, text, message):
    from memgym.errors import ConfigError

    (tiny_board / "reported.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        load_reported(load_board(tiny_board))
    assert str(tiny_board / "reported.yaml") in str(err.value)


def test_partial_entries_are_listed_after_ranked_ones_without_a_rank(tiny_board):
    from memgym.leaderboard.verify import Verdict

    board = load_board(tiny_board)
    full = Verdict(tiny_board / "f", scores={"a": 0.2, "b": 0.2}, complete=True,
                   metadata={"name": "full"})
    part = Verdict(tiny_board / "p", scores={"a": 0.9}, complete=False, metadata={"name": "part"})
    rows = board_rows(board, [part, full])
    assert [(r.name, r.rank) for r in rows] == [("full", 1), ("part", None)]
    assert rows[1].by_x == {"a": 0.9, "b": None}


def test_html_page_has_no_external_resources(tiny_board):
    board = load_board(tiny_board)
    page = render_html(board, _rows(board, [("x", 0.5)]), [Reported("r", "m", "s", {}, None, "")])
    parsed = _Page()
    parsed.feed(page)
    assert parsed.scripts_with_src == 0
    assert all(not re.match(r"(https?:)?//", link) for link in parsed.links)


@pytest.mark.slow  # four Chromium launches, ~9 s on 2 shared cores
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(apt-get install chromium)")
def test_html_page_loads_and_sorts_in_headless_chromium(tiny_board, tmp_path):
    board = load_board(tiny_board)
    rows = _rows(board, [("best", 0.9), ("mid", 0.5), ("low", 0.1)])
    page = tmp_path / "index.html"
    page.write_text(render_html(board, rows, []))
    average_col = 4 + len(board.x_values)  # rank, name, model, recipe, x..., average
    loaded = _Page()
    loaded.feed(_dump_dom(page.as_uri()))
    assert [r[1] for r in loaded.rows if r] == ["best", "mid", "low"]  # every verified row
    for direction, order in (("asc", ["low", "mid", "best"]), ("desc", ["best", "mid", "low"])):
        parsed = _Page()
        parsed.feed(_dump_dom(f"{page.as_uri()}#sort={average_col}&dir={direction}"))
        assert parsed.attrs.get("data-sorted") == f"{average_col}:{direction}"  # the script ran
        assert [r[1] for r in parsed.rows if r] == order
    by_name = _Page()
    by_name.feed(_dump_dom(f"{page.as_uri()}#sort=1&dir=asc"))
    assert [r[1] for r in by_name.rows if r] == ["best", "low", "mid"]
