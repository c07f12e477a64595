"""What a sweep found (SweepResult, PassStats, CheckStats) and its JSON form."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np

from actverify.sweep.histogram import N_BINS, HIST_LABELS


@dataclass
class PassStats:
    """One pass over the inputs (forward, or the backward with one kind of upstream gradient)."""

    name: str
    n: int = 0  # inputs judged
    # Largest error the policy does not excuse; infinite where a NaN (or an infinity) stands
    # for a number, so that NaN results never hide behind finite maxima.  max_at["bound"]:
    # the bound that input was held to.
    max_ulp: float | None = None
    max_at: dict | None = None  # the input reaching it
    histogram: list[int] = field(default_factory=lambda: [0] * N_BINS)
    not_correctly_rounded: int = 0  # error > 0.5 ulp (plus the reference's own uncertainty)
    policy_violations: int = 0
    excused: int = 0  # subnormal true values flushed to zero, accepted by the policy
    accepted: int = 0  # outputs a documented convention accepts (step(NaN) = 0, ...)
    not_judged: int = 0  # inputs left out of this pass (NaN inputs for gradients)
    # Backward passes: the worst error against the exact derivative of the kernel's own saved
    # output (the backward's own quality), its input and its own bound (no forward error).
    own_max_ulp: float | None = None
    own_max_at: dict | None = None
    examples: list[dict] = field(default_factory=list)  # violations, worst first
    worst: list[dict] = field(default_factory=list)  # largest counted errors, worst first

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["histogram"] = {label: int(c) for label, c in zip(HIST_LABELS, self.histogram) if c}
        return d


@dataclass
class CheckStats:
    """A check over the whole input space: monotonicity, symmetry, canonical agreement..."""

    name: str
    checked: bool = True
    why_not: str = ""  # when not checked
    n: int = 0  # inputs (or pairs, rows) examined
    violations: int = 0
    examples: list[dict] = field(default_factory=list)
    counts_for_ok: bool = True  # differences from the canonical kernel are information only

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SweepResult:
    """What a sweep found for one target on one format.

    `arrays` (not in the JSON) holds what plots need: for sweeps of up to KEEP_ARRAYS inputs
    `key` (inputs in value order, see `order_key`), `x`, and one ULP-error array per pass
    (`forward`, `backward g=random`, `backward g=1`) plus `canonical_gap` (|kernel - canonical|
    in ulps, 0 where bitwise equal); for larger sweeps one point per chunk (`chunk_key`,
    `chunk_x`, `chunk_max`).  Softmax sweeps keep `<pattern>/x` and `<pattern>/err` per pattern.
    """

    target: str
    activation: str
    dtype: str
    device: str
    policy: str
    params: dict
    coverage: str
    n_inputs: int
    passes: dict[str, PassStats] = field(default_factory=dict)
    checks: dict[str, CheckStats] = field(default_factory=dict)
    specials: list[dict] = field(default_factory=list)
    engine: str = "exact"
    elapsed_s: float = 0.0
    skipped: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing breaks the policy (a skipped sweep checked nothing: also True)."""
        if self.error is not None:
            return False
        if any(p.policy_violations for p in self.passes.values()):
            return False
        if any(c.violations for c in self.checks.values() if c.counts_for_ok and c.checked):
            return False
        return all(s.get("ok", True) for s in self.specials)

    @property
    def label(self) -> str:
        """The activation, with the modes its parameters name ("gelu approximate=tanh"):
        sweeps of one target with different modes are told apart by it."""
        modes = " ".join(f"{k}={v}" for k, v in self.params.items() if isinstance(v, str))
        return f"{self.activation} {modes}" if modes else self.activation

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "not checked"
        if self.error:
            return "error"
        return "ok" if self.ok else "violations"

    def to_dict(self) -> dict:
        return _clean({
            "target": self.target, "activation": self.activation, "dtype": self.dtype,
            "device": self.device, "policy": self.policy, "params": self.params,
            "coverage": self.coverage, "n_inputs": self.n_inputs, "verdict": self.verdict,
            "ok": self.ok, "engine": self.engine, "elapsed_s": round(self.elapsed_s, 3),
            "skipped": self.skipped, "error": self.error, "notes": self.notes,
            "passes": {k: p.to_dict() for k, p in self.passes.items()},
            "checks": {k: c.to_dict() for k, c in self.checks.items()},
            "specials": self.specials,
        })

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """One line: target, dtype, forward/backward maxima, counts, verdict."""
        parts = [f"{self.target} [{self.label}] {self.dtype}: {self.verdict}"]
        if self.skipped:
            return parts[0] + f" ({self.skipped})"
        if self.error:
            return parts[0] + f" ({self.error})"
        for p in self.passes.values():
            where = f" at x={_num(p.max_at['x'])}" if p.max_at else ""
            where += _bound_of(p) + _own_of(p)
            parts.append(f"{p.name}: max {_num(p.max_ulp)} ulp{where}, "
                         f"{p.not_correctly_rounded} not correctly rounded, "
                         f"{p.policy_violations} violations")
        for c in self.checks.values():
            if c.checked:
                parts.append(f"{c.name}: {c.violations}")
        return "; ".join(parts)


def _bound_of(p: PassStats) -> str:
    """', bound B' beside a pass's worst error, where the bound is known."""
    bound = (p.max_at or {}).get("bound")
    return "" if bound is None else f" (bound {_num(bound)})"


def _own_of(p: PassStats) -> str:
    """A backward's own-output figure: '; own output N (bound B)'."""
    if p.own_max_ulp is None:
        return ""
    bound = (p.own_max_at or {}).get("bound")
    return f"; own output {_num(p.own_max_ulp)}" + ("" if bound is None
                                                     else f" (bound {_num(bound)})")


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return format(v, ".4g")


def _clean(value):
    """JSON has no inf/NaN: write them as strings; numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
