"""Question-level boards (the dialogue boards): several recomputed metrics, per-category scores,
claimed-only judge, every rejection path, and the extra columns in the rendered table."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from leaderboard_helpers import CHROMIUM, REPO, Tables, dump_dom

from memgym.cli import main
from memgym.errors import ConfigError
from memgym.leaderboard.board import load_board
from memgym.leaderboard.render import board_rows, extra_columns, render_html, render_markdown
from memgym.leaderboard.submit import QUESTION_RECORD_FIELDS, QUESTION_ROW_FIELDS, make_submission
from memgym.leaderboard.verify import verify_submission

DIALOGUE_BOARD = """\
id: dia
title: Tiny dialogue board
description: two synthetic dialogues (tests only)
schema_version: 1
level: question
metric: f1
shown_metrics: [bleu1, em]
categories: [single-hop, multi-hop, temporal]
claimed_metrics: [judge]
x_label: split
episodes: 2
avg_k: [1]
memgym_version: ">=0.1.0"
settings:
  - {name: test, x: test, env_id: MemoryBank-Synthetic-v0, env_kwargs: {num_conversations: 2}}
ranking: {by: average, order: descending}
"""


@pytest.fixture(scope="module")
def bank_oracle_run(tmp_path_factory) -> Path:
    """A `memgym eval` run of the bank oracle on the tiny dialogue board's setting."""
    out = tmp_path_factory.mktemp("dialogue") / "test"
    import os

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert main(["eval", "--env", "MemoryBank-Synthetic-v0", "--env-kwargs",
                     "num_conversations=2", "--agent", "agents/bank_oracle.yaml", "--episodes",
                     "2", "--out", str(out), "--no-progress"]) == 0
    finally:
        os.chdir(cwd)
    return out


@pytest.fixture
def dialogue_submission(tmp_path, bank_oracle_run) -> Path:
    board = tmp_path / "repo" / "leaderboards" / "dia"
    board.mkdir(parents=True)
    (board / "board.yaml").write_text(DIALOGUE_BOARD, encoding="utf-8")
    (tmp_path / "repo" / "agents").mkdir()
    shutil.copy(REPO / "agents" / "bank_oracle.yaml", tmp_path / "repo" / "agents")
    target, verdict = make_submission(bank_oracle_run, board, name="oracle", model="none",
                                      out=board / "submissions", hardware="test",
                                      date="2025-01-01", command="pytest")
    assert verdict.ok, verdict.problems
    return target


def _verify(folder: Path):
    board = load_board(folder.parents[1])
    return verify_submission(board, folder, repo_root=folder.parents[3])


def _rows(folder: Path) -> list[dict]:
    path = folder / "test" / "predictions.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_rows(folder: Path, rows: list[dict]) -> None:
    path = folder / "test" / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _meta(folder: Path) -> dict:
    return json.loads((folder / "submission.json").read_text(encoding="utf-8"))


def _write_meta(folder: Path, meta: dict) -> None:
    (folder / "submission.json").write_text(json.dumps(meta), encoding="utf-8")


def _fields(verdict) -> list[str]:
    return [f"{p.file}:{p.field}" for p in verdict.problems]


def test_a_question_board_recomputes_every_metric_and_category(dialogue_submission):
    verdict = _verify(dialogue_submission)
    assert verdict.ok and verdict.complete
    assert set(verdict.metrics) == {"f1", "bleu1", "em"}
    assert verdict.metrics["f1"] == pytest.approx(1.0)  # the bank oracle solves the task
    assert set(verdict.by_category) == {"single-hop", "multi-hop", "temporal"}
    assert verdict.scores["test"] == verdict.average == verdict.metrics["f1"]
    meta = _meta(dialogue_submission)
    assert meta["scores"]["by_category"]["temporal"]["em"] == verdict.by_category["temporal"]["em"]


def test_a_question_board_submission_keeps_no_dataset_text(dialogue_submission):
    for row in _rows(dialogue_submission):
        assert set(row) <= set(QUESTION_ROW_FIELDS)
        for record in row["questions"]:
            assert set(record) <= set(QUESTION_RECORD_FIELDS)
            assert "golds" not in record and "question" not in record


def test_a_claimed_overall_metric_that_disagrees_is_rejected(dialogue_submission):
    meta = _meta(dialogue_submission)
    meta["scores"]["metrics"]["bleu1"] = 0.5
    _write_meta(dialogue_submission, meta)
    assert "oracle/submission.json:scores.metrics.bleu1" in _fields(_verify(dialogue_submission))


