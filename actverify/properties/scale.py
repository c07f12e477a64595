"""The regimes where real kernels break: tensors of 2^23 to 2^25 elements, more than 65,535
rows along the first and middle dimensions (a launch grid's y/z limit), rows longer than 2^16,
and element counts past 2^24 (indices computed in float32 are exact only up to there).

Checked in every run at little cost, by construction: a large tensor is tiled from a few
thousand distinct values (softmax: distinct rows), placed with a prime period so that every
position matters while values repeat.  The true value and the allowed interval are computed
once per distinct value, in the reference precision; every element of the large result is
screened against its interval in one vectorised pass, and any element outside is confirmed by
the project's one comparison (`actverify.accuracy.compare`), so the verdict is the accuracy
model's, not the screen's.

A regime is one deterministic tensor, so the check runs once per regime.  On a failure the
check itself shrinks the shape: it cuts every dimension to the first wrong element (keeping
softmax rows whole) and reports that shape if it still fails, so a float32-index bug ends at
2^24 + 2 elements and a grid-y bug at 65,536 rows.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import strategies as st

from actverify.accuracy import compare, ulp
from actverify.dtypes import FloatFormat
from actverify.properties.base import Subject, Violation, define
from actverify.strategies import Case, neighbourhood

# Prime periods: no SIMD width, tile, row length or power of two is a multiple of them, so a
# kernel that reads or writes the wrong position reads or writes a different value.
PERIOD = 4099
ROW_PERIODS = (4099, 1031, 257, 31, 7, 3)
MAX_BASE = 1 << 19  # distinct values held for the reference (softmax: rows x row length)
CONFIRM = 4096  # elements outside the screen confirmed exactly (each way: first, spread)
GRID_LIMIT = 65_535  # CUDA's y and z grid limit


@dataclass(frozen=True)
class Regime:
    """One large shape (and softmax dim) and the kernel bug class it is there for."""

    name: str
    shape: tuple[int, ...]
    dim: int | None  # softmax's dim; None for elementwise activations
    why: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


# Sizes: just past each limit.  One regime per activation holds 2^23 elements or more (past
# 2^24 for elementwise ones); the others stay near 2^21, so a subject costs about a second.
ELEMENTWISE = (
    Regime("past 2^24 elements", (2**24 + 2**16 + 3,), None,
           "flat indices computed in float32 (exact up to 2^24), 24-bit offsets"),
    Regime("rows along dim 0", (GRID_LIMIT + 466, 33), None,
           "more rows than a launch grid's y limit, along the first dimension"),
    Regime("rows along a middle dim", (2, GRID_LIMIT + 466, 17), None,
           "more rows than a launch grid's y limit, along a middle dimension"),
)
SOFTMAX = (
    Regime("rows along dim 0", (GRID_LIMIT + 466, 2, 17), 2,
           "more rows than a launch grid's y limit, along the first dimension"),
    Regime("rows along a middle dim", (2, GRID_LIMIT + 466, 17), 2,
           "more rows than a launch grid's y limit, along a middle dimension"),
    Regime("long rows on dim 0", (2**16 + 4465, 2, 9), 0,
           "rows longer than 2^16 (tiled rows, the last partial tile), softmax on dim 0"),
    Regime("long rows on a middle dim", (2, 2**16 + 4465, 9), 1,
           "rows longer than 2^16 (tiled rows, the last partial tile), softmax on dim 1"),
    Regime("long rows on the last dim", (64, 2**17 + 4097), -1,
           "rows longer than 2^16 along the last dimension, 2^23 elements in all"),
)


def regimes(s: Subject) -> tuple[Regime, ...]:
    """The regimes for this subject: softmax on every dim the target supports."""
    if s.spec.elementwise:
        return ELEMENTWISE
    return tuple(r for r in SOFTMAX
                 if s.supports({**s.spec.default_params(), "dim": r.dim}, len(r.shape)))


# ------------------------------------------------------------------------- distinct values


def _distinct_values(s: Subject, count: int) -> torch.Tensor:
    """`count` finite, non-zero values of the format: the spec's thresholds, a few ulps
    around them, and normal values over twenty-five binades, in a fixed shuffled order."""
    fmt = s.fmt
    g = torch.Generator().manual_seed(0)
    near = torch.tensor(neighbourhood(fmt, s.spec.thresholds(fmt), ulps=16), dtype=torch.float64)
    scales = 2.0 ** torch.randint(-12, 13, (count,), generator=g).double()
    spread = torch.randn(count, generator=g, dtype=torch.float64) * scales
    both = torch.cat([near, spread]).to(fmt.dtype)
    both = both[torch.isfinite(both) & (both != 0)]
    return both[torch.randperm(both.numel(), generator=g)][:count]


def _distinct_rows(s: Subject, rows: int, n: int) -> torch.Tensor:
    """`rows` distinct finite softmax rows of length n, at scales from 1/4 to 16."""
    g = torch.Generator().manual_seed(0)
    scale = 2.0 ** torch.randint(-2, 5, (rows, 1), generator=g).double()
    return (torch.randn(rows, n, generator=g, dtype=torch.float64) * scale).to(s.fmt.dtype)


def base_for(s: Subject, regime: Regime) -> torch.Tensor:
    """The distinct units of a regime, (period, row length): one value per unit for
    elementwise activations, one row per unit for softmax."""
    if regime.dim is None:
        return _distinct_values(s, PERIOD)[:, None]
    n = regime.shape[regime.dim]
    period = next(p for p in ROW_PERIODS if p * n <= MAX_BASE)
    return _distinct_rows(s, period, n)


def _rows_shape(shape: tuple[int, ...], dim: int | None) -> tuple[tuple[int, ...], int]:
    """The shape without the softmax dim (elementwise: the whole shape) and the row length."""
    if dim is None:
        return shape, 1
    d = dim % len(shape)
    return shape[:d] + shape[d + 1:], shape[d]


# The memory of the elementwise regimes' inputs (as bytes, as large as the largest yet),
# written again by every `tile`.  Why: a fresh tensor of tens of MB is mapped page by page on
# first touch, which took eight times as long as writing its values (2^24 float32 elements:
# 34 ms against 4), and every entry point and dtype of an activation tiles the same sizes.
# Every call writes every element it returns, so nothing a kernel did to its input carries
# over.
_KEPT: list[torch.Tensor] = []


def _kept(count: int, dtype: torch.dtype) -> torch.Tensor:
    """A 1-d tensor of `count` elements of `dtype` in the kept memory (grown to fit)."""
    size = count * torch.empty((), dtype=dtype).element_size()
    if not _KEPT or _KEPT[0].numel() < size:
        _KEPT[:] = [torch.empty(size, dtype=torch.uint8)]
    return _KEPT[0][:size].view(dtype)


def tile(base: torch.Tensor, shape: tuple[int, ...], dim: int | None) -> torch.Tensor:
    """A contiguous tensor of `shape` whose r-th row (elementwise: r-th element, in memory
    order) is base[r % period].  Elementwise regimes get the kept memory of `_KEPT`: valid
    until the next call."""
    outer, n = _rows_shape(shape, dim)
    count = math.prod(outer)
    period = base.shape[0]
    if dim is None:
        flat, whole = _kept(count, base.dtype), count // period * period
        flat[:whole].view(-1, period).copy_(base.view(1, period).expand(whole // period, -1))
        flat[whole:].copy_(base[:count - whole, 0])
        return flat.view(shape)
    flat = base.repeat(-(-count // period), 1)[:count]
    return flat.reshape(*outer, n).movedim(-1, dim % len(shape)).contiguous()


def as_rows(t: torch.Tensor, dim: int | None) -> torch.Tensor:
    """(rows, row length) in the order `tile` fills them."""
    if dim is None:
        return t.reshape(-1, 1)
    return t.movedim(dim, -1).reshape(-1, t.shape[dim])


# --------------------------------------------------------------------------------- screen


def _directed(values: np.ndarray, dtype: torch.dtype, *, up: bool) -> torch.Tensor:
    """The values rounded into `dtype` toward the inside of the interval they bound, so that
    a result inside the rounded interval is inside the true one."""
    exact = torch.from_numpy(np.asarray(values, dtype=np.float64))
    rounded = exact.to(dtype)
    outside = (rounded < exact) if up else (rounded > exact)
    step = torch.full_like(rounded, math.inf if up else -math.inf)
    return torch.where(outside, torch.nextafter(rounded, step), rounded)


@dataclass
class Expectation:
    """What every element of a regime's result must be, per distinct unit."""

    ref: np.ndarray  # true values, (period, n), reference precision
    bound: np.ndarray  # allowed ulps, (period, n)
    lo: torch.Tensor  # the allowed interval in the screen's working dtype
    hi: torch.Tensor


