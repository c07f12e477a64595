"""Exhaustive sweeps: every bit pattern of a 16-bit format, or chosen ranges of float32.

Hypothesis finds bugs by searching; a sweep proves the absence of some by enumeration.  For
float16 and bfloat16 there are only 65,536 inputs, so the target is evaluated on all of them,
forward and backward, and judged by the same accuracy model and the same tolerance functions
the property suite uses (`actverify.accuracy.compare`, `judgement.judge`,
`judgement.tolerance`): a sweep and a property can never disagree
about what counts as wrong.  On top of the per-input verdicts a sweep reports what only the
whole input space shows: the maximum error and where it is reached, a histogram of errors,
monotonicity over every adjacent pair of the sorted inputs, the point-symmetry identity at
every input, and every input whose result differs bit for bit from PyTorch's canonical kernel.

float32 has 2^32 inputs.  `bit_range` and `stride` choose a subset; by default a CI subset (a
stride of 2^12 through the whole space plus +-2^12 bit patterns around each of the spec's
thresholds); `all_float32=True` goes through all of them in chunks on all cores.  Large float32
sweeps use a fused pass: the kernel runs eagerly (that is what users call), and the float64
reference, the ULP error (integer bit arithmetic on the reference's exponent), the verdicts and
the running reductions are one `torch.compile`d function.  Inputs the fused pass flags are
judged again by the library's own `compare`, so counts of violations always come from the
library's rules.  See docs/sweep.md.

Softmax is not element-wise; `sweep_softmax` builds rows from every value of a 16-bit format in
three patterns (docs/sweep.md says exactly which).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import heapq
import io
import json
import math
import os
import platform
import time
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from actverify.accuracy import (DEFAULT, Policy, compare, overflow_threshold, policy_named,
                                reference_uncertainty, ulp)
from actverify.devices import resolve_device
from actverify.dtypes import FloatFormat, float_format
from actverify.errors import UsageError
from actverify.judgement import (at_kink_within_subdifferential, judge, own_output_error,
                                 point_symmetry_bad, same_bits, tolerance)
from actverify.properties.base import Subject, TargetMisbehaved
from actverify.properties.derivatives import gradient
from actverify.spec import ActivationSpec, get_spec, registry
from actverify.targets import Target, builtin_targets
from actverify.threads import limited as limited_threads
from actverify.threads import resolve as resolve_threads

# ------------------------------------------------------------------------------ histogram

#: Upper edges of the histogram bins: 0, (0, 0.5], (0.5, 1], (1, 2], (2, 4], ... (2^29, 2^30];
#: then (2^30, inf) and inf (NaN/infinity mismatches) as the last two bins.  Every edge is
#: widened by the reference's own uncertainty u = `reference_uncertainty(fmt)` (2^-27 ulp for
#: float32, 2^-40 for the 16-bit formats), as `compare` widens bounds: "0" is an error of at
#: most u, "(0, 0.5]" at most 0.5 + u, and so on.  Without it, results whose true error is a
#: multiple of 0.5 ulp to within 1e-15 (sigmoid(x) = 1/2 + x/4 - ... for tiny x) would move
#: between bins with the last bit of the float64 reference.
HIST_EDGES: tuple[float, ...] = (0.0, 0.5) + tuple(2.0**k for k in range(0, 31))
N_BINS = len(HIST_EDGES) + 2  # 35
HIST_LABELS: tuple[str, ...] = (
    ("0", "(0, 0.5]", "(0.5, 1]")
    + tuple(f"({2**(k - 1)}, {2**k}]" if k <= 10 else f"(2^{k - 1}, 2^{k}]"
            for k in range(1, 31))
    + ("> 2^30", "inf")
)

CHECKS = ("monotonic", "point_symmetry", "canonical")  # whole-space checks of element-wise sweeps
MAX_EXAMPLES = 20  # examples kept per pass / check
N_WORST = 10  # worst inputs kept per pass
N_WORST_CHUNKS = 3  # fused pass: the chunks whose worst input is located (their kernel reruns)
KEEP_ARRAYS = 1 << 22  # per-input arrays are kept for sweeps up to this many inputs
EXACT_CHUNK = 1 << 18
FAST_CHUNK = 1 << 22
CI_STRIDE = 1 << 12
CI_NEIGHBOURHOOD = 1 << 12


def histogram_bins(err: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Bin index (0 .. N_BINS-1) of each ULP error, see HIST_EDGES."""
    err = np.asarray(err, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        shifted = np.maximum(err - reference_uncertainty(fmt), 0.0)
    bins = np.searchsorted(np.asarray(HIST_EDGES), shifted, side="left")
    return np.where(np.isinf(err), N_BINS - 1, bins)


def histogram(err: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    return np.bincount(histogram_bins(err, fmt).ravel(), minlength=N_BINS)[:N_BINS
                                                                             ].astype(np.int64)


# ------------------------------------------------------------------------------ results


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
        parts = [f"{self.target} [{self.activation}] {self.dtype}: {self.verdict}"]
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


# ------------------------------------------------------------------------------ bit order


def _sign(fmt: FloatFormat) -> int:
    return 1 << (fmt.bits - 1)


def _mask(fmt: FloatFormat) -> int:
    return (1 << fmt.bits) - 1


def order_key(bits, fmt: FloatFormat):
    """Map unsigned bit patterns to keys that sort like the values: -NaNs, -inf, ..., -0, +0,
    ..., +inf, +NaNs.  Works on ints, numpy arrays and torch tensors (int64)."""
    sign, mask = _sign(fmt), _mask(fmt)
    if isinstance(bits, int):
        return (mask - bits) if bits & sign else (bits | sign)
    neg = (bits & sign) != 0
    if isinstance(bits, torch.Tensor):
        return torch.where(neg, mask - bits, bits | sign)
    return np.where(neg, mask - bits, bits | sign)


def bits_of_key(key, fmt: FloatFormat):
    """Inverse of `order_key`."""
    sign, mask = _sign(fmt), _mask(fmt)
    if isinstance(key, int):
        return (key & (sign - 1)) if key & sign else (mask - key)
    pos = (key & sign) != 0
    if isinstance(key, torch.Tensor):
        return torch.where(pos, key & (sign - 1), mask - key)
    return np.where(pos, key & (sign - 1), mask - key)


def _hex(bits: int, fmt: FloatFormat) -> str:
    return f"0x{int(bits) & _mask(fmt):0{fmt.bits // 4}x}"


def _hex_at(t: torch.Tensor, i: int, fmt: FloatFormat) -> str:
    """The bit pattern of element i of a flat tensor."""
    return _hex(int(fmt.bits_of(t.detach()[i:i + 1].cpu())[0]), fmt)


def parse_bit_range(text: str) -> tuple[int, int]:
    """'LO:HI' (decimal or 0x hex) -> (lo, hi), the half-open range of bit patterns [LO, HI)."""
    try:
        lo, hi = (int(part.strip(), 0) for part in text.split(":"))
    except ValueError:
        raise UsageError(f"--range {text!r}: use LO:HI, bit patterns in decimal or 0x hex, "
                         "e.g. 0x3f800000:0x40000000") from None
    if not 0 <= lo < hi:
        raise UsageError(f"--range {text!r}: need 0 <= LO < HI")
    return lo, hi


@dataclass(frozen=True)
class _Run:
    """An ascending arithmetic progression of keys."""

    start: int
    count: int
    step: int


class _KeySet:
    """The inputs of a sweep, as keys in value order: either disjoint progressions (cheap for
    2^32 inputs) or one sorted tensor of distinct keys (unions such as the CI subset)."""

    def __init__(self, fmt: FloatFormat, runs: Sequence[_Run] = (),
                 keys: torch.Tensor | None = None, description: str = "") -> None:
        self.fmt, self.runs, self.keys, self.description = fmt, tuple(runs), keys, description

    @property
    def count(self) -> int:
        return int(self.keys.numel()) if self.keys is not None else sum(r.count for r in self.runs)

    def chunks(self, size: int) -> Iterator[tuple[int, int, int, torch.Tensor | None]]:
        """(start, step, n, keys-or-None) per chunk, in value order."""
        if self.keys is not None:
            for i in range(0, self.keys.numel(), size):
                part = self.keys[i:i + size]
                yield int(part[0]), 0, int(part.numel()), part
            return
        for r in self.runs:
            for i in range(0, r.count, size):
                n = min(size, r.count - i)
                yield r.start + i * r.step, r.step, n, None

    def all_keys(self) -> torch.Tensor:
        if self.keys is not None:
            return self.keys
        return torch.cat([r.start + r.step * torch.arange(r.count, dtype=torch.int64)
                          for r in self.runs]) if self.runs else torch.zeros(0, dtype=torch.int64)


def _range_runs(fmt: FloatFormat, lo: int, hi: int, stride: int) -> list[_Run]:
    """Bit patterns lo, lo + stride, ... < hi as key progressions (negative half first)."""
    sign, mask = _sign(fmt), _mask(fmt)
    runs = []
    # negative patterns [max(lo, sign), hi): keys = mask - bits, descending in bits
    start = max(lo, sign)
    if start < hi:
        i0 = -(-(start - lo) // stride)
        i1 = (hi - 1 - lo) // stride
        if i1 >= i0:
            runs.append(_Run(mask - (lo + i1 * stride), i1 - i0 + 1, stride))
    # non-negative patterns [lo, min(hi, sign))
    end = min(hi, sign)
    if lo < end:
        count = (end - 1 - lo) // stride + 1
        runs.append(_Run(lo | sign, count, stride))
    return runs


def _float_to_key(value: float, fmt: FloatFormat) -> int:
    t = torch.tensor([value], dtype=torch.float64).to(fmt.dtype)
    return int(order_key(int(fmt.bits_of(t)[0]), fmt))


def plan_inputs(fmt: FloatFormat, *, spec: ActivationSpec | None = None,
                bit_range: tuple[int, int] | None = None, stride: int = 1,
                all_float32: bool = False) -> _KeySet:
    """Which bit patterns a sweep visits (see `sweep_elementwise`)."""
    if fmt.bits not in (16, 32):
        raise UsageError(f"sweeps cover 16-bit formats and float32, not {fmt.name}")
    if stride < 1:
        raise UsageError(f"stride must be >= 1, got {stride}")
    space = 1 << fmt.bits
    if bit_range is not None:
        lo, hi = bit_range
        if not 0 <= lo < hi <= space:
            raise UsageError(f"bit range [{lo:#x}, {hi:#x}) is not inside [0, {space:#x}) "
                             f"for {fmt.name}")
        runs = _range_runs(fmt, lo, hi, stride)
        n = sum(r.count for r in runs)
        what = (f"bit patterns [{_hex(lo, fmt)}, {_hex(hi - 1, fmt)}]"
                + (f", every {stride}th" if stride > 1 else "") + f" ({n:,} values)")
        return _KeySet(fmt, runs, description=what)
    if fmt.bits == 16 or all_float32 or stride > 1:
        runs = _range_runs(fmt, 0, space, stride)
        n = sum(r.count for r in runs)
        what = (f"all {n:,} bit patterns" if stride == 1 else
                f"every {stride}th bit pattern of the {fmt.name} space ({n:,} values)")
        return _KeySet(fmt, runs, description=what)
    # float32 CI subset: a stride through the whole space plus the thresholds' neighbourhoods
    strided = _KeySet(fmt, _range_runs(fmt, 0, space, CI_STRIDE)).all_keys()
    parts = [strided]
    thresholds = tuple(spec.thresholds(fmt)) if spec is not None else (0.0,)
    for t in thresholds:
        k = _float_to_key(float(t), fmt)
        parts.append(torch.arange(max(0, k - CI_NEIGHBOURHOOD),
                                  min(space, k + CI_NEIGHBOURHOOD + 1), dtype=torch.int64))
    keys = torch.unique(torch.cat(parts))  # sorted
    what = (f"CI subset of float32: every {CI_STRIDE}th bit pattern ({strided.numel():,}) plus "
            f"+-{CI_NEIGHBOURHOOD} bit patterns around each threshold "
            f"({', '.join(format(float(t), '.6g') for t in thresholds)}); "
            f"{keys.numel():,} distinct values")
    return _KeySet(fmt, keys=keys, description=what)


def _keys_to_x(keys: torch.Tensor, fmt: FloatFormat, device: str) -> torch.Tensor:
    return fmt.from_bits(bits_of_key(keys, fmt)).to(device)


# ------------------------------------------------------------------------------ accumulators


class _PassAcc:
    """Accumulates one pass's statistics chunk by chunk."""

    def __init__(self, name: str, fmt: FloatFormat) -> None:
        self.stats = PassStats(name)
        self.fmt = fmt
        self.hist = np.zeros(N_BINS, dtype=np.int64)
        self._examples: list[tuple[float, int, dict]] = []  # min-heap on score
        self._worst: list[tuple[float, int, dict]] = []
        self._tick = 0

    def _push(self, heap: list, score: float, item: dict, limit: int) -> None:
        self._tick += 1
        entry = (score, self._tick, item)
        if len(heap) < limit:
            heapq.heappush(heap, entry)
        elif score > heap[0][0]:
            heapq.heapreplace(heap, entry)

    def _threshold(self, heap: list, limit: int) -> float:
        return heap[0][0] if len(heap) >= limit else -math.inf

    def example(self, score: float, item: dict) -> None:
        self._push(self._examples, score, item, MAX_EXAMPLES)

    def candidate_worst(self, err: float, item: dict) -> None:
        self._push(self._worst, err, item, N_WORST)
        s = self.stats
        if s.max_ulp is None or err > s.max_ulp:
            s.max_ulp, s.max_at = float(err), item

    def add_exact(self, *, x: torch.Tensor, y: torch.Tensor, ref: np.ndarray, cmp,
                  bad: np.ndarray, accepted: np.ndarray, g: np.ndarray | None = None,
                  judged: np.ndarray | None = None,
                  context: Callable[[int], dict] | None = None) -> np.ndarray:
        """One chunk judged by the library's `compare`; returns the per-input error array."""
        fmt, s = self.fmt, self.stats
        err = np.asarray(cmp.error, dtype=np.float64).ravel()
        judged = np.ones(err.shape, dtype=bool) if judged is None else judged
        bad = np.asarray(bad).ravel() & judged
        accepted = np.asarray(accepted).ravel() & judged
        bound = np.asarray(cmp.bound, dtype=np.float64).ravel()
        bound = bound if bound.size == err.size else np.full(err.shape, bound[0])
        over = ~(err <= bound)
        excused_all = np.asarray(cmp.excused).ravel()
        s.n += int(judged.sum())
        s.not_judged += int((~judged).sum())
        self.hist += histogram(err[judged], fmt)
        unc = reference_uncertainty(fmt)
        with np.errstate(invalid="ignore"):
            s.not_correctly_rounded += int((judged & (err - unc > 0.5)).sum())
        s.policy_violations += int(bad.sum())
        s.excused += int((excused_all & over & judged).sum())
        s.accepted += int((accepted & np.asarray(cmp.bad).ravel()).sum())
        # NaN inputs are judged, but never shown as "the worst input" (NaN in, NaN out is 0);
        # a NaN result for a number counts, as an infinite error.
        x_nan = np.isnan(x.detach().reshape(-1).cpu().double().numpy())
        counted = judged & ~excused_all & ~accepted & ~np.isnan(err) & ~x_nan
        if counted.any():
            cerr = np.where(counted, err, -1.0)
            top = np.argpartition(cerr, -min(N_WORST, cerr.size))[-N_WORST:]
            for i in top:
                if cerr[i] >= 0 and cerr[i] >= self._threshold(self._worst, N_WORST):
                    item = self._describe(x, y, ref, err, i, g)
                    item["bound"] = float(bound[i])
                    self.candidate_worst(float(cerr[i]), item)
        if bad.any():
            score = np.where(bad, np.nan_to_num(err, posinf=1e300), -1.0)
            top = np.argpartition(score, -min(MAX_EXAMPLES, score.size))[-MAX_EXAMPLES:]
            reasons = np.asarray(cmp.reason, dtype=object).ravel()
            for i in top:
                if bad[i]:
                    item = self._describe(x, y, ref, err, i, g)
                    item["bound"] = float(bound[i])
                    item["reason"] = reasons[i] or "ulp error above bound"
                    if context is not None:
                        item.update(context(int(i)))
                    self.example(float(score[i]), item)
        return err

    def _describe(self, x, y, ref, err, i, g) -> dict:
        fmt = self.fmt
        xf, yf = x.reshape(-1), y.reshape(-1)
        xb = int(fmt.bits_of(xf[i:i + 1].cpu())[0])
        yb = int(fmt.bits_of(yf[i:i + 1].detach().cpu())[0])
        item = {"x": float(xf[i]), "bits": _hex(xb, fmt), "y": float(yf[i]),
                "y_bits": _hex(yb, fmt), "expected": float(np.asarray(ref).ravel()[i]),
                "ulp_error": float(err[i])}
        if g is not None:
            item["g"] = float(np.asarray(g).ravel()[i])
        return item

    def finish(self) -> PassStats:
        s = self.stats
        s.histogram = [int(c) for c in self.hist]
        s.examples = [e[2] for e in sorted(self._examples, key=lambda e: -e[0])]
        s.worst = [e[2] for e in sorted(self._worst, key=lambda e: -e[0])]
        return s


class _CheckAcc:
    def __init__(self, name: str, *, counts_for_ok: bool = True) -> None:
        self.stats = CheckStats(name, counts_for_ok=counts_for_ok)

    def add(self, n: int, violations: int, examples: Iterable[dict] = ()) -> None:
        self.stats.n += int(n)
        self.stats.violations += int(violations)
        room = MAX_EXAMPLES - len(self.stats.examples)
        if room > 0:
            for e in examples:
                self.stats.examples.append(e)
                room -= 1
                if room == 0:
                    break

    def finish(self) -> CheckStats:
        return self.stats


def _not_checked(name: str, why: str, *, counts_for_ok: bool = True) -> CheckStats:
    return CheckStats(name, checked=False, why_not=why, counts_for_ok=counts_for_ok)


# ------------------------------------------------------------------------------ shared checks


def _is_canonical(target: Target) -> bool:
    spec = target.spec
    return target.builtin and target.name == spec.canonical.name and not target.inplace


def _judged(s: Subject, x: torch.Tensor, y: torch.Tensor, params: dict):
    j = judge(s, x, y, params)
    return j.comparison, j.reference, j.bad, j.accepted


class _MonoCarry:
    """Monotonicity across chunks: the last defined input of the previous chunk."""

    def __init__(self) -> None:
        self.last: tuple[float, float, str] | None = None  # (x, y, bits)

    def pair(self, x: float, y: float, bits: str) -> dict | None:
        bad = None
        if self.last is not None and not (y >= self.last[1]):
            bad = {"x_lo": self.last[0], "bits_lo": self.last[2], "y_lo": self.last[1],
                   "x_hi": x, "bits_hi": bits, "y_hi": y}
        return bad


def _monotone_chunk(acc: _CheckAcc, carry: _MonoCarry, fmt: FloatFormat, x: torch.Tensor,
                    yv: np.ndarray, defined: np.ndarray) -> None:
    """Every adjacent pair of the chunk (inputs already in value order) plus the pair across
    the chunk boundary; pairs with an undefined true value (NaN reference) are skipped."""
    idx = np.flatnonzero(defined)
    if idx.size == 0:
        return
    xv = x.detach().cpu().double().numpy()
    bits = fmt.bits_of(x.cpu()).numpy()
    y_def = yv[idx]
    # Pairs only between neighbours in the swept order: an undefined input breaks the chain.
    consecutive = np.diff(idx) == 1
    with np.errstate(invalid="ignore"):
        bad_pairs = consecutive & ~(y_def[1:] >= y_def[:-1])
    examples = []
    first = int(idx[0])
    boundary = carry.pair(float(xv[first]), float(yv[first]), _hex(bits[first], fmt)) \
        if first == 0 else None
    n_pairs = int(consecutive.sum()) + (1 if carry.last is not None and first == 0 else 0)
    if boundary is not None:
        examples.append(boundary)
    for j in np.flatnonzero(bad_pairs)[:MAX_EXAMPLES]:
        lo, hi = int(idx[j]), int(idx[j + 1])
        examples.append({"x_lo": float(xv[lo]), "bits_lo": _hex(bits[lo], fmt),
                         "y_lo": float(yv[lo]), "x_hi": float(xv[hi]),
                         "bits_hi": _hex(bits[hi], fmt), "y_hi": float(yv[hi])})
    acc.add(n_pairs, int(bad_pairs.sum()) + (boundary is not None), examples)
    last = int(idx[-1])
    carry.last = ((float(xv[last]), float(yv[last]), _hex(bits[last], fmt))
                  if last == defined.size - 1 else None)


def _bitwise_diff(acc: _CheckAcc, fmt: FloatFormat, x: torch.Tensor, y: torch.Tensor,
                  c: torch.Tensor, ref: np.ndarray, extra: dict | None = None) -> np.ndarray:
    """Inputs where the target and PyTorch's canonical kernel give different bits (any NaN
    equals any NaN); returns the gap in ulps of the true value (0 where equal)."""
    same = same_bits(y.detach(), c.detach()).reshape(-1)
    yv = y.detach().cpu().double().numpy().reshape(-1)
    cv = c.detach().cpu().double().numpy().reshape(-1)
    with np.errstate(invalid="ignore"):
        gap = np.where(same, 0.0, np.abs(yv - cv) / ulp(np.asarray(ref).reshape(-1), fmt))
    gap = np.where(~same & np.isnan(gap), np.inf, gap)
    diff = np.flatnonzero(~same)
    xf, yf, cf = x.reshape(-1), y.reshape(-1), c.reshape(-1)
    examples = []
    for i in diff[:MAX_EXAMPLES].tolist():
        e = {"x": float(xf[i]), "bits": _hex_at(xf, i, fmt), "y": float(yv[i]),
             "y_bits": _hex_at(yf, i, fmt), "canonical": float(cv[i]),
             "canonical_bits": _hex_at(cf, i, fmt), "gap_ulp": float(gap[i])}
        if extra:
            e.update({k: float(np.asarray(v).reshape(-1)[i]) for k, v in extra.items()})
        examples.append(e)
    acc.add(same.size, diff.size, examples)
    return gap


def _upstream(n: int, fmt: FloatFormat, device: str, seed: int) -> torch.Tensor:
    """Random upstream gradients: normal values at a random scale 2^-6..2^6, 10% zeros."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    g = g * torch.pow(2.0, torch.randint(-6, 7, (n,), generator=gen).double())
    g = torch.where(torch.rand(n, generator=gen) < 0.1, torch.zeros_like(g), g)
    return g.to(fmt.dtype).to(device)


def _backward_applies(target: Target, params: dict) -> str | None:
    """None when the backward is checked, else why not."""
    if target.spec.derivative is None:
        return "no gradient (PyTorch's backward raises)"
    if not target.backward:
        return "the target declares no backward"
    if not target.accepts(params, 1, backward=True):
        return "the target declares no backward for these parameters"
    return None


# ------------------------------------------------------------------------------ exact engine


@dataclass
class _State:
    """Everything a sweep accumulates, shared by both engines."""

    s: Subject
    params: dict
    backward: bool
    seed: int
    forward: _PassAcc
    grads: dict[str, _PassAcc]
    mono: _CheckAcc | None
    sym: _CheckAcc | None
    canon: _CheckAcc | None
    canon_grads: dict[str, _CheckAcc]
    carry: _MonoCarry = field(default_factory=_MonoCarry)
    keep: bool = True
    arrays: dict[str, list] = field(default_factory=dict)
    chunk_points: list[tuple[int, float, float]] = field(default_factory=list)
    chunk_index: int = 0

    def keep_array(self, name: str, values: np.ndarray) -> None:
        if self.keep:
            self.arrays.setdefault(name, []).append(np.asarray(values))


def _exact_forward(st: _State, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    s, params = st.s, st.params
    y = s.call(x, params)
    cmp, ref, bad, accepted = _judged(s, x, y, params)
    err = st.forward.add_exact(x=x, y=y, ref=ref, cmp=cmp, bad=bad, accepted=accepted)
    st.keep_array("forward", err)
    yv = s.values(y).reshape(-1)
    if st.mono is not None:
        _monotone_chunk(st.mono, st.carry, s.fmt, x, yv, ~np.isnan(ref))
    if st.sym is not None:
        y_neg = s.call(-x, params)
        ref_neg = s.reference(-x, params)
        bad_sym = point_symmetry_bad(s, x, yv, s.values(y_neg), ref, ref_neg, params)
        idx = np.flatnonzero(bad_sym)[:MAX_EXAMPLES]
        xv = s.values(x)
        st.sym.add(int(np.isfinite(xv).sum()), int(bad_sym.sum()), [
            {"x": float(xv[i]), "bits": _hex_at(x, i, s.fmt),
             "f(x)": float(yv[i]), "f(-x)": float(s.values(y_neg)[i]),
             "expected f(-x)": float(2 * s.spec.point_symmetry - yv[i])} for i in idx])
    if st.canon is not None:
        c = s.canonical(x, params)
        st.keep_array("canonical_gap", _bitwise_diff(st.canon, s.fmt, x, y, c, ref))
    elif st.keep:
        st.keep_array("canonical_gap", np.zeros(x.numel()))
    return y, ref, err


def _own_figure(stats: PassStats, s, x, g, y, gx, params, judged) -> None:
    """Keep the backward's worst error against the derivative of its own saved output."""
    own = own_output_error(s, x, g, y, gx, params)
    if own is None:
        return
    err = np.where(judged.reshape(own.error.shape), own.error, -1.0)
    err = np.where(np.isnan(err), -1.0, err)
    if err.size and err.max() >= 0 and (stats.own_max_ulp is None
                                        or err.max() > stats.own_max_ulp):
        i = int(np.argmax(err))
        stats.own_max_ulp = float(err.flat[i])
        stats.own_max_at = {"x": float(s.values(x).flat[i]),
                            "bound": float(np.broadcast_to(own.bound, err.shape).flat[i])}


def _exact_backward(st: _State, x: torch.Tensor) -> None:
    s, params, fmt = st.s, st.params, st.s.fmt
    xv = s.values(x)
    judged = ~np.isnan(xv)  # a NaN input has no derivative to compare with
    for name, acc in st.grads.items():
        if name.endswith("g=1"):
            g = torch.ones_like(x)
        else:
            g = _upstream(x.numel(), fmt, s.device, hash((st.seed, st.chunk_index)) & 0xFFFFFFFF)
        gx, y = gradient(s, x, g, params, with_output=True)
        with np.errstate(all="ignore"):
            ref, bound = tolerance(s, x, g, params)
            cmp = compare(gx.detach(), ref, fmt=fmt, bound=bound, policy=s.policy,
                          zero_sign_specified=False)
        _own_figure(acc.stats, s, x, g, y, gx.detach(), params, judged)
        kink = at_kink_within_subdifferential(s, x, g, gx.detach(), params)
        err = acc.add_exact(x=x, y=gx, ref=ref, cmp=cmp, bad=cmp.bad & ~kink, accepted=kink,
                            g=s.values(g), judged=judged)
        st.keep_array(name, np.where(judged, err, np.nan))
        canon = st.canon_grads.get(name)
        if canon is not None:
            gc = gradient(s, x, g, params, fn=s.spec.canonical.fn, inplace=False)
            _bitwise_diff(canon, fmt, x, gx, gc, ref, extra={"g": s.values(g)})


def _exact_chunk(st: _State, x: torch.Tensor) -> None:
    _exact_forward(st, x)
    if st.grads:
        _exact_backward(st, x)


# ------------------------------------------------------------------------------ fast engine
#
# Each spec's `fast_reference` (float64 torch ops) drives the fused float32 pass.  It is never
# trusted blindly: `_validate_fast` compares the fused pass with the exact engine (the spec's
# numpy reference and `compare`) on a validation set before a sweep uses it, and every input
# the fused pass flags is judged again by the exact engine.


@dataclass(frozen=True)
class _FusedConfig:
    activation: str
    params: tuple
    precision: int
    emin: int
    emax: int
    tiny: float
    overflow: float
    allowed: float  # bound + reference uncertainty
    unc: float
    bound: float
    allow_flush: bool
    zero_sign: bool
    symmetry: float | None
    canonical: bool
    monotone: bool


def _ulp_exponent(r: torch.Tensor, cfg: _FusedConfig) -> torch.Tensor:
    """log2 ulp(r) for the output format, from the float64 reference's exponent bits."""
    e = ((r.view(torch.int64) >> 52) & 0x7FF) - 1023
    return e.clamp(cfg.emin, cfg.emax) - (cfg.precision - 1)


def _fast_ulp(r: torch.Tensor, cfg: _FusedConfig) -> torch.Tensor:
    """ulp(r) as float64 (a power of two, built from its bits), as `accuracy.ulp`."""
    return ((_ulp_exponent(r, cfg) + 1023) << 52).view(torch.float64)


def _inv_ulp(r: torch.Tensor, cfg: _FusedConfig) -> torch.Tensor:
    """1 / ulp(r) for the output format, from the float64 reference's exponent bits (exact:
    a power of two), with the same clamping as `accuracy.ulp`."""
    return ((1023 - _ulp_exponent(r, cfg)) << 52).view(torch.float64)


# NaN / infinity / sign tests written as comparisons: inductor vectorizes these, while it
# evaluates torch.isnan / isinf / signbit element by element on CPU.
def _nan(v: torch.Tensor) -> torch.Tensor:
    return v != v


def _inf(v: torch.Tensor) -> torch.Tensor:
    return v.abs() == math.inf


def _negative(v: torch.Tensor) -> torch.Tensor:
    """The sign bit of a float64 tensor."""
    return v.view(torch.int64) < 0


def _fast_error(y: torch.Tensor, r: torch.Tensor, cfg: _FusedConfig) -> torch.Tensor:
    """`accuracy.ulp_error` in torch: |y - r| / ulp(r), with its NaN and infinity rules
    (NaN vs NaN 0, NaN vs number inf; a reference past the overflow threshold counts as
    rounding to infinity; an infinite result against a finite reference is inf), in as few
    vector operations as possible."""
    err = (y - r).abs() * _inv_ulp(r, cfg)
    y_nan, r_nan = _nan(y), _nan(r)
    inf = math.inf
    y_inf = y.abs() == inf
    r_over = r.abs() >= cfg.overflow  # includes an infinite reference
    same_inf = r_over & (y == torch.copysign(torch.full_like(r, inf), r))
    return torch.where(y_nan | r_nan, torch.where(y_nan & r_nan, 0.0, inf),
                       torch.where(y_inf, torch.where(same_inf, 0.0, inf), err))


def _fast_bins(err: torch.Tensor, unc: float) -> torch.Tensor:
    """`histogram_bins` from exponent bits: ceil(log2 (err - u)) + 2 for err - u > 0.5."""
    shifted = (err - unc).clamp(min=0.0)
    eb = shifted.view(torch.int64)
    e = ((eb >> 52) & 0x7FF) - 1023
    k = e + ((eb & ((1 << 52) - 1)) != 0).to(torch.int64)
    bins = torch.where(shifted <= 0.5, (shifted > 0).to(torch.int64),
                       (k + 2).clamp(2, N_BINS - 2))
    return torch.where(_inf(err), N_BINS - 1, bins)


# Indices into the counts vector the fused pass returns.
(_C_BAD, _C_SPECIAL, _C_EXCUSED, _C_MONO, _C_MONON, _C_SYM, _C_SYMN, _C_DIFF) = range(8)
_C_LE = 8  # then cumulative counts of error - u <= each of _LE_EDGES (histogram bins 0..4)
_LE_EDGES = (0.0, 0.5, 1.0, 2.0, 4.0)


def _defined(cfg: _FusedConfig, x: torch.Tensor, params: dict) -> torch.Tensor:
    fn = get_spec(cfg.activation).defined
    return fn(x, params) if fn is not None else ~_nan(x)


def _fused(cfg: _FusedConfig, x: torch.Tensor, y: torch.Tensor, y_neg: torch.Tensor,
           y_canon: torch.Tensor, nvalid: torch.Tensor,
           mode: Literal["reduce", "reduce_full", "argmax", "bins", "detail"] = "reduce"):
    """The fused analysis of one chunk (inputs in value order, the first `nvalid` real;
    each input is paired with the next for the monotonicity check).

    mode "reduce" (every chunk): the largest counted error and the counts, with the plain
    |y - r| / ulp(r) and a count of the inputs where the NaN / infinity / overflow rules of
    `accuracy.ulp_error` would apply; only if there are any, "reduce_full" (those rules
    applied) replaces it for the chunk.  "argmax": where
    that error is (only for chunks whose maximum enters the worst inputs); "bins": the
    histogram bin of every input (only for chunks with errors above 2 ulp); "detail": every
    mask, evaluated eagerly, for chunks with something to report."""
    params = dict(cfg.params)
    ref = get_spec(cfg.activation).fast_reference
    index = torch.arange(x.shape[0], device=x.device)
    valid = index < nvalid
    xd, yd = x.double(), y.double()
    r, rn = ref(xd, params)
    if mode == "reduce":
        err = (yd - r).abs() * _inv_ulp(r, cfg)
        special = valid & ~((err < math.inf) & (r.abs() < cfg.overflow))
    else:
        err = _fast_error(yd, r, cfg)
        special = None
    excused = valid & (yd == 0) & (r.abs() < cfg.tiny) if cfg.allow_flush else \
        torch.zeros_like(valid)
    counted = valid & ~excused & (err != math.inf) & (xd == xd)
    errm = torch.where(counted, err, -1.0)
    if mode == "argmax":
        return errm.max(0)
    if mode == "bins":
        return torch.where(valid, _fast_bins(err, cfg.unc), N_BINS).to(torch.uint8)
    bad = valid & (err > cfg.allowed) & ~excused
    if cfg.zero_sign:
        bad = bad | (valid & (yd == 0) & (r == 0) & (_negative(yd) != _negative(r)))
    zero = torch.zeros_like(valid)
    if cfg.monotone:
        # the next input and output (the last pairs with a zero, and is masked anyway); a
        # pad, unlike a concatenation, compiles into shifted loads in the one fused loop
        x_next = torch.nn.functional.pad(x[1:], (0, 1))
        y_next = torch.nn.functional.pad(y[1:], (0, 1))
        pairs = ((index < nvalid - 1) & _defined(cfg, x, params)
                 & _defined(cfg, x_next, params))
        mono = pairs & ~(y_next >= y)
    else:
        mono = pairs = zero
    if cfg.symmetry is not None:
        c = cfg.symmetry
        if rn is None:
            rn = ref(-xd, params)[0]
        tol = cfg.bound * (_fast_ulp(r, cfg) + _fast_ulp(rn, cfg))
        ynd = y_neg.double()
        finite = valid & (xd.abs() < math.inf)
        sym = finite & ~((ynd - (2 * c - yd)).abs() <= tol)
        if cfg.zero_sign and c == 0:
            sym = sym | (valid & (xd == 0) & (_negative(yd) == _negative(ynd)))
        n_sym = finite
    else:
        sym = n_sym = zero
    if cfg.canonical:
        yi, ci = y.view(torch.int32), y_canon.view(torch.int32)
        diff = valid & (yi != ci) & ~(_nan(y) & _nan(y_canon))
    else:
        diff = zero
    if mode == "detail":
        return {"err": err, "bad": bad, "excused": excused, "mono": mono, "sym": sym,
                "diff": diff, "ref": r, "errm": errm,
                "bins": torch.where(valid, _fast_bins(err, cfg.unc), N_BINS)}
    shifted = err - cfg.unc  # the histogram's edges, widened by the reference's uncertainty
    nothing = torch.zeros((), dtype=torch.int32, device=x.device)

    def count(mask: torch.Tensor) -> torch.Tensor:  # int32 lanes: chunks hold < 2^31 inputs
        return mask.to(torch.int32).sum(dtype=torch.int32)

    counts = torch.stack([
        count(bad), count(special) if special is not None else nothing,
        count(excused & (err > cfg.allowed)) if cfg.allow_flush else nothing,
        count(mono) if cfg.monotone else nothing, count(pairs) if cfg.monotone else nothing,
        count(sym) if cfg.symmetry is not None else nothing,
        count(n_sym) if cfg.symmetry is not None else nothing,
        count(diff) if cfg.canonical else nothing,
        *[count(valid & (shifted <= edge)) for edge in _LE_EDGES]])
    return errm.max(), counts


def _own_code(fn: Callable, name: str) -> Callable:
    """A copy of `fn` with a code object of its own: dynamo caches compiled graphs per code
    object and gives up after 8 recompilations, so every configuration gets its own."""
    code = fn.__code__.replace(co_name=name)
    copy = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


_COMPILED: dict[tuple, dict[str, Callable]] = {}  # compiled passes, per configuration
_VALIDATED: dict[tuple, str | None] = {}  # validation outcome, per configuration


class _FastEngine:
    """The fused float32 forward pass, compiled when possible."""

    def __init__(self, st: _State, *, chunk: int, use_compile: bool) -> None:
        s = st.s
        self.st, self.chunk, self.device = st, chunk, s.device
        bound = s.spec.bound(s.fmt).evaluate(np.zeros(1), st.params, s.fmt)
        bound = 0.5 if s.policy.correct_rounding else float(np.asarray(bound).ravel()[0])
        unc = reference_uncertainty(s.fmt)
        self.cfg = _FusedConfig(
            activation=s.spec.name, params=tuple(sorted(st.params.items())),
            precision=s.fmt.precision, emin=s.fmt.emin, emax=s.fmt.emax, tiny=s.fmt.tiny,
            overflow=float(overflow_threshold(s.fmt)), allowed=bound + unc, unc=unc,
            bound=bound, allow_flush=s.policy.allow_flush,
            zero_sign=s.spec.zero_sign == "specified" or s.policy.zero_sign == "always",
            symmetry=s.spec.point_symmetry if st.sym is not None else None,
            canonical=st.canon is not None, monotone=st.mono is not None)
        self.compiled = False
        cfg, device = self.cfg, self.device
        eager = {mode: _own_code(lambda *a, _m=mode: _fused(cfg, *a, mode=_m),
                                 f"_fused_{mode}_{len(_COMPILED)}")
                 for mode in ("reduce", "reduce_full", "argmax", "bins")}
        self.passes = dict(eager)
        self.key = (cfg, chunk, device)
        if use_compile and self.key in _COMPILED:
            self.passes = _COMPILED[self.key]
            self.compiled = True
        elif use_compile:
            try:
                # argmax and bins are compiled on first use (most sweeps need them rarely)
                self.passes = {m: torch.compile(f, dynamic=False) for m, f in eager.items()}
                self._warm()
                self.compiled = True
                _COMPILED[self.key] = self.passes
            except Exception as exc:  # no compiler, unsupported backend: eager fallback
                warnings.warn(f"torch.compile of the fused sweep pass failed ({type(exc).__name__}:"
                              f" {exc}); running it eagerly", RuntimeWarning, stacklevel=2)
                self.passes = dict(eager)
        self.engine = "fused-compiled" if self.compiled else "fused-eager"
        self._top: list[tuple[float, int, tuple]] = []  # the chunks with the largest maxima
        self._buffers: dict[str, torch.Tensor] = {}
        self._tick = 0

    def _buffer(self, name: str, n: int, dtype: torch.dtype) -> torch.Tensor:
        """A chunk-sized buffer of our own, reused from chunk to chunk: a fresh 16 MB tensor
        per chunk costs its page faults every time (the allocator hands large blocks back to
        the system), about a tenth of a sweep's time with the checks on."""
        buf = self._buffers.get(name)
        if buf is None or buf.dtype != dtype:
            buf = self._buffers[name] = torch.empty(self.chunk, dtype=dtype, device=self.device)
        return buf[:n]

    def fused(self, mode: str, *args):
        try:
            return self.passes[mode](*args)
        except Exception as exc:  # a pass compiled lazily failed to compile: run it eagerly
            if not self.compiled:
                raise
            warnings.warn(f"torch.compile of the {mode} pass failed ({type(exc).__name__}); "
                          "running it eagerly", RuntimeWarning, stacklevel=2)
            self.passes[mode] = lambda *a: _fused(self.cfg, *a, mode=mode)
            return self.passes[mode](*args)

    def _warm(self) -> None:
        z = torch.zeros((), dtype=torch.int64, device=self.device)
        x = torch.zeros(self.chunk, dtype=torch.float32, device=self.device)
        self.passes["reduce"](x, x, x, x, z + 1)

    def inputs(self, start: int, step: int, n: int, keys: torch.Tensor | None) -> torch.Tensor:
        """The chunk's inputs, padded to the compiled size by repeating the last one."""
        if keys is not None:
            x = _keys_to_x(keys, self.st.s.fmt, self.device)
        else:
            # A run lies in one sign half: its bit patterns are an arithmetic progression
            # (descending for negative values), i.e. one int32 arange.
            fmt = self.st.s.fmt
            first = bits_of_key(start, fmt)
            last = bits_of_key(start + (n - 1) * step, fmt)
            signed = FloatFormat.signed
            a, b = signed(first, 32), signed(last, 32)
            d = step if b >= a else -step
            x = torch.arange(a, b + d, d, out=self._buffer("bits", n, torch.int32)
                             ).view(torch.float32)
        if x.numel() < self.chunk:
            x = torch.cat([x, x[-1:].expand(self.chunk - x.numel())])
        return x

    def _args(self, start: int, step: int, n: int, keys: torch.Tensor | None) -> tuple:
        st, s = self.st, self.st.s
        x = self.inputs(start, step, n, keys)
        y = s.call(x, st.params)
        y_neg = (s.call(torch.neg(x, out=self._buffer("neg", x.numel(), x.dtype)), st.params)
                 if self.cfg.symmetry is not None else y)
        y_canon = s.canonical(x, st.params) if self.cfg.canonical else y
        nvalid = torch.tensor(n, device=self.device)
        return (x, y, y_neg, y_canon, nvalid)

    def run_chunk(self, start: int, step: int, n: int, keys: torch.Tensor | None) -> torch.Tensor:
        """Analyse one chunk; returns its inputs (the first n are real)."""
        args = self._args(start, step, n, keys)
        m, counts = self.fused("reduce", *args)
        counts = counts.tolist()
        if counts[_C_SPECIAL]:  # NaN, infinities, overflow: apply accuracy.ulp_error's rules
            m, counts = self.fused("reduce_full", *args)
            counts = counts.tolist()
        self._account(args, n, float(m), counts, (start, step, n, keys))
        return args[0]

    def finish(self) -> None:
        """Find the worst input of each of the chunks with the largest maxima (their kernels
        run once more: cheaper than locating the maximum of every chunk)."""
        st, s = self.st, self.st.s
        fwd = st.forward
        for m, _, where in sorted(self._top, reverse=True):
            args = self._args(*where)
            _, i = self.fused("argmax", *args)
            i = int(i)
            x, y = args[0], args[1]
            ref = s.reference(x[i:i + 1], st.params)
            fwd.candidate_worst(m, fwd._describe(x[i:i + 1], y[i:i + 1], ref, np.array([m]),
                                                 0, None))

    def _account(self, args, n: int, m: float, counts: list[int], where: tuple) -> None:
        st, s, fmt = self.st, self.st.s, self.st.s.fmt
        x, y, y_neg, y_canon = args[:4]
        fwd = st.forward
        fwd.stats.n += n
        fwd.stats.not_correctly_rounded += n - counts[_C_LE + 1]  # error - u > 0.5
        fwd.stats.excused += counts[_C_EXCUSED]
        cum = np.asarray(counts[_C_LE:_C_LE + len(_LE_EDGES)])
        if cum[-1] < n:  # errors above 16 ulp (or infinite): every input's bin
            bins = self.fused("bins", *args)
            fwd.hist += np.bincount(bins.cpu().numpy(), minlength=N_BINS + 1)[:N_BINS]
        else:
            fwd.hist[:len(_LE_EDGES)] += np.diff(cum, prepend=0)
        if m >= 0:
            first = int(order_key(int(fmt.bits_of(x[:1].cpu())[0]), fmt))
            last = int(order_key(int(fmt.bits_of(x[n - 1:n].cpu())[0]), fmt))
            # for the per-chunk plot: the chunk's middle, its maximum
            st.chunk_points.append(((first + last) // 2, float(x[n // 2]), m))
            self._tick += 1
            item = (m, self._tick, (where[0], where[1], where[2], where[3]))
            if len(self._top) < N_WORST_CHUNKS:
                heapq.heappush(self._top, item)
            elif m > self._top[0][0]:
                heapq.heapreplace(self._top, item)
        detail = None
        if counts[_C_BAD] or counts[_C_MONO] or counts[_C_SYM] or counts[_C_DIFF]:
            detail = _fused(self.cfg, *args, mode="detail")
        if counts[_C_BAD]:
            # The library's own verdict on every flagged input (conventions, reasons).
            idx = torch.nonzero(detail["bad"]).flatten().cpu()
            for part in idx.split(EXACT_CHUNK):
                xs, ys = x[part.to(x.device)], y[part.to(x.device)]
                cmp, ref, bad, accepted = _judged(s, xs, ys, st.params)
                acc = _PassAcc("tmp", fmt)
                acc.add_exact(x=xs, y=ys, ref=ref, cmp=cmp, bad=bad, accepted=accepted)
                fwd.stats.policy_violations += acc.stats.policy_violations
                fwd.stats.accepted += acc.stats.accepted
                for e in acc._examples:
                    fwd.example(e[0], e[2])
        if st.mono is not None:
            self._mono(x, y, detail, n, counts)
        if st.sym is not None:
            ex = []
            if counts[_C_SYM]:
                for j in torch.nonzero(detail["sym"]).flatten()[:MAX_EXAMPLES].tolist():
                    ex.append({"x": float(x[j]), "bits": _hex_at(x, j, fmt),
                               "f(x)": float(y[j]), "f(-x)": float(y_neg[j]),
                               "expected f(-x)": 2 * s.spec.point_symmetry - float(y[j])})
            st.sym.add(counts[_C_SYMN], counts[_C_SYM], ex)
        if st.canon is not None:
            ex = []
            if counts[_C_DIFF]:
                for j in torch.nonzero(detail["diff"]).flatten()[:MAX_EXAMPLES].tolist():
                    ref = float(detail["ref"][j])
                    u = float(ulp(np.array([ref]), fmt)[0])
                    ex.append({"x": float(x[j]), "bits": _hex_at(x, j, fmt),
                               "y": float(y[j]), "canonical": float(y_canon[j]),
                               "gap_ulp": abs(float(y[j]) - float(y_canon[j])) / u})
            st.canon.add(n, counts[_C_DIFF], ex)

    def _mono(self, x, y, detail, n, counts) -> None:
        st, fmt = self.st, self.st.s.fmt
        ex = []
        if counts[_C_MONO]:
            for j in torch.nonzero(detail["mono"]).flatten()[:MAX_EXAMPLES].tolist():
                ex.append({"x_lo": float(x[j]), "bits_lo": _hex_at(x, j, fmt),
                           "y_lo": float(y[j]), "x_hi": float(x[j + 1]),
                           "bits_hi": _hex_at(x, j + 1, fmt),
                           "y_hi": float(y[j + 1])})
        # the boundary pair with the previous chunk, and the carry for the next
        ref_ends = st.s.reference(torch.stack([x[0], x[n - 1]]), st.params)
        boundary, pairs = None, counts[_C_MONON]
        if not np.isnan(ref_ends[0]) and st.carry.last is not None:
            boundary = st.carry.pair(float(x[0]), float(y[0]),
                                     _hex_at(x, 0, fmt))
            pairs += 1
        if boundary is not None:
            ex.insert(0, boundary)
        st.mono.add(pairs, counts[_C_MONO] + (boundary is not None), ex)
        st.carry.last = None if np.isnan(ref_ends[1]) else (
            float(x[n - 1]), float(y[n - 1]), _hex_at(x, n - 1, fmt))


def _validate_fast(engine: _FastEngine, st: _State) -> str | None:
    """Run the fused pass and the exact engine on the same validation inputs (random bit
    patterns plus the thresholds' neighbourhoods; once without and once with infinities and
    NaN, so that both the plain and the full-rules pass are exercised); None if they agree,
    else what differs."""
    s, fmt = st.s, st.s.fmt
    gen = torch.Generator().manual_seed(12345)
    n = min(engine.chunk, 1 << 16)
    keys = [torch.randint(0, 1 << 32, (n - 2048,), generator=gen, dtype=torch.int64)]
    for t in tuple(s.spec.thresholds(fmt)) + (0.0, math.inf, -math.inf):
        k = _float_to_key(float(t), fmt)
        keys.append(torch.arange(max(0, k - 64), min(1 << 32, k + 64)))
    every = torch.unique(torch.cat(keys))
    finite = every[torch.isfinite(_keys_to_x(every, fmt, "cpu"))]
    problems = []
    for keys in (finite, every):
        problem = _validate_on(engine, st, keys)
        if problem:
            problems.append(problem)
    return "; ".join(problems) or None


def _validate_on(engine: _FastEngine, st: _State, keys: torch.Tensor) -> str | None:
    s, fmt = st.s, st.s.fmt
    x = engine.inputs(0, 0, keys.numel(), keys)
    nv = torch.tensor(keys.numel(), device=engine.device)
    y = s.call(x, st.params)
    y_neg = s.call(-x, st.params)
    args = (x, y, y_neg, y, nv)
    m, counts = engine.fused("reduce", *args)
    if counts.tolist()[_C_SPECIAL]:
        m, counts = engine.fused("reduce_full", *args)
    counts = counts.tolist()
    bins = engine.fused("bins", *args)
    xs, ys = x[:keys.numel()], y[:keys.numel()]
    cmp, ref, bad, accepted = _judged(s, xs, ys, st.params)
    err = np.asarray(cmp.error)
    counted = ~cmp.excused & np.isfinite(err) & ~np.isnan(s.values(xs))
    exact_max = float(err[counted].max()) if counted.any() else -1.0
    pre_accept = int(cmp.bad.sum())
    # The two references (torch's and numpy's float64) may differ in their last bits: a bin
    # may differ only for errors within twice the reference's uncertainty of a bin edge.
    unc = reference_uncertainty(fmt)
    edges = np.asarray(HIST_EDGES) + unc
    near_edge = np.min(np.abs(err[:, None] - edges[None, :]), axis=1) <= 2 * unc
    fused_bins = bins.cpu().numpy()[:keys.numel()].astype(np.int64)
    exact_bins = histogram_bins(err, fmt)
    bins_differ = (exact_bins != fused_bins) & ~near_edge
    cum = np.cumsum(np.bincount(fused_bins, minlength=N_BINS))[:len(_LE_EDGES)]
    problems = []
    if not math.isclose(float(m), exact_max, rel_tol=1e-6, abs_tol=1e-9):
        problems.append(f"max error {float(m)} vs {exact_max}")
    if abs(counts[_C_BAD] - pre_accept) > int((np.abs(err - cmp.bound) <= 2 * unc).sum()):
        problems.append(f"violations {counts[_C_BAD]} vs {pre_accept}")
    if bins_differ.any():
        i = int(np.flatnonzero(bins_differ)[0])
        problems.append(f"histogram bins differ at x = {float(xs[i])!r}: {fused_bins[i]} vs "
                        f"{exact_bins[i]} (error {err[i]!r})")
    if counts[_C_LE:_C_LE + len(_LE_EDGES)] != cum.tolist():
        problems.append("cumulative counts differ from the bins")
    return "; ".join(problems) or None


# ------------------------------------------------------------------------------ specials


def _specials(s: Subject, params: dict, *, backward: bool) -> list[dict]:
    """inf, -inf, NaN, +0 and -0: the result against the reference, the activation's limits
    and its conventions (under the policy), and the gradient with g = 1."""
    fmt, spec = s.fmt, s.spec
    names = ("+inf", "-inf", "NaN", "+0", "-0")
    x = torch.tensor([math.inf, -math.inf, math.nan, 0.0, -0.0], dtype=torch.float64
                     ).to(fmt.dtype).to(s.device)
    out = []
    try:
        y = s.call(x, params)
    except TargetMisbehaved as exc:
        return [{"name": "all", "ok": False, "reason": str(exc)}]
    cmp, ref, bad, accepted = _judged(s, x, y, params)
    yv = s.values(y)
    limits = spec.at_infinity(params) if spec.at_infinity is not None else None
    grad = None
    if backward:
        g = torch.ones_like(x)
        try:
            gx = gradient(s, x, g, params)
            with np.errstate(all="ignore"):
                gref, gbound = tolerance(s, x, g, params)
                gcmp = compare(gx.detach(), gref, fmt=fmt, bound=gbound, policy=s.policy,
                               zero_sign_specified=False)
            kink = at_kink_within_subdifferential(s, x, g, gx.detach(), params)
            grad = (s.values(gx), gref, gcmp.bad & ~kink, gcmp.error)
        except TargetMisbehaved as exc:
            grad = exc
    for i, name in enumerate(names):
        item = {"name": name, "bits": _hex_at(x, i, fmt),
                "y": float(yv[i]), "y_bits": _hex_at(y, i, fmt),
                "expected": float(ref[i]), "ok": not bool(bad[i])}
        notes = []
        if bad[i]:
            notes.append(cmp.reason[i] or "ulp error above bound")
        if accepted[i]:
            notes.append("accepted convention")
        if cmp.excused[i] and not cmp.error[i] <= np.asarray(cmp.bound).reshape(-1)[i]:
            notes.append("flushed subnormal, accepted")
        if limits is not None and name in ("+inf", "-inf"):
            want = limits[1] if name == "+inf" else limits[0]
            item["limit"] = float(want)
            same = (yv[i] == want) or (np.isnan(yv[i]) and np.isnan(want))
            if not same and not accepted[i]:
                item["ok"] = False
                notes.append(f"limit is {want}")
        if grad is not None and name != "NaN":
            if isinstance(grad, Exception):
                item["grad_ok"] = False
                notes.append(str(grad))
            else:
                gxv, gref, gbad, gerr = grad
                item.update({"grad": float(gxv[i]), "grad_expected": float(gref[i]),
                             "grad_ok": not bool(gbad[i])})
                if gbad[i]:
                    notes.append(f"gradient {float(gxv[i])!r}, expected {float(gref[i])!r} "
                                 f"({float(gerr[i]):.3g} ulp)")
            item["ok"] = item["ok"] and item["grad_ok"]
        item["note"] = "; ".join(notes)
        out.append(item)
    return out


# ------------------------------------------------------------------------------ entry points


def _progress(enabled: bool, total: int, label: str):
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn,
                               TextColumn, TimeElapsedColumn, TimeRemainingColumn)

    from rich.progress import ProgressColumn
    from rich.text import Text

    class _Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{(speed or 0) / 1e6:7.1f} M values/s")

    return Progress(TextColumn(label), BarColumn(), TaskProgressColumn(), MofNCompleteColumn(),
                    _Rate(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    transient=False)


def _format(fmt: FloatFormat | str | torch.dtype) -> FloatFormat:
    return fmt if isinstance(fmt, FloatFormat) else float_format(fmt)


def _subject(target: Target, fmt: FloatFormat, device: str, policy: Policy | str) -> Subject:
    return Subject(target, fmt, resolve_device(device), policy_named(policy))


def sweep_elementwise(target: Target, *, fmt: FloatFormat | str, device: str = "cpu",
                      policy: Policy | str = DEFAULT, params: dict | None = None,
                      backward: bool = True, bit_range: tuple[int, int] | None = None,
                      stride: int = 1, all_float32: bool = False,
                      engine: Literal["auto", "exact", "fast"] = "auto",
                      use_compile: bool = True, progress: bool | None = None,
                      threads: int | None = None, seed: int = 0,
                      checks: Iterable[str] | None = None) -> SweepResult:
    """Evaluate an element-wise target on every bit pattern of a 16-bit format (or on a range,
    a stride, the CI subset or all of float32) and judge it under `policy`.

    float16/bfloat16: every one of the 65,536 patterns unless `bit_range` / `stride` say
    otherwise.  float32: `bit_range` = (lo, hi) half-open bit patterns with `stride`; with
    neither, the CI subset (every 2^12-th pattern plus +-2^12 around each threshold); with
    `all_float32=True`, all 2^32 (forward only is what that mode is meant for; the backward
    uses the exact engine, about 20x slower).  `engine="auto"` uses the exact engine (the
    library's `compare` on every input) for up to 2^24 inputs, the fused pass above.
    `checks`: which whole-space checks run besides the accuracy passes, a subset of
    ("monotonic", "point_symmetry", "canonical"); None: all that apply.
    """
    t0 = time.perf_counter()
    fmt = _format(fmt)
    spec = target.spec
    if not spec.elementwise:
        raise UsageError(f"{spec.name} is not element-wise; use sweep_softmax")
    params = {**spec.default_params(), **(params or {})}
    s = _subject(target, fmt, device, policy)
    keyset = plan_inputs(fmt, spec=spec, bit_range=bit_range, stride=stride,
                         all_float32=all_float32)
    result = SweepResult(target=target.name, activation=spec.name, dtype=fmt.name,
                         device=s.device, policy=s.policy.name, params=dict(params),
                         coverage=keyset.description, n_inputs=keyset.count)
    if not target.supports(fmt, s.device):
        result.skipped = f"the target declares no support for {fmt.name} on {s.device}"
        return result
    if not target.accepts(params, 1):
        result.skipped = f"the target declares no support for parameters {params}"
        return result
    why_no_backward = _backward_applies(target, params) if backward else "not requested"
    grads = {}
    if why_no_backward is None:
        grads = {"backward g=random": _PassAcc("backward g=random", fmt),
                 "backward g=1": _PassAcc("backward g=1", fmt)}
    wanted = set(CHECKS if checks is None else checks)
    if wanted - set(CHECKS):
        raise UsageError(f"unknown checks {sorted(wanted - set(CHECKS))}; use {CHECKS}")
    canonical = not _is_canonical(target) and "canonical" in wanted
    st = _State(
        s=s, params=params, backward=bool(grads), seed=seed,
        forward=_PassAcc("forward", fmt), grads=grads,
        mono=_CheckAcc("monotonic") if spec.is_monotone(params) and "monotonic" in wanted
        else None,
        sym=_CheckAcc("point_symmetry") if spec.point_symmetry is not None
        and "point_symmetry" in wanted else None,
        canon=_CheckAcc("differs_from_canonical", counts_for_ok=False) if canonical else None,
        canon_grads={name: _CheckAcc(f"{name} differs_from_canonical", counts_for_ok=False)
                     for name in grads} if canonical else {},
        keep=keyset.count <= KEEP_ARRAYS)
    n = keyset.count
    if engine == "auto":
        engine = "fast" if (fmt.name == "float32" and n > (1 << 24)) else "exact"
    fast = None
    if engine == "fast":
        if fmt.name != "float32" or spec.fast_reference is None or callable(
                spec.bound(fmt).ulps):
            result.notes.append("fused pass not available here; exact engine used")
        else:
            st.keep = False
            fast = _FastEngine(st, chunk=FAST_CHUNK, use_compile=use_compile)
            if fast.key not in _VALIDATED or not fast.compiled:
                _VALIDATED[fast.key] = _validate_fast(fast, st)
            problem = _VALIDATED[fast.key]
            if problem:
                result.notes.append(f"fused pass disagreed with the exact engine on the "
                                    f"validation inputs ({problem}); exact engine used")
                st.keep = keyset.count <= KEEP_ARRAYS
                fast = None
    result.engine = fast.engine if fast is not None else "exact"
    chunk = FAST_CHUNK if fast is not None else EXACT_CHUNK
    show = all_float32 if progress is None else progress
    try:
        with limited_threads(resolve_threads(threads=threads, work="sweep")), \
                _progress(show, n, f"{target.name} {fmt.name}") as bar:
            task = bar.add_task("", total=n) if bar is not None else None
            for start, step, count, keys in keyset.chunks(chunk):
                if fast is not None:
                    x = fast.run_chunk(start, step, count, keys)[:count]
                    if st.grads:
                        _exact_backward(st, x)
                else:
                    if keys is None:
                        keys = start + step * torch.arange(count, dtype=torch.int64)
                    x = _keys_to_x(keys, fmt, s.device)
                    if st.keep:
                        st.keep_array("key", keys.numpy())
                        st.keep_array("x", s.values(x))
                    _exact_chunk(st, x)
                st.chunk_index += 1
                if bar is not None:
                    bar.update(task, advance=count)
            if fast is not None:
                fast.finish()
    except TargetMisbehaved as exc:
        result.error = exc.message
    result.passes["forward"] = st.forward.finish()
    for name, acc in st.grads.items():
        result.passes[name] = acc.finish()
    if why_no_backward is not None and backward:
        result.notes.append(f"backward not checked: {why_no_backward}")
    result.checks["monotonic"] = st.mono.finish() if st.mono else _not_checked(
        "monotonic", f"{spec.name} is not monotone for {params}" if not spec.is_monotone(params)
        else "not requested")
    result.checks["point_symmetry"] = st.sym.finish() if st.sym else _not_checked(
        "point_symmetry", f"{spec.name} states no point symmetry"
        if spec.point_symmetry is None else "not requested")
    result.checks["differs_from_canonical"] = st.canon.finish() if st.canon else _not_checked(
        "differs_from_canonical", "the target is PyTorch's canonical kernel itself"
        if _is_canonical(target) else "not requested", counts_for_ok=False)
    for name, acc in st.canon_grads.items():
        result.checks[f"{name} differs_from_canonical"] = acc.finish()
    if result.error is None:
        try:
            result.specials = _specials(s, params, backward=bool(st.grads))
        except TargetMisbehaved as exc:
            result.error = exc.message
    if st.keep and st.arrays:
        result.arrays = {k: np.concatenate(v) for k, v in st.arrays.items()}
    if st.chunk_points:
        pts = np.asarray(st.chunk_points, dtype=np.float64)
        result.arrays.update({"chunk_key": pts[:, 0].astype(np.int64), "chunk_x": pts[:, 1],
                              "chunk_max": pts[:, 2]})
    result.elapsed_s = time.perf_counter() - t0
    return result


# ------------------------------------------------------------------------------ softmax

SOFTMAX_PATTERNS: dict[str, str] = {
    "spike": "each value v as one logit in a row of n - 1 zeros, at column i mod n",
    "background": "each value v at column i mod n of a fixed background row (n seeded normal "
                  "values with standard deviation 3, rounded to the format)",
    "consecutive": "all bit patterns in order, cut into rows of n consecutive patterns",
}


def softmax_rows(fmt: FloatFormat, pattern: str, n: int, *, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows (R, n) in float64, the value v each row is about, the column where v sits)."""
    v = fmt.from_bits(torch.arange(1 << fmt.bits, dtype=torch.int64)).double()
    col = torch.arange(v.numel()) % n
    if pattern == "spike":
        rows = torch.zeros(v.numel(), n, dtype=torch.float64)
    elif pattern == "background":
        gen = torch.Generator().manual_seed(seed)
        bg = (torch.randn(n, generator=gen, dtype=torch.float64) * 3).to(fmt.dtype).double()
        rows = bg.repeat(v.numel(), 1)
    elif pattern == "consecutive":
        if v.numel() % n:
            raise UsageError(f"row length {n} does not divide {v.numel()}")
        rows = v.reshape(-1, n).clone()
        return rows, v, col
    else:
        raise UsageError(f"unknown softmax pattern {pattern!r}; use one of "
                         f"{', '.join(SOFTMAX_PATTERNS)}")
    rows[torch.arange(v.numel()), col] = v
    return rows, v, col


def sweep_softmax(target: Target, *, fmt: FloatFormat | str, device: str = "cpu",
                  policy: Policy | str = DEFAULT, row_length: int = 16,
                  patterns: Sequence[str] = tuple(SOFTMAX_PATTERNS),
                  dims: Sequence[int] = (-1, 0), backward: bool = True,
                  seed: int = 0) -> SweepResult:
    """Softmax over rows built from every value of a 16-bit format (see SOFTMAX_PATTERNS),
    along the last dim (rows of a (R, n) tensor) and along dim 0 (the transposed (n, R)
    tensor, PyTorch's other code path).  Every element is judged by the library's `compare`
    with the spec's per-element bound; the backward with a random upstream gradient by
    `tolerance`; within each row a larger logit must not get a smaller probability; and each
    row must sum to one within the sum of its elements' bounds."""
    t0 = time.perf_counter()
    fmt = _format(fmt)
    spec = target.spec
    if spec.name != "softmax":
        raise UsageError(f"sweep_softmax needs a softmax target, not {spec.name}")
    s = _subject(target, fmt, device, policy)
    n_total = (1 << fmt.bits) * row_length
    result = SweepResult(
        target=target.name, activation=spec.name, dtype=fmt.name, device=s.device,
        policy=s.policy.name, params={"row_length": row_length, "dims": list(dims)},
        coverage=(f"rows of {row_length} built from all {1 << fmt.bits:,} bit patterns, "
                  f"patterns {', '.join(patterns)}, dims {', '.join(map(str, dims))}"),
        n_inputs=n_total * len(patterns) * len(dims))
    if fmt.bits != 16:
        result.skipped = "softmax sweeps cover the 16-bit formats"
        return result
    if not target.supports(fmt, s.device):
        result.skipped = f"the target declares no support for {fmt.name} on {s.device}"
        return result
    canonical = not _is_canonical(target)
    try:
        for pattern in patterns:
            rows, v, col = softmax_rows(fmt, pattern, row_length, seed=seed)
            for dim in dims:
                params = {"dim": dim}
                if not target.accepts(params, 2):
                    result.notes.append(f"{pattern} dim {dim}: the target declares no "
                                        "support for this dim")
                    continue
                _softmax_case(result, s, rows, v, col, pattern, dim, canonical=canonical,
                              backward=backward and _backward_applies(target, params) is None,
                              seed=seed)
    except TargetMisbehaved as exc:
        result.error = exc.message
    if result.error is None:
        result.specials = _softmax_specials(s)
    result.elapsed_s = time.perf_counter() - t0
    return result


def _softmax_case(result: SweepResult, s: Subject, rows: torch.Tensor, v: torch.Tensor,
                  col: torch.Tensor, pattern: str, dim: int, *, canonical: bool,
                  backward: bool, seed: int) -> None:
    fmt = s.fmt
    label = f"{pattern} dim={dim}"
    x = rows.to(fmt.dtype)
    if dim == 0:
        x = x.t().contiguous()
    x = x.to(s.device)
    params = {"dim": dim}
    y = s.call(x, params)
    cmp, ref, bad, accepted = _judged(s, x, y, params)

    def as_rows(a):
        a = np.asarray(a)
        return a.T if dim == 0 else a

    xr = as_rows(s.values(x).reshape(x.shape))
    n_rows, n_cols = xr.shape

    def context(i: int) -> dict:
        row, column = (i % n_rows, i // n_rows) if dim == 0 else divmod(i, n_cols)
        return {"row_index": row, "column": column, "row": [float(a) for a in xr[row]]}

    acc = _PassAcc(f"forward {label}", fmt)
    err = acc.add_exact(x=x.reshape(-1), y=y.reshape(-1), ref=np.asarray(ref).reshape(-1),
                        cmp=_Flat(cmp), bad=np.asarray(bad).reshape(-1),
                        accepted=np.asarray(accepted).reshape(-1), context=context)
    err_rows = as_rows(err.reshape(x.shape))
    result.passes[acc.stats.name] = acc.finish()
    r_idx = torch.arange(rows.shape[0]).numpy()
    if pattern == "consecutive":
        result.arrays[f"{label}/x"] = v.numpy()
        result.arrays[f"{label}/err"] = err_rows.reshape(-1)
    else:
        result.arrays[f"{label}/x"] = v.numpy()
        result.arrays[f"{label}/err"] = err_rows[r_idx, col.numpy()]
        result.arrays[f"{label}/row_max"] = np.max(np.where(np.isfinite(err_rows), err_rows, 0),
                                                   axis=1)
    # order kept within each row; rows sum to one
    yr = as_rows(s.values(y).reshape(x.shape))
    refr = as_rows(np.asarray(ref).reshape(x.shape))
    defined = ~np.isnan(refr).any(axis=1)
    order = np.argsort(xr, axis=1, kind="stable")
    xs, ys = np.take_along_axis(xr, order, 1), np.take_along_axis(yr, order, 1)
    with np.errstate(invalid="ignore"):
        bad_pair = ((xs[:, 1:] > xs[:, :-1]) & ~(ys[:, 1:] >= ys[:, :-1])) & defined[:, None]
    bad_rows = np.flatnonzero(bad_pair.any(axis=1))
    order_acc = _CheckAcc(f"order {label}")
    order_acc.add(int(defined.sum()), bad_rows.size, [
        {"row": [float(a) for a in xr[r]], "output": [float(a) for a in yr[r]]}
        for r in bad_rows[:5]])
    result.checks[order_acc.stats.name] = order_acc.finish()
    bound = as_rows(np.broadcast_to(s.bound(x, params), x.shape))
    tol = (bound * ulp(refr, fmt)).sum(axis=1)
    total = yr.sum(axis=1, dtype=np.float64)
    finite_rows = np.isfinite(xr).all(axis=1)
    with np.errstate(invalid="ignore"):
        bad_sum = finite_rows & ~(np.abs(total - 1) <= tol)
    sum_acc = _CheckAcc(f"sums_to_one {label}")
    sum_acc.add(int(finite_rows.sum()), int(bad_sum.sum()), [
        {"row": [float(a) for a in xr[r]], "sum": float(total[r]), "tolerance": float(tol[r])}
        for r in np.flatnonzero(bad_sum)[:5]])
    result.checks[sum_acc.stats.name] = sum_acc.finish()
    if canonical:
        c = s.canonical(x, params)
        cacc = _CheckAcc(f"differs_from_canonical {label}", counts_for_ok=False)
        _bitwise_diff(cacc, fmt, x.reshape(-1), y.reshape(-1), c.reshape(-1),
                      np.asarray(ref).reshape(-1))
        result.checks[cacc.stats.name] = cacc.finish()
    if backward:
        g = _upstream(x.numel(), fmt, s.device, seed + 1).reshape(x.shape)
        judged = np.isfinite(s.values(x)).reshape(x.shape)
        judged = np.broadcast_to(judged.all(axis=dim, keepdims=True), x.shape)
        gx = gradient(s, x, g, params)
        with np.errstate(all="ignore"):
            gref, gbound = tolerance(s, x, g, params)
            gcmp = compare(gx.detach(), gref, fmt=fmt, bound=gbound, policy=s.policy,
                           zero_sign_specified=False)
        gacc = _PassAcc(f"backward g=random {label}", fmt)
        gacc.add_exact(x=x.reshape(-1), y=gx.reshape(-1), ref=np.asarray(gref).reshape(-1),
                       cmp=_Flat(gcmp), bad=np.asarray(gcmp.bad).reshape(-1),
                       accepted=np.zeros(x.numel(), dtype=bool), g=s.values(g).reshape(-1),
                       judged=judged.reshape(-1), context=context)
        result.passes[gacc.stats.name] = gacc.finish()


class _Flat:
    """A Comparison seen as flat arrays."""

    def __init__(self, cmp) -> None:
        self.error = np.asarray(cmp.error).reshape(-1)
        self.excused = np.asarray(cmp.excused).reshape(-1)
        self.bad = np.asarray(cmp.bad).reshape(-1)
        self.reason = np.asarray(cmp.reason, dtype=object).reshape(-1)
        b = np.asarray(cmp.bound)
        self.bound = b.reshape(-1) if b.size > 1 else b.reshape(-1)[:1]


def _softmax_specials(s: Subject) -> list[dict]:
    """Rows of only -inf, a row holding +inf, a row holding NaN, a masked row, zeros."""
    fmt, inf, nan = s.fmt, math.inf, math.nan
    cases = {"all -inf": [-inf] * 4, "one +inf": [1.0, inf, 0.0, -2.0],
             "one NaN": [1.0, nan, 0.0, -2.0], "masked (-inf) entries": [1.0, -inf, 0.0, -inf],
             "+0 and -0": [0.0, -0.0, 0.0, -0.0]}
    out = []
    for name, row in cases.items():
        x = torch.tensor([row], dtype=torch.float64).to(fmt.dtype).to(s.device)
        y = s.call(x, {"dim": -1})
        cmp, ref, bad, accepted = _judged(s, x, y, {"dim": -1})
        out.append({"name": name, "row": row, "y": s.values(y).reshape(-1).tolist(),
                    "expected": np.asarray(ref).reshape(-1).tolist(),
                    "ok": not bool(np.asarray(bad).any()),
                    "note": "accepted convention" if np.asarray(accepted).any() else ""})
    return out


# ------------------------------------------------------------------------------ run_sweep


def builtin_sweep_targets(activations: Iterable[str] | None = None) -> list[Target]:
    """PyTorch's canonical entry point of each activation (all of them by default)."""
    names = list(activations) if activations else list(registry())
    return [builtin_targets(get_spec(name))[0] for name in names]


def run_sweep(*, targets: Sequence[Target], dtypes: Sequence[str] = ("float16", "bfloat16"),
              device: str = "cpu", bit_range: tuple[int, int] | None = None,
              out_dir: str | Path | None = None, all_float32: bool = False,
              policy: Policy | str = DEFAULT, backward: bool | None = None, stride: int = 1,
              params: dict | None = None, report_format: Literal["html", "md"] = "html",
              progress: bool | None = None, echo: Callable[[str], None] | None = None
              ) -> list[SweepResult]:
    """Sweep every target on every dtype; write the report (HTML or Markdown + JSON) when
    `out_dir` is given; return the results (the CLI exits 0 when all are `.ok`).

    `backward=None`: checked, except in the all-float32 mode (forward only there).  Softmax
    targets get `sweep_softmax` on 16-bit formats; float32 softmax is reported as not checked.
    """
    policy = policy_named(policy)
    results = []
    for target in targets:
        for dtype in dtypes:
            fmt = _format(dtype)
            bw = (not (all_float32 and fmt.name == "float32")) if backward is None else backward
            if target.spec.elementwise:
                if fmt.bits == 64:
                    r = SweepResult(target=target.name, activation=target.activation,
                                    dtype=fmt.name, device=device, policy=policy.name,
                                    params=dict(params or {}), coverage="", n_inputs=0,
                                    skipped="float64 cannot be swept; use the property suite")
                else:
                    own = {p.name for p in target.spec.params}  # each activation its own
                    r = sweep_elementwise(target, fmt=fmt, device=device, policy=policy,
                                          params={k: v for k, v in (params or {}).items()
                                                  if k in own},
                                          backward=bw, bit_range=bit_range,
                                          stride=stride, all_float32=all_float32,
                                          progress=progress)
            else:
                r = sweep_softmax(target, fmt=fmt, device=device, policy=policy, backward=bw)
            if echo is not None:
                echo(r.summary())
            results.append(r)
    if out_dir is not None:
        write_report(results, out_dir, fmt=report_format)
    return results


# ------------------------------------------------------------------------------ report


def _key_ticks(fmt: FloatFormat) -> tuple[list[int], list[str]]:
    """Ticks for an axis with one step per representable value: 0, +-inf and powers of ten,
    thinned so that labels do not collide."""
    space = 1 << fmt.bits
    cands = [(0.0, "0"), (math.inf, "inf"), (-math.inf, "-inf")]
    lo = math.floor(math.log10(fmt.smallest_subnormal))
    hi = math.floor(math.log10(fmt.max))
    for k in range(lo + 1, hi + 1):
        cands += [(10.0**k, f"1e{k}" if k else "1"), (-(10.0**k), f"-1e{k}" if k else "-1")]
    chosen: list[tuple[int, str]] = []
    for v, label in sorted(cands, key=lambda c: (abs(c[0]) != 1, c[0] != 0, not math.isinf(c[0]),
                                                  abs(math.log10(abs(c[0])) % 5)
                                                  if c[0] and not math.isinf(c[0]) else 0)):
        key = _float_to_key(v, fmt)
        if all(abs(key - k) > space / 16 for k, _ in chosen):
            chosen.append((key, label))
    chosen.sort()
    return [k for k, _ in chosen], [label for _, label in chosen]


def _on_plot(value: float, err: np.ndarray) -> float:
    """The height a figure is drawn at: an infinite error (a NaN or an infinity for a number)
    where the plot draws its infinite markers, above every finite error."""
    if math.isfinite(value):
        return value
    finite = err[np.isfinite(err)]
    return max(1.0, float(finite.max()) * 2 if finite.size else 1.0)


def _yscale(ax, values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    if np.isinf(values).any():  # keep the infinite markers in view
        top = max(top, _on_plot(math.inf, values))
    if top <= 2:
        ax.set_ylim(-0.02, max(top * 1.15, 0.6))
    else:
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(-0.1, top * 3)


def _plot_elementwise(r: SweepResult, plt) -> list[tuple[str, bytes]]:
    fmt = float_format(r.dtype)
    figs = []
    a = r.arrays
    passes = [p for p in r.passes.values()]
    if "key" in a:
        fig, axes = plt.subplots(len(passes), 1, figsize=(10, 2.6 * len(passes)), squeeze=False)
        for ax, p in zip(axes[:, 0], passes):
            err = a.get(p.name)
            if err is None:
                continue
            key = a["key"]
            finite = np.isfinite(err)
            ax.scatter(key[finite], err[finite], s=1, c="tab:blue", rasterized=True,
                       label="ulp error")
            nonfin = np.isinf(err)
            if nonfin.any():
                top = max(1.0, float(np.nanmax(np.where(finite, err, 0))) * 2)
                ax.scatter(key[nonfin], np.full(nonfin.sum(), top), s=4, c="tab:orange",
                           marker="^", label="infinite (NaN/inf mismatch)")
            for w in p.worst[:5]:
                k = _float_to_key(w["x"], fmt)
                ax.scatter([k], [_on_plot(w["ulp_error"], err)], s=40, facecolors="none",
                           edgecolors="red")
            if p.max_at:
                k = _float_to_key(p.max_at["x"], fmt)
                ax.annotate(f"max {p.max_ulp:.3g} ulp at x={p.max_at['x']:.6g} "
                            f"({p.max_at['bits']})", (k, _on_plot(p.max_ulp, err)),
                            color="red", fontsize=8, xytext=(5, -12),
                            textcoords="offset points")
            for e in p.examples[:10]:
                k = _float_to_key(e["x"], fmt)
                ax.scatter([k], [min(e["ulp_error"], 1e30)], s=60, marker="x", c="red")
            _yscale(ax, np.concatenate([err, [p.max_ulp or 0.0]]))
            ticks, labels = _key_ticks(fmt)
            ax.set_xticks(ticks, labels, fontsize=7)
            ax.set_xlim(0, 1 << fmt.bits)
            ax.set_ylabel("ulp")
            ax.set_title(f"{r.target} {r.dtype}: {p.name} (one step per representable x)",
                         fontsize=9)
        fig.tight_layout()
        figs.append(("ulp error against x", _png(fig, plt)))
    elif "chunk_key" in a:
        fig, ax = plt.subplots(figsize=(10, 2.8))
        ax.scatter(a["chunk_key"], a["chunk_max"], s=3)
        ticks, labels = _key_ticks(fmt)
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlim(0, 1 << fmt.bits)
        _yscale(ax, a["chunk_max"])
        ax.set_ylabel("max ulp per chunk")
        ax.set_title(f"{r.target} {r.dtype}: forward, largest counted error per chunk of "
                     f"{FAST_CHUNK:,} inputs", fontsize=9)
        fig.tight_layout()
        figs.append(("ulp error against x (chunk maxima)", _png(fig, plt)))
    figs.append(("histogram", _plot_histogram(r, plt)))
    if "canonical_gap" in a and "key" in a:
        gap = a["canonical_gap"]
        diff = gap != 0
        fig, ax = plt.subplots(figsize=(10, 2.2))
        if diff.any():
            shown = np.where(np.isfinite(gap[diff]), gap[diff], 0)
            ax.scatter(a["key"][diff], shown, s=6, c="purple")
            _yscale(ax, shown)
        else:
            ax.text(0.5, 0.5, "bitwise identical to PyTorch's canonical kernel at every input"
                    if r.checks.get("differs_from_canonical", CheckStats("")).checked else
                    "the target is PyTorch's canonical kernel", ha="center", va="center",
                    transform=ax.transAxes)
        ticks, labels = _key_ticks(fmt)
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlim(0, 1 << fmt.bits)
        ax.set_ylabel("|kernel - canonical| (ulp)")
        ax.set_title(f"{r.target} {r.dtype}: inputs where the kernel differs from PyTorch's "
                     "canonical kernel", fontsize=9)
        fig.tight_layout()
        figs.append(("kernel vs PyTorch", _png(fig, plt)))
    return figs


def _plot_histogram(r: SweepResult, plt) -> bytes:
    fig, ax = plt.subplots(figsize=(10, 2.8))
    used = [i for i in range(N_BINS) if any(p.histogram[i] for p in r.passes.values())]
    last = max(used) + 1 if used else 4
    idx = np.arange(last)
    width = 0.8 / max(1, len(r.passes))
    for j, p in enumerate(r.passes.values()):
        ax.bar(idx + j * width, [p.histogram[i] for i in range(last)], width=width,
               label=p.name)
    ax.set_xticks(idx + 0.4 - width / 2, HIST_LABELS[:last], rotation=45, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("inputs")
    ax.set_title(f"{r.target} {r.dtype}: ULP error histogram", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig, plt)


def _plot_softmax(r: SweepResult, plt) -> list[tuple[str, bytes]]:
    fmt = float_format(r.dtype)
    labels = sorted({k.split("/")[0] for k in r.arrays if k.endswith("/err")})
    if not labels:
        return []
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, 2.3 * len(labels)), squeeze=False)
    ticks, tl = _key_ticks(fmt)
    for ax, label in zip(axes[:, 0], labels):
        v = r.arrays[f"{label}/x"]
        err = r.arrays[f"{label}/err"]
        key = order_key(fmt.bits_of(torch.from_numpy(v).to(fmt.dtype)).numpy(), fmt)
        fin = np.isfinite(err)
        ax.scatter(key[fin], err[fin], s=1, rasterized=True)
        inf = np.isinf(err)
        if inf.any():  # NaN where a number is due: an infinite error, drawn above the rest
            ax.scatter(key[inf], np.full(int(inf.sum()), _on_plot(math.inf, err)), s=4,
                       c="tab:orange", marker="^", label="infinite (NaN/inf mismatch)")
        p = r.passes.get(f"forward {label}")
        if p and p.max_at:
            k = _float_to_key(p.max_at["x"], fmt)
            ax.scatter([k], [_on_plot(p.max_ulp, err)], s=40, facecolors="none",
                       edgecolors="red")
            ax.annotate(f"max {p.max_ulp:.3g} ulp at x={p.max_at['x']:.6g}",
                        (k, _on_plot(p.max_ulp, err)), color="red", fontsize=8,
                        xytext=(5, -12), textcoords="offset points")
        _yscale(ax, np.concatenate([err, [p.max_ulp if p and p.max_ulp else 0.0]]))
        ax.set_xticks(ticks, tl, fontsize=7)
        ax.set_xlim(0, 1 << fmt.bits)
        ax.set_title(f"{r.target} {r.dtype}: softmax {label}, error at the swept value",
                     fontsize=9)
    fig.tight_layout()
    return [("ulp error against the swept value", _png(fig, plt)),
            ("histogram", _plot_histogram(r, plt))]


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _summary_rows(results: Sequence[SweepResult]) -> list[list[str]]:
    rows = []
    for r in results:
        fwd = r.passes.get("forward") or next(
            (p for k, p in r.passes.items() if k.startswith("forward")), None)
        bwd = [p for k, p in r.passes.items() if k.startswith("backward")]
        bmax = max((p for p in bwd if p.max_ulp is not None), key=lambda p: p.max_ulp,
                   default=None)
        checks = ", ".join(f"{c.name}: {c.violations}" for c in r.checks.values()
                           if c.checked and c.counts_for_ok)
        diffs = sum(c.violations for c in r.checks.values() if not c.counts_for_ok and c.checked)
        rows.append([
            r.target, r.activation, r.dtype, f"{r.n_inputs:,}",
            _num(fwd.max_ulp) + _bound_of(fwd) if fwd else "-",
            _num(fwd.max_at["x"]) if fwd and fwd.max_at else "-",
            str(sum(p.not_correctly_rounded for k, p in r.passes.items()
                    if k.startswith("forward"))),
            str(sum(p.policy_violations for p in r.passes.values())),
            _num(bmax.max_ulp) + _bound_of(bmax) + _own_of(bmax) if bmax else "-",
            _num(bmax.max_at["x"]) if bmax and bmax.max_at else "-",
            checks or "-", str(diffs), r.verdict + (f" ({r.skipped or r.error})"
                                                    if r.skipped or r.error else "")])
    return rows


_HEADERS = ["target", "activation", "dtype", "inputs", "fwd max ulp", "at x",
            "fwd not correctly rounded", "policy violations", "bwd max ulp", "at x",
            "whole-space checks (violations)", "inputs differing from canonical", "verdict"]


def write_report(results: Sequence[SweepResult], out_dir: str | Path, *,
                 fmt: Literal["html", "md"] = "html") -> Path:
    """Write `sweep.json` and `sweep.html` (self-contained, PNGs embedded) or `sweep.md`
    (PNGs beside it) into out_dir; returns the report's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "numpy": np.__version__,
            "machine": f"{platform.machine()} {os.cpu_count()} cpus", "python":
                platform.python_version()}
    data = {"schema": "actverify-sweep/1", "meta": meta, "ok": all(r.ok for r in results),
            "results": [r.to_dict() for r in results]}
    (out / "sweep.json").write_text(json.dumps(_clean(data), indent=1, allow_nan=False))
    sections = []
    for i, r in enumerate(results):
        figs = []
        if not r.skipped and not r.error:
            figs = (_plot_elementwise(r, plt) if get_spec(r.activation).elementwise
                    else _plot_softmax(r, plt))
        sections.append((r, figs, i))
    if fmt == "md":
        path = out / "sweep.md"
        plots = out / "plots"
        plots.mkdir(exist_ok=True)
        lines = ["# actverify sweep", "", f"torch {meta['torch']}, {meta['machine']}. "
                 f"Data: [sweep.json](sweep.json).", "",
                 "| " + " | ".join(_HEADERS) + " |", "|" + " --- |" * len(_HEADERS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in _summary_rows(results)]
        for r, figs, i in sections:
            lines += ["", f"## {r.target} ({r.activation}), {r.dtype}", "",
                      f"Coverage: {r.coverage}. Verdict: **{r.verdict}**.", ""]
            lines += _detail_md(r)
            for j, (title, png) in enumerate(figs):
                name = f"{i:02d}_{r.activation}_{r.dtype}_{j}.png"
                (plots / name).write_bytes(png)
                lines += ["", f"![{title}](plots/{name})"]
        path.write_text("\n".join(lines) + "\n")
        return path
    path = out / "sweep.html"
    html = [_HTML_HEAD, "<h1>actverify sweep</h1>",
            f"<p>torch {_esc(meta['torch'])}, {_esc(meta['machine'])}. Verdict: "
            f"<b>{'all ok' if data['ok'] else 'violations'}</b>. The data behind this page is "
            "embedded below and written to <code>sweep.json</code>.</p>",
            "<table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in _HEADERS) + "</tr>"]
    for row in _summary_rows(results):
        html.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    html.append("</table>")
    for r, figs, _ in sections:
        html.append(f"<h2>{_esc(r.target)} ({_esc(r.activation)}), {_esc(r.dtype)}</h2>")
        html.append(f"<p>Coverage: {_esc(r.coverage)}. Verdict: <b>{_esc(r.verdict)}</b>. "
                    f"Engine: {_esc(r.engine)}, {r.elapsed_s:.1f} s.</p>")
        html.append("<pre>" + _esc("\n".join(_detail_md(r))) + "</pre>")
        for title, png in figs:
            html.append(f"<figure><img alt='{_esc(title)}' src='data:image/png;base64,"
                        f"{base64.b64encode(png).decode()}'><figcaption>{_esc(title)}"
                        "</figcaption></figure>")
    html.append("<h2>JSON</h2><details><summary>sweep.json</summary><pre>"
                + _esc(json.dumps(_clean(data), indent=1, allow_nan=False)) + "</pre></details>")
    html.append("</body></html>")
    path.write_text("\n".join(html))
    return path


def _detail_md(r: SweepResult) -> list[str]:
    lines = []
    for note in r.notes:
        lines.append(f"- note: {note}")
    for p in r.passes.values():
        where = (f" at x = {p.max_at['x']!r} ({p.max_at['bits']})" if p.max_at else "")
        where += _bound_of(p) + _own_of(p)
        lines.append(f"- {p.name}: max {_num(p.max_ulp)} ulp{where}; "
                     f"{p.not_correctly_rounded:,} of {p.n:,} not correctly rounded; "
                     f"{p.policy_violations:,} policy violations; {p.excused:,} flushed "
                     f"(accepted); {p.accepted:,} by convention")
        for e in p.examples[:5]:
            lines.append(f"  - violation: x = {e['x']!r} ({e['bits']}): got {e['y']!r}, "
                         f"true {e['expected']!r}, {e['ulp_error']:.4g} ulp ({e['reason']})")
    for c in r.checks.values():
        if not c.checked:
            lines.append(f"- {c.name}: not checked ({c.why_not})")
            continue
        lines.append(f"- {c.name}: {c.violations:,} of {c.n:,}"
                     + ("" if c.counts_for_ok else " (information)"))
        for e in c.examples[:3]:
            lines.append(f"  - {json.dumps(_clean(e))}")
    for sp in r.specials:
        lines.append(f"- special {sp['name']}: y = {sp.get('y')!r}, expected "
                     f"{sp.get('expected')!r}: {'ok' if sp.get('ok') else 'WRONG'}"
                     + (f" ({sp['note']})" if sp.get("note") else ""))
    return lines


def _esc(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&#39;"))


_HTML_HEAD = """<!doctype html><html><head><meta charset="utf-8"><title>actverify sweep</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:1em auto}table{border-collapse:
collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}
pre{font-size:11px;white-space:pre-wrap}</style></head><body>"""


__all__ = ["sweep_elementwise", "sweep_softmax", "run_sweep", "write_report", "SweepResult",
           "PassStats", "CheckStats", "builtin_sweep_targets", "parse_bit_range",
           "plan_inputs", "order_key", "bits_of_key", "histogram", "histogram_bins",
           "HIST_EDGES", "HIST_LABELS", "SOFTMAX_PATTERNS", "softmax_rows"]