def test_a_claimed_category_score_that_disagrees_is_rejected(dialogue_submission):
    meta = _meta(dialogue_submission)
    meta["scores"]["by_category"]["multi-hop"]["em"] = 0.25
    _write_meta(dialogue_submission, meta)
    fields = _fields(_verify(dialogue_submission))
    assert "oracle/submission.json:scores.by_category.multi-hop.em" in fields


def test_a_claimed_category_the_board_does_not_have_is_rejected(dialogue_submission):
    meta = _meta(dialogue_submission)
    meta["scores"]["by_category"]["adversarial"] = {"f1": 1.0}
    _write_meta(dialogue_submission, meta)
    fields = _fields(_verify(dialogue_submission))
    assert "oracle/submission.json:scores.by_category.adversarial" in fields


def test_a_question_score_that_disagrees_with_the_recorded_answer_is_rejected(
        dialogue_submission):
    rows = _rows(dialogue_submission)
    rows[0]["questions"][0]["prediction"] = "something else entirely"
    _write_rows(dialogue_submission, rows)
    verdict = _verify(dialogue_submission)
    assert any(f.endswith("line 1: questions[0].f1") for f in _fields(verdict))
    assert not verdict.ok


def test_an_episode_mean_that_disagrees_is_rejected(dialogue_submission):
    rows = _rows(dialogue_submission)
    rows[1]["reward_components"]["em"] = 0.0
    _write_rows(dialogue_submission, rows)
    assert any(f.endswith("line 2: reward_components.em")
               for f in _fields(_verify(dialogue_submission)))


def test_a_question_id_not_in_the_boards_split_is_rejected(dialogue_submission):
    rows = _rows(dialogue_submission)
    rows[0]["questions"][0]["question_id"] = "conv-26:q0"
    _write_rows(dialogue_submission, rows)
    verdict = _verify(dialogue_submission)
    reasons = [p.reason for p in verdict.problems if p.field.endswith("questions[0].question_id")]
    assert reasons and "not a question of the board's split" in reasons[0]


def test_a_missing_question_is_rejected(dialogue_submission):
    rows = _rows(dialogue_submission)
    dropped = rows[0]["questions"].pop()
    _write_rows(dialogue_submission, rows)
    verdict = _verify(dialogue_submission)
    reasons = [p.reason for p in verdict.problems if p.field == "line 1: questions"]
    assert reasons and dropped["question_id"] in reasons[0]


def test_a_question_answered_twice_is_rejected(dialogue_submission):
    rows = _rows(dialogue_submission)
    rows[0]["questions"].append(dict(rows[0]["questions"][0]))
    _write_rows(dialogue_submission, rows)
    assert any("answered twice" in p.reason for p in _verify(dialogue_submission).problems)


def test_a_category_or_gold_that_is_not_the_boards_is_rejected(dialogue_submission):
    rows = _rows(dialogue_submission)
    rows[0]["questions"][0]["category"] = "open-domain"
    rows[0]["questions"][1]["golds"] = ["my own gold"]
    _write_rows(dialogue_submission, rows)
    fields = _fields(_verify(dialogue_submission))
    assert any(f.endswith("questions[0].category") for f in fields)
    assert any(f.endswith("questions[1].golds") for f in fields)


def test_a_missing_episode_row_is_rejected(dialogue_submission):
    _write_rows(dialogue_submission, _rows(dialogue_submission)[:1])
    verdict = _verify(dialogue_submission)
    assert any("rows missing: task 1 attempt 0" in p.reason for p in verdict.problems)


def test_a_claimed_judge_is_kept_unverified_and_bounded(dialogue_submission):
    meta = _meta(dialogue_submission)
    meta["scores"]["claimed"] = {"judge": 0.75}
    _write_meta(dialogue_submission, meta)
    verdict = _verify(dialogue_submission)
    assert verdict.ok and verdict.claimed == {"judge": 0.75}
    meta["scores"]["claimed"] = {"judge": 7, "accuracy": 0.5}
    _write_meta(dialogue_submission, meta)
    fields = _fields(_verify(dialogue_submission))
    assert "oracle/submission.json:scores.claimed.judge" in fields
    assert "oracle/submission.json:scores.claimed.accuracy" in fields


