"""What a property run produced, and how a failure reads: `Outcome`, `Failure` and
`format_failure`.

Plain data with no torch or Hypothesis import, so that the pytest plugin's record writer
(actverify/fuzzing/records.py), the runner and the reports can all share it without importing
each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actverify.dtypes import FloatFormat

# A suite test whose kernel timed out fails with this mark (actverify/suite.py); a session
# whose only failures are timeouts exits 3, incomplete, as the commands do (README.md), and
# `actverify fuzz` reports such a failure as TIMED OUT.
TIMED_OUT_MARK = "timed out (incomplete)"

@dataclass
class Failure:
    """The evidence for one violated property, shrunk by Hypothesis."""

    message: str
    x: float | None = None
    x_bits: str | None = None
    index: list[int] | None = None
    expected: float | None = None
    expected_bits: str | None = None  # the true value rounded to the format
    actual: float | None = None
    actual_bits: str | None = None
    ulp_error: float | None = None
    input_shape: list[int] | None = None
    layout: str | None = None
    params: dict = field(default_factory=dict)
    replay: str | None = None  # the command that replays exactly this case
    details: dict = field(default_factory=dict)


@dataclass
class Outcome:
    property: str
    activation: str
    target: str
    dtype: str
    device: str
    policy: str
    status: str  # passed | failed | not_checked | error (could not run) | timed_out
    kind: str = "forward"  # forward | backward
    examples: int = 0
    values: int = 0
    max_ulp: float | None = None
    max_ulp_x: float | None = None
    max_ulp_bound: float | None = None  # the bound the worst element was held to
    # Backwards: the worst error against the exact derivative of the kernel's own saved
    # output (the backward's own quality, without the error carried from the forward).
    own_ulp: float | None = None
    own_ulp_x: float | None = None
    own_ulp_bound: float | None = None
    seconds: float = 0.0
    failure: Failure | None = None
    reason: str | None = None  # for not_checked, error and timed_out

    def to_json(self) -> dict:
        return asdict(self)


def _bits(fmt: FloatFormat, value: float | None) -> str | None:
    if value is None:
        return None
    return fmt.hex(value)



def format_failure(outcome: Outcome) -> str:
    """A failure as a person reads it: what broke, on which input, and how to replay it."""
    f = outcome.failure
    verb = "timed out on" if outcome.status == "timed_out" else "violated by"
    lines = [f"{outcome.property} {verb} {outcome.target} ({outcome.activation}, "
             f"{outcome.dtype}, {outcome.device}, policy {outcome.policy})", f"  {f.message}"]

    def row(label, value, bits):
        if value is not None:
            lines.append(f"  {label:<9}{value!r}" + (f"  [{bits}]" if bits else ""))

    row("input", f.x, f.x_bits)
    if f.index:
        lines.append(f"  at index {tuple(f.index)} of an input of shape {tuple(f.input_shape)}, "
                     f"layout {f.layout}")
    row("expected", f.expected, f.expected_bits)
    row("actual", f.actual, f.actual_bits)
    if f.ulp_error is not None:
        lines.append(f"  ulp error {f.ulp_error:.4g}")
    if f.params:
        lines.append(f"  params   {f.params}")
    for k, v in f.details.items():
        lines.append(f"  {k:<9}{v}")
    if f.replay:
        lines.append(f"  replay:  {f.replay}")
    return "\n".join(lines)


def mark_timed_out(outcome: Outcome, what: str, *, limit: float | None,
                   failure: Failure | None = None) -> None:
    """A call outlived its time limit: the property did not run to the end.  Slow and hung
    cannot be told apart from outside, so this is its own status (the run is incomplete, never
    a violation), with what to do if the kernel is merely slow; `failure` keeps the input."""
    outcome.status, outcome.failure = "timed_out", failure
    larger = f"{4 * limit:g}" if limit else "S"
    outcome.reason = (f"{what}; if the kernel is slow but correct, give it a larger limit: "
                      f"rerun with --timeout {larger} (ACTVERIFY_TIMEOUT={larger} under pytest)")
