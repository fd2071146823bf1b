"""Overall progress of a long command made of phases (the quickstarts): each phase's line says
where the whole command is and about how long is left; and its result table, printed unclipped.

Two estimates: one measured run's phase times (the reference, e.g. the idle 2-core run in
bench/README.md), and those scaled by this run's pace so far (a machine that took twice the
reference time for the phases done is assumed to take twice as long for the rest). Phases
scale differently on loaded cores, so both are shown; each phase's own bar (evaluation,
training) shows its own ETA.

    clock = PhaseClock([17.6, 238.3, 23.4, 1.0], log=print, reference="on 2 idle cores")
    clock.phase("evaluating ...")  # [1/4] evaluating ... (elapsed 0 s; about 4 min 40 s left ...)
    log = clock.annotate      # or: a log function that adds the estimate to "[i/n] ..." lines
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

__all__ = ["PhaseClock", "format_duration", "print_markdown"]

_PHASE_LINE = re.compile(r"\[\d+/\d+\] ")


def format_duration(seconds: float) -> str:
    """`75.2` -> "1 min 15 s"; `42` -> "42 s"; `3725` -> "1 h 02 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class PhaseClock:
    """Prints "[i/n] text (elapsed E; about L left)" at the start of each phase.

    Args:
        reference_s: each phase's wall time in a reference run (seconds), in order.
        log: where the lines go (print, or the quickstart's `log`).
        reference: what the reference times are, in words ("on 2 idle cores").
        clock: the time source (seconds; `time.perf_counter` unless a test passes one).
    """

    def __init__(self, reference_s: Sequence[float], log: Callable[[str], object] = print, *,
                 reference: str = "the reference run's pace",
                 clock: Callable[[], float] = time.perf_counter):
        if not reference_s or any(s < 0 for s in reference_s):
            raise ValueError(f"reference_s={list(reference_s)}: need one time >= 0 per phase")
        self.reference_s = list(reference_s)
        self.log = log
        self.reference = reference
        self._clock = clock
        self._start = clock()
        self.done = 0

    def estimate_left(self, elapsed: float) -> tuple[float, float | None]:
        """Seconds left for the phases not yet finished: at the reference run's pace, and at
        this run's pace so far (None before a phase has finished)."""
        ref_done = sum(self.reference_s[:self.done])
        ref_left = sum(self.reference_s[self.done:])
        if ref_done <= 0:
            return ref_left, None
        return ref_left, elapsed / ref_done * ref_left

    def phase(self, text: str) -> str:
        """Start the next phase: log and return its line with the overall estimate."""
        n = len(self.reference_s)
        if self.done >= n:
            raise ValueError(f"phase {self.done + 1} of a {n}-phase clock")
        elapsed = self._clock() - self._start
        at_reference, at_pace = self.estimate_left(elapsed)
        left = f"about {format_duration(at_reference)} left {self.reference}"
        if at_pace is not None:
            left += f", {format_duration(at_pace)} at this run's pace so far"
        self.done += 1
        line = f"[{self.done}/{n}] {text} (elapsed {format_duration(elapsed)}; {left})"
        self.log(line)
        return line

    def annotate(self, line: str) -> object:
        """A drop-in `log`: a line that starts a phase ("[2/4] text") gets the estimate (its
        own "[i/n]" is replaced by the clock's count); other lines pass through unchanged."""
        if _PHASE_LINE.match(line) and self.done < len(self.reference_s):
            return self.phase(_PHASE_LINE.sub("", line, count=1))
        return self.log(line)


def print_markdown(text: str, console=None) -> None:  # console: a rich Console
    """Print markdown (a result table) as wide as it renders unwrapped, so that rich does not
    squeeze a table into an 80-column terminal (it cut "Base-to-oracle gap closed" to
    "Base-to-orac…"); trailing padding is dropped, so a narrower terminal wraps only the long
    rows themselves."""
    import io

    from rich.console import Console
    from rich.markdown import Markdown

    file = (console or Console()).file
    rendered = io.StringIO()
    Console(width=400, file=rendered, color_system=None).print(Markdown(text))
    file.write("\n".join(line.rstrip() for line in rendered.getvalue().splitlines()) + "\n")