def test_render_shows_the_extra_metric_category_and_claimed_columns(dialogue_submission):
    board = load_board(dialogue_submission.parents[1])
    meta = _meta(dialogue_submission)
    meta["scores"]["claimed"] = {"judge": 0.5}
    _write_meta(dialogue_submission, meta)
    rows = board_rows(board, [_verify(dialogue_submission)])
    columns = extra_columns(board)
    assert columns == ["bleu1", "em", "f1 single-hop", "f1 multi-hop", "f1 temporal",
                       "judge (claimed)"]  # the oracle reads the gold: a reference line
    table = render_markdown(board, rows, [])
    header = next(line for line in table.splitlines() if line.startswith("| rank"))
    assert all(c in header for c in columns)
    line = next(line for line in table.splitlines() if line.startswith("| ref |"))
    assert line.count("100.0") >= 6 and "| 50.0 |" in line
    assert "unverified, never ranked" in table
    page = render_html(board, rows, [])
    assert "<th>judge (claimed)</th>" in page and "<th>f1 temporal</th>" in page


@pytest.mark.parametrize("change, message", [
    ({"shown_metrics": ["bleu1"]}, "needs `level: question`"),
    ({"level": "question", "metric": "accuracy"}, "cannot be recomputed per question"),
    ({"level": "question", "metric": "f1", "claimed_metrics": ["em"]}, "is recomputed"),
    ({"level": "question", "metric": "f1", "shown_metrics": ["f1"]}, "repeats the ranked"),
    ({"level": "turn"}, "level 'turn'"),
])
def test_a_bad_question_board_definition_is_refused(tmp_path, change, message):
    import yaml

    raw = yaml.safe_load(DIALOGUE_BOARD)
    raw.pop("shown_metrics"), raw.pop("categories"), raw.pop("claimed_metrics")
    raw.pop("level")
    raw.update(change)
    (tmp_path / "board.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_board(tmp_path)


def test_the_dialogue_board_files_load_with_their_protocols():
    locomo = load_board(REPO / "leaderboards" / "locomo")
    assert locomo.metrics == ("f1", "mem0_f1", "bleu1", "em") and locomo.claimed_metrics == ("judge",)
    assert locomo.category_metrics == ("f1", "mem0_f1")  # both F1 scales, each its own column
    assert locomo.categories == ("single-hop", "multi-hop", "open-domain", "temporal")
    assert locomo.settings[0].env_kwargs["split"] == "test" and locomo.episodes == 8
    longmemeval = load_board(REPO / "leaderboards" / "longmemeval")
    assert longmemeval.metric == "em" and len(longmemeval.categories) == 6


def test_a_dialogue_board_without_its_data_file_is_unverifiable(tmp_path, monkeypatch,
                                                                dialogue_submission):
    """LongMemEval's file is not in the repository: verify says unverifiable, rejects nothing."""
    board_dir = tmp_path / "lme"
    board_dir.mkdir()
    shutil.copy(REPO / "leaderboards" / "longmemeval" / "board.yaml", board_dir)
    monkeypatch.setenv("MEMGYM_LONGMEMEVAL_DIR", str(tmp_path / "absent"))
    board = load_board(board_dir)
    folder = board_dir / "submissions" / "x"
    shutil.copytree(dialogue_submission, folder)
    shutil.move(folder / "test", folder / "s")
    meta = _meta(folder)
    meta["board"] = "longmemeval"
    _write_meta(folder, meta)
    verdict = verify_submission(board, folder)
    assert verdict.unverifiable and "does not exist" in verdict.unverifiable
    assert not verdict.ok


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12)
_RECORD_KEYS = st.sampled_from(["question_id", "category", "prediction", "f1", "em", "bleu1",
                                "judge", "golds"]) | st.text(max_size=8)
_SCORE_KEYS = st.sampled_from(["metrics", "by_category", "claimed", "settings", "average"])


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=st.sampled_from(["record", "row", "scores"]), key=_RECORD_KEYS | _SCORE_KEYS,
       value=_JSON)
def test_any_json_value_in_a_question_record_or_claim_never_crashes_verify(
        dialogue_submission, where, key, value):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "repo" / "leaderboards" / "dia" / "submissions" / "oracle"
        shutil.copytree(dialogue_submission.parents[1], folder.parents[1])
        if where == "scores":
            meta = _meta(folder)
            meta["scores"][key] = value
            _write_meta(folder, meta)
        else:
            rows = _rows(folder)
            (rows[0]["questions"][0] if where == "record" else rows[0])[key] = value
            _write_rows(folder, rows)
        verdict = verify_submission(load_board(folder.parents[1]), folder)
        assert all(isinstance(str(p), str) for p in verdict.problems)


