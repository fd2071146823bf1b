"""Shared helpers of the leaderboard tests: a tiny board and `memgym eval` runs on it."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from memgym.cli import main

REPO = Path(__file__).parents[2]
TINY_BOARD = """\
id: tiny
title: Tiny synthetic board
description: two splits of the synthetic task, 4 tasks each (tests only)
schema_version: 1
metric: accuracy
x_label: split
x_scale: categorical
episodes: 4
avg_k: [1, 2]
memgym_version: ">=0.1.0"
free_env_kwargs: {answer_format: [boxed, plain]}
common_env_kwargs: {chunk_tokens: 32, memory_tokens: 48, filler_sentences: 4}
settings:
  - {name: a, x: a, env_id: MemAgent-Synthetic-v0, env_kwargs: {seed: 11}}
  - {name: b, x: b, env_id: MemAgent-Synthetic-v0, env_kwargs: {seed: 12, num_updates: 2}}
ranking: {by: average, order: descending}
"""
SETTING_KWARGS = {"a": ["seed=11"], "b": ["seed=12", "num_updates=2"]}


def run_eval(out: Path, setting: str, recipe: str = "agents/scripted_oracle.yaml",
             extra: list[str] | None = None, avg_k: int = 1) -> None:
    """`memgym eval` of `recipe` on one tiny-board setting into `out` (run from the repo root)."""
    kwargs = ["chunk_tokens=32", "memory_tokens=48", "filler_sentences=4",
              *SETTING_KWARGS[setting], *(extra or [])]
    code = main(["eval", "--env", "MemAgent-Synthetic-v0", "--env-kwargs", *kwargs,
                 "--agent", recipe, "--episodes", "4", "--avg-k", str(avg_k),
                 "--out", str(out), "--no-progress"])
    assert code == 0


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""Debian's headless browser, when installed (the HTML tests skip without it)."""


def dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran, from headless Chromium."""
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--no-first-run", "--dump-dom", url],
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout


class Tables(HTMLParser):
    """Every table with an id: its attributes, header cells and body rows (cell texts)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, dict] = {}
        self._id: str | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id"):
            self._id = a["id"]
            self.tables[self._id] = {"attrs": a, "head": [], "rows": []}
        elif self._id and tag == "tr":
            self.tables[self._id]["rows"].append([])
        elif self._id and tag in ("td", "th"):
            t = self.tables[self._id]
            self._cell = t["head"] if tag == "th" else t["rows"][-1]
            self._cell.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            if self._id:
                self.tables[self._id]["rows"] = [r for r in self.tables[self._id]["rows"] if r]
            self._id = None
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[-1] += data