def _working_dtype(fmt: FloatFormat) -> torch.dtype:
    # 16-bit values are exact in float32; float32 screens in float32 with directed bounds.
    return torch.float64 if fmt.bits == 64 else torch.float32


_EXPECTED: dict[tuple, Expectation] = {}  # per (activation, format, policy, units): reused
_KEEP = 8  # by every entry point of an activation and by Hypothesis's replays


def expectation(s: Subject, base: torch.Tensor, params: dict) -> Expectation:
    key = (s.spec.name, s.fmt.name, s.policy, tuple(base.shape), tuple(sorted(params.items())),
           s.fmt.bits_of(base).numpy().tobytes())
    if key not in _EXPECTED:
        if len(_EXPECTED) >= _KEEP:
            _EXPECTED.pop(next(iter(_EXPECTED)))
        _EXPECTED[key] = _expectation(s, base, params)
    return _EXPECTED[key]


def _expectation(s: Subject, base: torch.Tensor, params: dict) -> Expectation:
    row_params = {**params, "dim": -1} if "dim" in params else params
    ref = s.reference(base, row_params)
    bound = np.asarray(s.bound(base, row_params), dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        slack = bound * ulp(ref, s.fmt)
        lo, hi = ref - slack, ref + slack
    if s.policy.allow_flush:  # a subnormal true value may flush to zero
        tiny = np.abs(ref) < s.fmt.tiny
        lo, hi = np.where(tiny, np.minimum(lo, 0), lo), np.where(tiny, np.maximum(hi, 0), hi)
    wd = _working_dtype(s.fmt)
    return Expectation(ref, bound, _directed(_inward_float64(lo, up=True), wd, up=True),
                       _directed(_inward_float64(hi, up=False), wd, up=False))


def _inward_float64(v: np.ndarray, *, up: bool) -> np.ndarray:
    """Bounds `v` (float64, or extended for float64 outputs) as float64 values, rounded toward
    the inside of the interval only where rounding to nearest went outside it: a float64
    result is within v exactly when it is within these.

    Why not one step inward everywhere: an exact bound (ReLU's, 0 ulp) then became an empty
    interval, every element of a large result was flagged, and only the CONFIRM suspects
    were confirmed, so a wrong element elsewhere could go unseen (and the screen cost a
    nonzero over every element of every float64 regime)."""
    if v.dtype == np.float64:
        return v
    with np.errstate(over="ignore", invalid="ignore"):
        nearest = v.astype(np.float64)
        outside = (nearest < v) if up else (nearest > v)  # compared in extended precision
        return np.where(outside, np.nextafter(nearest, np.inf if up else -np.inf), nearest)


# Elements screened at a time.  Why: the screen's temporaries (the results converted to the
# working dtype, two masks) were fresh allocations of the whole result's size, and a fresh
# allocation of tens of MB is mapped page by page on first touch: that was most of the
# screen's time.  Chunks of a few MB are reused from the heap instead (and stay in cache).
SCREEN_ELEMENTS = 1 << 20


def _outside(rows: torch.Tensor, exp: Expectation) -> torch.Tensor | None:
    """Bool (rows, n): results outside their unit's interval (NaN is outside); None where
    every result is inside."""
    period, n = exp.lo.shape
    # Whole periods per chunk, so that row r of a chunk is unit r % period.
    step = max(1, SCREEN_ELEMENTS // (period * n)) * period
    found = None
    for start in range(0, rows.shape[0], step):
        chunk = rows[start:start + step].to(exp.lo.dtype)
        whole = chunk.shape[0] // period * period
        ok = torch.empty(chunk.shape, dtype=torch.bool)
        # Whole periods broadcast against the intervals; the rest against their first rows.
        for part, lo, hi in ((slice(0, whole), exp.lo, exp.hi),
                             (slice(whole, None), exp.lo[:chunk.shape[0] - whole],
                              exp.hi[:chunk.shape[0] - whole])):
            shape = (-1, *lo.shape) if part.start == 0 else lo.shape
            if not ok[part].numel():
                continue
            y, out = chunk[part].view(shape), ok[part].view(shape)
            torch.ge(y, lo, out=out)
            out &= y <= hi
        if not bool(ok.all()):
            if found is None:
                found = torch.zeros(rows.shape, dtype=torch.bool)
            found[start:start + chunk.shape[0]] = ok.logical_not_()
    return found


def _suspects(bad: torch.Tensor) -> torch.Tensor:
    """Flat positions to confirm: the first CONFIRM flagged and CONFIRM spread over the rest."""
    flagged = torch.nonzero(bad.reshape(-1)).flatten()
    if flagged.numel() <= 2 * CONFIRM:
        return flagged
    spread = flagged[torch.linspace(0, flagged.numel() - 1, CONFIRM).long()]
    return torch.unique(torch.cat([flagged[:CONFIRM], spread]))


@dataclass
class Wrong:
    """The first confirmed wrong element of a result."""

    index: tuple[int, ...]
    x: float
    expected: float
    actual: float
    error: float
    bound: float
    count: int  # confirmed wrong among those confirmed
    flagged: int  # outside the screen


def first_wrong(s: Subject, base: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                dim: int | None, exp: Expectation) -> Wrong | None:
    """Screen every element of y, confirm the suspects with `compare`; None if all hold."""
    y_rows = as_rows(y.cpu(), dim)
    bad = _outside(y_rows, exp)
    if bad is None:
        return None
    n = y_rows.shape[1]
    where = _suspects(bad)
    r, j = where // n, where % n
    unit = r % exp.ref.shape[0]
    ref = exp.ref[unit.numpy(), j.numpy()]
    bound = exp.bound[unit.numpy(), j.numpy()]
    actual = y_rows[r, j]
    cmp = compare(actual, ref, fmt=s.fmt, bound=bound, policy=s.policy,
                  zero_sign_specified=s.spec.zero_sign == "specified")
    confirmed = cmp.bad
    if s.spec.accepted is not None and s.policy.nan == "spec" and dim is None:
        confirmed = confirmed & ~s.spec.accepted(s.values(base[unit, j]),
                                                 s.values(actual), {})
    if not confirmed.any():
        return None
    k = int(np.argmax(confirmed))
    outer, _ = _rows_shape(tuple(x.shape), dim)
    index = list(np.unravel_index(int(r[k]), outer)) if outer else []
    if dim is not None:
        index.insert(dim % x.ndim, int(j[k]))
    return Wrong(index=tuple(int(i) for i in index), x=float(base[unit[k], j[k]]),
                 expected=float(ref[k]), actual=float(actual[k]), error=float(cmp.error[k]),
                 bound=float(bound[k]), count=int(confirmed.sum()), flagged=int(bad.sum()))


# ---------------------------------------------------------------------------------- check


def scale_cases(s: Subject) -> st.SearchStrategy[Case]:
    """One case per regime: the distinct units, with the shape and dim as knobs.  The strategy
    is finite, so Hypothesis runs each regime once and stops."""
    def case(regime: Regime) -> Case:
        params = s.spec.default_params()
        if regime.dim is not None:
            params["dim"] = regime.dim
        return Case(base_for(s, regime), params,
                    knobs={"shape": tuple(regime.shape), "regime": regime.name})
    return st.sampled_from(regimes(s)).map(case)


def _run(s: Subject, base: torch.Tensor, shape: tuple[int, ...], params: dict,
         exp: Expectation) -> Wrong | None:
    dim = params.get("dim")
    x = tile(base, shape, dim).to(s.device)
    y = s.call(x, params)
    return first_wrong(s, base, x, y, dim, exp)


def _cuts(shape: tuple[int, ...], d: int | None, index: tuple[int, ...]
          ) -> list[tuple[int, ...]]:
    """Smaller shapes of a regime that still hold the element at `index` (softmax rows kept
    whole), smallest first: every dimension cut to the element, then one at a time.  The
    check reports the first that still fails, so shrinking ends at a minimal failing shape
    without Hypothesis re-running a large tensor per step."""
    def cut(dims) -> tuple[int, ...]:
        return tuple(index[i] + 1 if i in dims and i != d else shape[i]
                     for i in range(len(shape)))
    tried = {cut(range(len(shape)))} | {cut((i,)) for i in range(len(shape))}
    return sorted((c for c in tried if c != shape), key=math.prod)


@define("scale", summary="results stay within the accuracy bound at every position of tensors "
     "of 2^23 to 2^25 elements, past 2^24 elements, with more than 65,535 rows along the first "
     "and middle dimensions and (softmax, on every dim) rows longer than 2^16",
     applies=lambda t: t.max_elements is None, inputs=scale_cases)
def scale(s: Subject, case: Case) -> None:
    params = case.params
    shape, dim = tuple(case.knobs["shape"]), params.get("dim")
    exp = expectation(s, case.x, params)
    wrong = _run(s, case.x, shape, params, exp)
    if wrong is None:
        return
    for smaller in _cuts(shape, None if dim is None else dim % len(shape), wrong.index):
        found = _run(s, case.x, smaller, params, exp)
        if found is not None:
            shape, wrong = smaller, found
            break
    # The index is stated in the message: the case's tensor holds the distinct units only.
    raise Violation(
        f"wrong result at index {wrong.index} of a tensor of shape {shape} "
        f"({case.knobs['regime']}; {wrong.count} of {wrong.flagged} flagged elements "
        f"confirmed, ulp error {wrong.error:.4g} above the bound {wrong.bound:g})",
        x=wrong.x, expected=wrong.expected, actual=wrong.actual, ulp_error=wrong.error,
        case=dataclasses.replace(case, knobs={**case.knobs, "shape": shape}),
        details={"shape": str(shape), "bound": wrong.bound, "regime": case.knobs["regime"]})