def test_cli_verify_exits_3_for_the_committed_locomo_entry_without_the_data(
        tmp_path, monkeypatch, capsys):
    board = tmp_path / "leaderboards" / "locomo"
    shutil.copytree(REPO / "leaderboards" / "locomo", board)
    monkeypatch.setenv("MEMGYM_LOCOMO_DIR", str(tmp_path / "no-data-here"))
    assert main(["leaderboard", "verify", str(board)]) == 3  # not verified: CI must see it
    err = capsys.readouterr().err
    assert "unverifiable here" in err and "locomo10.json" in err and "0 rejected" in err
    assert "memgym data get locomo" in err


def _real_locomo() -> Path | None:
    """The real locomo10.json: $MEMGYM_LOCOMO_DIR, memgym's data cache, or the project's data
    folder beside a main checkout or a worktree."""
    import os

    from memgym.data.download import data_dir

    folders = [os.environ.get("MEMGYM_LOCOMO_DIR", ""), str(data_dir()),
               REPO / ".." / "shared" / "data", REPO / ".." / ".." / "shared" / "data"]
    return next((Path(f) / "locomo10.json" for f in folders
                 if f and (Path(f) / "locomo10.json").is_file()), None)


_LOCOMO = _real_locomo()


@pytest.mark.slow
@pytest.mark.skipif(_LOCOMO is None, reason="the real locomo10.json is absent: "
                    "`memgym data get locomo` (or set MEMGYM_LOCOMO_DIR)")
def test_a_train_split_question_in_a_locomo_test_entry_is_rejected(tmp_path, monkeypatch):
    """conv-26 is Memory-R1's train conversation: its questions are not on the test board."""
    board_dir = tmp_path / "repo" / "leaderboards" / "locomo"
    shutil.copytree(REPO / "leaderboards" / "locomo", board_dir)
    shutil.copytree(REPO / "agents", tmp_path / "repo" / "agents")
    monkeypatch.setenv("MEMGYM_LOCOMO_DIR", str(_LOCOMO.parent.resolve()))
    folder = board_dir / "submissions" / "memgym-oracle-embedded"
    assert _verify(folder).ok
    rows = _rows(folder)
    rows[2]["questions"][3]["question_id"] = "conv-26:q0"
    _write_rows(folder, rows)
    verdict = _verify(folder)
    assert [p.field for p in verdict.problems][:2] == ["line 3: questions[3].question_id",
                                                       "line 3: questions"]


DIALOGUE_REPORTED = """\
- {name: Paper GRPO, model: P-8B, source: 'https://arxiv.org/abs/0000.0001', table: Table 1,
   setting: 'test split, F1/B1/J', unit: percent, scores: {test: 45.02},
   metrics: {f1: 45.02, bleu1: 37.51, judge: 62.74},
   by_category: {single-hop: {f1: 35.73, judge: 59.83}, temporal: {f1: 49.86}}}
- {name: Paper RAG, model: P-8B, source: 'https://arxiv.org/abs/0000.0001', table: Table 1,
   setting: 'test split, F1/B1/J', unit: percent, scores: {test: 11.41}, metrics: {judge: 99.0}}
"""


def test_reported_entries_fill_a_question_boards_metric_category_and_judge_columns(
        dialogue_submission):
    from memgym.leaderboard.render import load_reported, reported_columns

    (dialogue_submission.parents[1] / "reported.yaml").write_text(DIALOGUE_REPORTED)
    board = load_board(dialogue_submission.parents[1])
    grpo, rag = load_reported(board)
    # bleu1, em, f1 single-hop, f1 multi-hop, f1 temporal, judge
    assert grpo.extra == pytest.approx((0.3751, None, 0.3573, None, 0.4986, 0.6274), nan_ok=True)
    assert reported_columns(board)[-3] == "judge (reported)"
    table = render_markdown(board, board_rows(board, [_verify(dialogue_submission)]),
                            [grpo, rag])
    _, _, reported = table.partition("### Reported")
    assert ("| Paper GRPO | P-8B | 45.02 |  | 37.51 |  | 35.73 |  | 49.86 | 62.74 | "
            "https://arxiv.org/abs/0000.0001, Table 1 | test split, F1/B1/J |") in reported
    assert "| 1 |" not in reported  # never ranked


