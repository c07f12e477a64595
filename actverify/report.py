"""The conformance report: outcomes gathered, kept as they arrive, and shown as a table.

A report knows what was planned as well as what ran, so its verdict has an explicit
completeness: "conforms" only when every planned check ran to the end and held; "violations"
when a property is violated; "incomplete" when something planned did not run to the end
(interrupted, timed out, could not run, the budget ran out); "nothing checked" when nothing
applied.  `exit_status` maps the verdict onto the one exit-code table (EXIT_STATUS).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import math
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from actverify.errors import Interrupted
from actverify.outcomes import Outcome, format_failure
from actverify.progress import progress

if TYPE_CHECKING:  # torch-free at import: `actverify check`'s supervising parent keeps a report
    from actverify.targets import Target

SCHEMA_VERSION = 1

# While a run goes on, its JSON file is rewritten after every outcome that is not a pass, and
# otherwise at most this often (seconds).  Rewriting the whole file after each of a full
# report's ~2,800 outcomes cost the parent about 80 s of CPU (quadratic in the outcomes),
# taken from the workers on the same cores; a process killed outright loses at most this
# long of passes, which the file then counts as never run ("incomplete", never a pass).
SAVE_EVERY = 1.0

# The one exit-code table of every command (README.md, docs/check.md).
EXIT_STATUS = {"conforms": 0, "violations": 1, "usage error": 2, "incomplete": 3,
               "nothing checked": 3}
FINISHED = ("passed", "failed")  # statuses of a check that ran to the end


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    json_path: Path | None = None
    not_checked: list[dict] = field(default_factory=list)  # what was not checked, and why
    target: str | None = None
    activation: str | None = None
    planned: int | None = None  # property runs planned; None: whatever was added
    interrupted: str | None = None  # why the run stopped early (a signal, the worker, ...)
    finished: bool = False  # the run came to its end (not still running, not cut short)
    _saved_at: float = field(default=-math.inf, repr=False, compare=False)  # see SAVE_EVERY
    # The plan position of each outcome, where runs complete out of plan order (`add`);
    # outcomes given at construction hold the first places, in their order.
    _places: list[int] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._places = list(range(len(self.outcomes)))

    @property
    def ok(self) -> bool:
        """Conforms: every planned check ran to the end and held, and something was checked
        (a run that checked nothing, e.g. a CUDA-only kernel without a GPU, is no pass)."""
        return self.verdict == "conforms"

    def counts(self) -> dict[str, int]:
        """Planned, run (to the end), passed, failed, errors (could not run), timed out, not
        run (planned, never finished) and not checked (outside what the target declares)."""
        by = defaultdict(int)
        for o in self.outcomes:
            by[o.status] += 1
        # A planned run that found its subject outside the target's declaration is accounted
        # for (as not checked), not missing.
        ran = by["passed"] + by["failed"] + by["error"] + by["timed_out"] + by["not_checked"]
        planned = max(self.planned if self.planned is not None else ran, ran)
        return {"planned": planned, "run": by["passed"] + by["failed"],
                "passed": by["passed"], "failed": by["failed"], "errors": by["error"],
                "timed_out": by["timed_out"], "not_run": planned - ran,
                "not_checked": by["not_checked"] + len(self.not_checked)}

    @property
    def complete(self) -> bool:
        c = self.counts()
        return (self.finished and self.interrupted is None
                and c["not_run"] == c["timed_out"] == c["errors"] == 0)

    @property
    def verdict(self) -> str:
        c = self.counts()
        if c["failed"]:
            return "violations"
        if not self.complete:
            return "incomplete"
        return "conforms" if c["passed"] else "nothing checked"

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.verdict]

    def incomplete_reasons(self) -> list[str]:
        """What keeps the run from being complete, in words (empty when it is complete)."""
        c, why = self.counts(), []
        if self.interrupted:
            why.append(self.interrupted)
        elif not self.finished:
            why.append("the run has not finished")
        if c["timed_out"]:
            why.append(f"{c['timed_out']} timed out")
        if c["errors"]:
            why.append(f"{c['errors']} could not run")
        if c["not_run"]:
            why.append(f"{c['not_run']} never ran")
        return why

    def add(self, outcome: Outcome, *, place: int | None = None) -> None:
        """Keep an outcome; with a JSON path, rewrite the file (at once for anything but a
        pass, else at most every SAVE_EVERY seconds) so that little gathered is lost.
        `place`: its position in the plan, for runs that complete out of order (the
        outcomes stay in plan order); None: after every outcome kept so far."""
        if place is None:
            place = self._places[-1] + 1 if self._places else 0
        at = bisect.bisect(self._places, place)
        self._places.insert(at, place)
        self.outcomes.insert(at, outcome)
        if self.json_path is None:
            return
        now = time.monotonic()
        if outcome.status not in ("passed", "not_checked") or now >= self._saved_at + SAVE_EVERY:
            self.write_json(self.json_path)
            self._saved_at = now

    @classmethod
    def run(cls, targets: Iterable[Target], *, dtypes=None, devices=None, policy="default",
            settings=None, json_path: Path | None = None, console: Console | None = None,
            workers: int | None = 1) -> "Report":
        """Every applicable property on every (target, dtype, device), on `workers` processes
        (None: one per available core; actverify.parallel)."""
        from actverify.parallel import run_all
        from actverify.plan import plan_work
        from actverify.runner import run_property

        work = plan_work(targets, dtypes=dtypes, devices=devices, policy=policy)
        report = cls(json_path=json_path, planned=len(work))
        console = console or Console(stderr=True)
        with report.running(), run_all(work, settings=settings, workers=workers,
                                       run=run_property) as outcomes, \
                progress(total=len(work), label="checking", console=console) as bar:
            for outcome in outcomes:
                bar.describe(f"{outcome.property} {outcome.target} {outcome.dtype}")
                report.add(outcome)
                bar()
        return report

    @contextlib.contextmanager
    def running(self):
        """Mark the report finished when the block ends, or interrupted when SIGINT/SIGTERM
        (see `interruptible`) cut it short; the JSON file says which either way (and, while
        the run goes on, that it is incomplete: a process that dies leaves no false pass)."""
        if self.json_path is not None:
            self.write_json(self.json_path)
        try:
            with interruptible():
                yield self
        except Interrupted as exc:
            self.interrupted = f"interrupted by {exc}"
        else:
            self.finished = True
        if self.json_path is not None:
            self.write_json(self.json_path)

    def rows(self) -> list[dict]:
        """One row per (activation, dtype, device): properties passed, worst ulp and its input."""
        groups: dict[tuple, list[Outcome]] = defaultdict(list)
        for o in self.outcomes:
            groups[(o.activation, o.dtype, o.device)].append(o)
        rows = []
        for (act, dtype, device), outs in groups.items():
            ulps = [o for o in outs if o.max_ulp is not None and o.kind == "forward"]
            worst = max(ulps, key=lambda o: o.max_ulp, default=None)
            grads = [o for o in outs if o.max_ulp is not None and o.kind == "backward"]
            worst_grad = max(grads, key=lambda o: o.max_ulp, default=None)
            owns = [o for o in outs if o.own_ulp is not None and o.kind == "backward"]
            worst_own = max(owns, key=lambda o: o.own_ulp, default=None)
            def tally(kind: str) -> str:
                mine = [o for o in outs if o.kind == kind]
                return f"{sum(o.status == 'passed' for o in mine)}/{len(mine)}" if mine else "-"

            rows.append(dict(
                activation=act, dtype=dtype, device=device,
                forward=tally("forward"), backward=tally("backward"),
                passed=sum(o.status == "passed" for o in outs),
                failed=sum(o.status == "failed" for o in outs),
                errors=sum(o.status == "error" for o in outs),
                timed_out=sum(o.status == "timed_out" for o in outs),
                not_checked=sum(o.status == "not_checked" for o in outs),
                total=len(outs),
                worst_ulp=None if worst is None else worst.max_ulp,
                worst_ulp_input=None if worst is None else worst.max_ulp_x,
                worst_ulp_bound=None if worst is None else worst.max_ulp_bound,
                worst_grad_ulp=None if worst_grad is None else worst_grad.max_ulp,
                worst_grad_ulp_input=None if worst_grad is None else worst_grad.max_ulp_x,
                # The bound of the gradient's error at x: its own ulps plus the forward's
                # error carried through the backward (docs/accuracy.md).
                worst_grad_ulp_bound=None if worst_grad is None else worst_grad.max_ulp_bound,
                # Against the exact derivative of the kernel's own saved output: the
                # backward's own quality, under its own bound.
                grad_own_ulp=None if worst_own is None else worst_own.own_ulp,
                grad_own_ulp_input=None if worst_own is None else worst_own.own_ulp_x,
                grad_own_ulp_bound=None if worst_own is None else worst_own.own_ulp_bound,
                failed_properties=sorted({o.property for o in outs if o.status == "failed"}),
            ))
        return rows

    def skip(self, why: str, **where: str) -> None:
        """Record something that was not checked (never counted as passed)."""
        self.not_checked.append({**where, "why": why})
        if self.json_path is not None:
            self.write_json(self.json_path)

    def to_json(self) -> dict:
        """The stable schema documented in docs/check.md."""
        return {"schema_version": SCHEMA_VERSION,
                "target": self.target, "activation": self.activation,
                "verdict": self.verdict, "exit_status": self.exit_status,
                "complete": self.complete, "counts": self.counts(),
                "incomplete": self.incomplete_reasons(),
                "summary": self.rows(),
                "findings": [o.to_json() for o in self.outcomes
                             if o.status in ("failed", "error", "timed_out")],
                "not_checked": self.not_checked
                + [{"property": o.property, "dtype": o.dtype, "device": o.device,
                    "why": o.reason} for o in self.outcomes if o.status == "not_checked"],
                "outcomes": [o.to_json() for o in self.outcomes]}

    def write_json(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(_clean(self.to_json()), indent=1, allow_nan=False))
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)


    def print(self, console: Console | None = None) -> None:
        console = console or Console(width=max(Console().width, 120))
        table = Table(title="actverify conformance report")
        # Every worst error beside the bound it was held to ("error / bound"); the gradient's
        # error against the true derivative (bound: own ulps + the forward's carried error) and
        # against the derivative of its own saved output (bound: its own ulps) side by side.
        numeric = ("ulp/bound", "at x", "grad ulp/bound", "at x ", "grad own ulp/bound")
        for col in ("activation", "dtype", "device", "forward", "backward", *numeric, "violated"):
            table.add_column(col, justify="right" if col in numeric else "left")
        for r in self.rows():
            violated = ", ".join(r["failed_properties"] + ["errors"] * bool(r["errors"])
                                 + ["timed out"] * bool(r["timed_out"]))
            figures = [_against(r["worst_ulp"], r["worst_ulp_bound"]),
                       _fmt(r["worst_ulp_input"], ".6g"),
                       _against(r["worst_grad_ulp"], r["worst_grad_ulp_bound"]),
                       _fmt(r["worst_grad_ulp_input"], ".6g"),
                       _against(r["grad_own_ulp"], r["grad_own_ulp_bound"])]
            table.add_row(r["activation"], r["dtype"], r["device"], r["forward"], r["backward"],
                          *figures, f"[red]{violated}[/red]" if violated else "")
        console.print(table)
        for o in self.outcomes:
            if o.status == "failed":
                console.print(format_failure(o), markup=False, highlight=False)
            elif o.status == "error":
                console.print(f"{o.property} on {o.target} ({o.dtype}, {o.device}) could not "
                              f"run: {o.reason}", markup=False, highlight=False)
            elif o.status == "timed_out":
                replay = o.failure.replay if o.failure is not None else None
                console.print(f"{o.property} on {o.target} ({o.dtype}, {o.device}) timed out: "
                              f"{o.reason}" + (f"\n  replay:  {replay}" if replay else ""),
                              markup=False, highlight=False)
        for item in self.not_checked:
            where = ", ".join(f"{k} {v}" for k, v in item.items() if k != "why")
            console.print(f"not checked: {where}{': ' if where else ''}{item['why']}",
                          markup=False, highlight=False)
        verdict = {"conforms": "all properties hold", "violations": "VIOLATIONS found",
                   "incomplete": "INCOMPLETE (not every planned check ran to the end)",
                   "nothing checked": "NOTHING was checked"}[self.verdict]
        c = self.counts()
        subject = f"{self.target} ({self.activation}): " if self.target else ""
        figures = (f"{c['planned']} planned, {c['run']} run to the end ({c['passed']} passed, "
                   f"{c['failed']} failed)")
        for key, label in (("timed_out", "timed out"), ("errors", "could not run"),
                           ("not_run", "not run"), ("not_checked", "not checked")):
            if c[key]:
                figures += f", {c[key]} {label}"
        why = "; ".join(self.incomplete_reasons()) if self.verdict != "conforms" else ""
        console.print(f"{subject}{figures}: {verdict}" + (f" [{why}]" if why else ""),
                      markup=False, highlight=False)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _against(value: float | None, bound: float | None) -> str:
    """A worst error beside its bound: '0.52 / 1'; NaN results show as an infinite error."""
    if value is None:
        return "-"
    return _fmt(value, ".3g") + ("" if bound is None else " / " + _fmt(bound, ".3g"))


def _clean(value):
    """JSON has no inf/NaN: write them as strings; anything else unknown as its str()."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@contextlib.contextmanager
def interruptible():
    """Turn SIGINT and SIGTERM into `Interrupted` (main thread only) for the block, so that a
    run cut short by Ctrl-C, `timeout` or a CI runner still writes its report."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
