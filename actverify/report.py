"""The conformance report: outcomes gathered, kept as they arrive, and shown as a table."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from actverify.parallel import run_all
from actverify.properties import properties_for
from actverify.runner import Outcome, format_failure, run_property, subjects
from actverify.targets import Target

SCHEMA_VERSION = 1


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    json_path: Path | None = None
    not_checked: list[dict] = field(default_factory=list)  # what was not checked, and why
    target: str | None = None
    activation: str | None = None

    @property
    def ok(self) -> bool:
        """Conforms: something was checked, and nothing failed (a run that checked nothing,
        e.g. a CUDA-only kernel on a machine without a GPU, is no pass)."""
        return (any(o.status == "passed" for o in self.outcomes)
                and all(o.status in ("passed", "not_checked") for o in self.outcomes))

    @property
    def verdict(self) -> str:
        if not any(o.status != "not_checked" for o in self.outcomes):
            return "nothing checked"
        return "conforms" if self.ok else "violations"

    def add(self, outcome: Outcome) -> None:
        """Keep an outcome; with a JSON path, rewrite the file so nothing gathered is lost."""
        self.outcomes.append(outcome)
        if self.json_path is not None:
            self.write_json(self.json_path)

    @classmethod
    def run(cls, targets: Iterable[Target], *, dtypes=None, devices=None, policy="default",
            settings=None, json_path: Path | None = None, console: Console | None = None,
            workers: int | None = 1) -> "Report":
        """Every applicable property on every (target, dtype, device), on `workers` processes
        (None: one per available core; actverify.parallel)."""
        report = cls(json_path=json_path)
        work = [(prop, s) for s in subjects(targets, dtypes=dtypes, devices=devices,
                                            policy=policy)
                for prop in properties_for(s.target, s.fmt.name, s.device)]
        console = console or Console(stderr=True)
        with run_all(work, settings=settings, workers=workers, run=run_property) as outcomes, \
                Progress(console=console, transient=True) as progress:
            task = progress.add_task("checking", total=len(work))
            for outcome in outcomes:
                progress.update(task, description=f"{outcome.property} {outcome.target} "
                                                  f"{outcome.dtype}")
                report.add(outcome)
                progress.advance(task)
        return report

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
            def tally(kind: str) -> str:
                mine = [o for o in outs if o.kind == kind]
                return f"{sum(o.status == 'passed' for o in mine)}/{len(mine)}" if mine else "-"

            rows.append(dict(
                activation=act, dtype=dtype, device=device,
                forward=tally("forward"), backward=tally("backward"),
                passed=sum(o.status == "passed" for o in outs),
                failed=sum(o.status == "failed" for o in outs),
                errors=sum(o.status == "error" for o in outs),
                not_checked=sum(o.status == "not_checked" for o in outs),
                total=len(outs),
                worst_ulp=None if worst is None else worst.max_ulp,
                worst_ulp_input=None if worst is None else worst.max_ulp_x,
                worst_grad_ulp=None if worst_grad is None else worst_grad.max_ulp,
                worst_grad_ulp_input=None if worst_grad is None else worst_grad.max_ulp_x,
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
                "verdict": self.verdict,
                "summary": self.rows(),
                "findings": [o.to_json() for o in self.outcomes
                             if o.status in ("failed", "error")],
                "not_checked": self.not_checked
                + [{"property": o.property, "dtype": o.dtype, "device": o.device,
                    "why": o.reason} for o in self.outcomes if o.status == "not_checked"],
                "outcomes": [o.to_json() for o in self.outcomes]}

    def write_json(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(_clean(self.to_json()), indent=1, allow_nan=False))
        tmp.replace(path)

    def print(self, console: Console | None = None) -> None:
        console = console or Console(width=max(Console().width, 120))
        table = Table(title="actverify conformance report")
        numeric = ("worst ulp", "at x", "grad ulp", "at x ")
        for col in ("activation", "dtype", "device", "forward", "backward", *numeric, "violated"):
            table.add_column(col, justify="right" if col in numeric else "left")
        for r in self.rows():
            violated = ", ".join(r["failed_properties"]) or ("errors" if r["errors"] else "")
            figures = [_fmt(r[k], spec) for k, spec in (
                ("worst_ulp", ".3g"), ("worst_ulp_input", ".6g"), ("worst_grad_ulp", ".3g"),
                ("worst_grad_ulp_input", ".6g"))]
            table.add_row(r["activation"], r["dtype"], r["device"], r["forward"], r["backward"],
                          *figures, f"[red]{violated}[/red]" if violated else "")
        console.print(table)
        for o in self.outcomes:
            if o.status == "failed":
                console.print(format_failure(o), markup=False, highlight=False)
            elif o.status == "error":
                console.print(f"{o.property} on {o.target} ({o.dtype}, {o.device}) could not "
                              f"run: {o.reason}", markup=False, highlight=False)
        for item in self.not_checked:
            where = ", ".join(f"{k} {v}" for k, v in item.items() if k != "why")
            console.print(f"not checked: {where}{': ' if where else ''}{item['why']}",
                          markup=False, highlight=False)
        verdict = {"conforms": "all properties hold", "violations": "VIOLATIONS found",
                   "nothing checked": "NOTHING was checked"}[self.verdict]
        subject = f"{self.target} ({self.activation}): " if self.target else ""
        console.print(f"{subject}{len(self.outcomes)} checks: {verdict}")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


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