@pytest.mark.parametrize(("entry", "message"), [
    ("metrics: {rouge: 1}", "field 'metrics': 'rouge' is not a metric of the board"),
    ("by_category: {adversarial: {f1: 1}}", "'adversarial' is not a category of the board"),
    ("by_category: {temporal: 0.5}", "field 'by_category.temporal' must be a mapping"),
    ("by_category: {temporal: {f1: 2}}", "field 'by_category.temporal.f1' is 2"),
])
def test_a_bad_reported_metric_or_category_names_the_field(dialogue_submission, entry, message):
    from memgym.leaderboard.render import load_reported

    (dialogue_submission.parents[1] / "reported.yaml").write_text(
        f"- {{name: p, model: m, source: s, table: t, setting: s, scores: {{}}, {entry}}}\n")
    with pytest.raises(ConfigError, match=message):
        load_reported(load_board(dialogue_submission.parents[1]))


def test_every_committed_reported_yaml_loads_and_cites_its_table():
    from memgym.leaderboard.render import load_reported

    seen = 0
    for path in sorted((REPO / "leaderboards").glob("*/reported.yaml")):
        for entry in load_reported(load_board(path.parent)):
            seen += 1
            assert entry.source.startswith("https://") and entry.table and entry.setting
    assert seen > 0


@pytest.mark.slow  # three Chromium launches, ~6 s on 2 shared cores
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(apt-get install chromium)")
def test_a_question_board_page_has_its_columns_rows_and_a_separate_reported_table(
        dialogue_submission, tmp_path):
    """Headless Chromium on a question-level board's page: metric, category and claimed judge
    columns, every verified row, sorting on a metric column, and the reported table untouched."""
    from dataclasses import replace

    from memgym.leaderboard.render import load_reported, reported_columns

    board_dir = dialogue_submission.parents[1]
    (board_dir / "reported.yaml").write_text(DIALOGUE_REPORTED)
    board = load_board(board_dir)
    (row,) = board_rows(board, [_verify(dialogue_submission)])
    # two more rows with other bleu1 values so the sort has something to order
    rows = [row, replace(row, rank=2, name="low", extra=(0.1, *row.extra[1:])),
            replace(row, rank=3, name="mid", extra=(0.6, *row.extra[1:]))]
    reported = load_reported(board)
    page = tmp_path / "index.html"
    page.write_text(render_html(board, rows, reported))
    head = ["rank", "name", "model", "recipe", "test", "average", *extra_columns(board),
            "settings", "date"]
    bleu1 = head.index("bleu1")
    loaded = Tables(dump_dom(page.as_uri())).tables
    assert loaded["board"]["head"] == head
    assert {"bleu1", "em", "f1 single-hop", "f1 temporal", "judge (claimed)"} <= set(head)
    assert [r[1] for r in loaded["board"]["rows"]] == ["oracle", "low", "mid"]  # every row
    assert loaded["reported"]["head"] == reported_columns(board) and "rank" not in \
        loaded["reported"]["head"]
    for direction, order in (("asc", ["low", "mid", "oracle"]), ("desc", ["oracle", "mid", "low"])):
        tables = Tables(dump_dom(f"{page.as_uri()}#sort={bleu1}&dir={direction}")).tables
        assert tables["board"]["attrs"].get("data-sorted") == f"{bleu1}:{direction}"
        assert [r[1] for r in tables["board"]["rows"]] == order
        # the reported table is neither sorted nor ranked: file order, untouched by the script
        assert [r[0] for r in tables["reported"]["rows"]] == ["Paper GRPO", "Paper RAG"]
        assert "data-sorted" not in tables["reported"]["attrs"]


@pytest.mark.slow  # one Chromium launch
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                             "(apt-get install chromium)")
def test_the_committed_locomo_page_loads_with_its_columns_entries_and_reported_table():
    from memgym.leaderboard.render import load_reported, reported_columns

    board = load_board(REPO / "leaderboards" / "locomo")
    tables = Tables(dump_dom((board.folder / "index.html").as_uri())).tables
    head = tables["board"]["head"]
    assert head[head.index("average") + 1:-2] == extra_columns(board)
    names = sorted(json.loads(p.read_text())["name"]
                   for p in (board.folder / "submissions").glob("*/submission.json"))
    assert sorted(r[1] for r in tables["board"]["rows"]) == names
    assert tables["reported"]["head"] == reported_columns(board)
    assert [r[0] for r in tables["reported"]["rows"]] == [e.name for e in load_reported(board)]
