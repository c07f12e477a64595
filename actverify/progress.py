"""One progress display for every long run: a live rich display on a terminal, and for a log
that is not a terminal (CI), a plain line every `log_every` seconds.

    with progress(total=len(work), label="checking", unit="values") as bar:
        for item in work:
            bar.describe(f"checking {item}")   # the label, from now on
            ...
            bar(values)                        # advance by so many

`bar.update(completed=..., total=..., label=...)` sets the figures outright and `bar.say(text)`
prints a line above the display (a finding, say).  With `enabled=False` the display shows
nothing (`say` still prints).  With `total=None` it shows the label alone (the caller's own
status line, as `actverify fuzz` keeps); with a total, a bar, done/total, the rate in `unit`
per second when given, the elapsed time and an estimate of what is left.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

LOG_EVERY = 15.0  # seconds between the plain lines of a log


def human(n: float) -> str:
    """1234567 -> '1.2M': counts and rates at a glance."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}" if float(n).is_integer() or abs(n) >= 10 else f"{n:.1f}"


def clock(seconds: float) -> str:
    """125.3 -> '2m05s'."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """What `progress()` yields; calling it advances the count."""

    def __init__(self, *, total: float | None, label: str, unit: str | None, out: TextIO,
                 live, enabled: bool, log_every: float) -> None:
        self.total, self.label, self.unit = total, label, unit
        self.completed = 0.0
        self.out, self.live, self.enabled, self.log_every = out, live, enabled, log_every
        self.start = time.monotonic()
        self.last: float | None = None  # when the last plain line was written
        self.task = live.add_task(label, total=total) if live is not None else None

    def __call__(self, n: float = 1) -> None:
        self.advance(n)

    def advance(self, n: float = 1) -> None:
        self.update(completed=self.completed + n)

    def describe(self, label: str) -> None:
        self.update(label=label)

    def update(self, *, completed: float | None = None, total: float | None = None,
               label: str | None = None) -> None:
        self.completed = self.completed if completed is None else completed
        self.total = self.total if total is None else total
        self.label = self.label if label is None else label
        if self.live is not None:
            self.live.update(self.task, completed=self.completed, total=self.total,
                             description=self.label)
        elif self.enabled:
            now = time.monotonic()
            if self.last is None or now - self.last >= self.log_every:
                self.last = now
                self._write(self.line() + "\n")

    def line(self) -> str:
        """The plain form: the label, then done/total and the rate where there are any."""
        text = self.label
        if self.total is not None:
            text += f" {human(self.completed)}/{human(self.total)}"
        elapsed = time.monotonic() - self.start
        if self.unit and elapsed > 0:
            text += f" ({human(self.completed / elapsed)} {self.unit}/s)"
        return text

    def say(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self._write(text + "\n")

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _live(*, total: float | None, unit: str | None, console, transient: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                               ProgressColumn, TaskProgressColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{human(speed or 0)} {unit}/s")

    # markup=False: a label is the caller's text ('[0m15s/1m00s] ...'), not rich markup.
    columns = [TextColumn("{task.description}", markup=False)]
    if total is not None:
        columns += [BarColumn(), TaskProgressColumn(), MofNCompleteColumn()]
    if unit:
        columns.append(Rate())
    if total is not None:
        columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return RichProgress(*columns, console=console, transient=transient)


@contextlib.contextmanager
def progress(*, total: float | None, label: str, enabled: bool = True, unit: str | None = None,
             out: TextIO | None = None, console=None, transient: bool = True,
             log_every: float = LOG_EVERY) -> Iterator[Progress]:
    """A progress display for the block (module doc).  `out`: where it writes (default
    stderr), or `console`, a rich Console; `transient`: the live display vanishes at the end
    (else its last state stays on the terminal)."""
    if console is None:
        from rich.console import Console

        console = Console(file=out or sys.stderr)
    out = console.file
    live = (_live(total=total, unit=unit, console=console, transient=transient)
            if enabled and console.is_terminal else None)
    bar = Progress(total=total, label=label, unit=unit, out=out, live=live, enabled=enabled,
                   log_every=log_every)
    if live is None:
        yield bar
        return
    with live:
        yield bar
