"""memgym.progress: a long command's phase lines say how far along it is and about how long is
left, at the reference run's pace and at this run's own pace once a phase has finished."""

from __future__ import annotations

import pytest

from memgym.progress import PhaseClock, format_duration


def _clock(times):
    it = iter(times)
    return lambda: next(it)


def test_durations_read_as_seconds_minutes_or_hours():
    assert [format_duration(s) for s in (0, 42.4, 75.2, 3725)] == \
        ["0 s", "42 s", "1 min 15 s", "1 h 02 min"]


def test_each_phase_line_gives_elapsed_and_both_estimates_of_whats_left():
    lines = []
    clock = PhaseClock([20, 240, 20], lines.append, reference="on 2 idle cores",
                       clock=_clock([0, 0, 40, 520]))
    clock.phase("evaluating ...")
    clock.phase("training ...")
    clock.phase("evaluating again ...")
    assert lines[0] == "[1/3] evaluating ... (elapsed 0 s; about 4 min 40 s left on 2 idle cores)"
    # the first phase took twice its reference: the rest is expected to take twice as long too
    assert lines[1] == ("[2/3] training ... (elapsed 40 s; about 4 min 20 s left on 2 idle cores, "
                        "8 min 40 s at this run's pace so far)")
    assert lines[2].startswith("[3/3] evaluating again ... (elapsed 8 min 40 s; about 20 s left")
    with pytest.raises(ValueError, match="phase 4 of a 3-phase clock"):
        clock.phase("one too many")


def test_annotate_is_a_log_that_only_touches_phase_lines():
    lines = []
    log = PhaseClock([1, 1], lines.append, clock=_clock([0, 0, 1])).annotate
    log("[1/2] loading ...")
    log("  sft step 5: loss 1.2")
    log("[2/2] writing ...")
    assert lines[0].startswith("[1/2] loading ... (elapsed 0 s; about 2 s left")
    assert lines[1] == "  sft step 5: loss 1.2"
    assert lines[2].startswith("[2/2] writing ... (elapsed 1 s;")


def test_a_result_table_prints_unclipped_on_an_80_column_console():
    import io

    from rich.console import Console

    from memgym.progress import print_markdown

    table = ("| Model | In-domain | OOD: longer streams | OOD: updated twice | OOD: two keys |\n"
             "|---|---|---|---|---|\n"
             "| Base (embedded tiny MemAgent) | 36.7 ± 8.2 | 36.7 ± 8.2 | 30.5 ± 7.9 | 3.9 ± 3.6 |\n"
             "| Base-to-oracle gap closed | 75.3% | 77.8% | 69.7% | 10.6% |\n")
    out = io.StringIO()
    print_markdown(table, Console(width=80, file=out))
    lines = out.getvalue().splitlines()
    assert "…" not in out.getvalue()
    assert any("Base-to-oracle gap closed" in line and "10.6%" in line for line in lines)
    assert all(line == line.rstrip() for line in lines)
