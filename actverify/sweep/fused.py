"""The fused float32 engine: the kernel runs eagerly, the analysis of a chunk is one compiled
function built from the spec (its `fast_reference`, `defined`, symmetry and bound)."""

from __future__ import annotations

import heapq
import math
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from actverify.accuracy import overflow_threshold, reference_uncertainty, ulp
from actverify.dtypes import FloatFormat
from actverify.spec import ActivationSpec, FastReference
from actverify.sweep.histogram import HIST_EDGES, N_BINS, histogram_bins
from actverify.sweep.plan import (MAX_EXAMPLES, N_WORST_CHUNKS, EXACT_CHUNK, order_key,
                                  bits_of_key, _hex_at, _float_to_key, _keys_to_x)
from actverify.sweep.accumulate import End, _PassAcc, _State, mono_pair
from actverify.judgement import judge


# Each spec's `fast_reference` (float64 torch ops) drives the fused float32 pass.  It is never
# trusted blindly: `_validate_fast` compares the fused pass with the exact engine (the spec's
# numpy reference and `compare`) on a validation set before a sweep uses it, and every input
# the fused pass flags is judged again by the exact engine.


@dataclass(frozen=True)
class _FusedConfig:
    # What the analysis needs from the spec, as its own callables: the float64 torch reference
    # and where the true value is defined (None: wherever x is not NaN).
    reference: FastReference
    defined: Callable[[torch.Tensor, dict], torch.Tensor] | None
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
    # the spec's range keeps every reference below half the overflow threshold: the screen
    # need not test for overflow
    bounded: bool = False


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
    return cfg.defined(x, params) if cfg.defined is not None else ~_nan(x)


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
    ref = cfg.reference
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
    # as the exact engine's maximum: NaN inputs left out, a NaN result for a number (an
    # infinite error) counted
    counted = valid & ~excused & (xd == xd)
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


def _screen_half(cfg: _FusedConfig, y: torch.Tensor, r: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One output against its float64 reference, as the screen sees it: (y as float64, the
    plain |y - r| / ulp(r), the largest error that enters the maximum, whether anything needs
    looking at).  The flag is a few maxima compared once after the loop (an error above the
    allowance or NaN: the maximum is NaN-propagating; an overflowing reference), not a mask
    tested and blended into the maximum at every input: the masks and their conversions were
    10 of the pair screen's 32 ms per pair of 4 M-input halves."""
    yd = y.double()
    err = (yd - r).abs() * _inv_ulp(r, cfg)
    look = ~(err.max() <= cfg.allowed)
    if not cfg.bounded:
        look = look | ~(r.abs().max() < cfg.overflow)
    if cfg.zero_sign:
        look = look | ((yd == 0) & (r == 0) & (_negative(yd) != _negative(r))).any()
    return yd, err, _counted(cfg, yd, r, err).max(), look


def _inputs_look(cfg: _FusedConfig, x: torch.Tensor, xd: torch.Tensor, params: dict,
                 *, mirrored: bool) -> torch.Tensor:
    """Whether the inputs themselves need looking at: an infinite or NaN input (the symmetry
    check counts the finite ones), an input outside `defined` (the monotonicity chain breaks
    there), for x and, with `mirrored`, for -x as well."""
    look = torch.zeros((), dtype=torch.bool, device=x.device)
    if cfg.symmetry is not None:
        look = look | ~(xd.abs().max() < math.inf)
    if cfg.monotone and cfg.defined is not None:
        outside = ~cfg.defined(x, params)
        if mirrored:
            outside = outside | ~cfg.defined(-x, params)
        look = look | outside.any()
    return look


def _symmetry_look(cfg: _FusedConfig, xd: torch.Tensor, yd: torch.Tensor, ynd: torch.Tensor,
                   r: torch.Tensor, rn: torch.Tensor) -> torch.Tensor:
    """Whether f(-x) = 2c - f(x) may fail anywhere.  A sufficient form of the full pass's test,
    without the float64 -> int64 bit casts that inductor does not vectorize: below the
    overflow threshold ulp(v) > |v| 2^-p, so an input that passes here passes the bound
    (ulp(r) + ulp(rn)); a miss is only a flag, and the full pass decides.  The largest
    |f(-x) - (2c - f(x))| - tol is compared once after the loop: it is positive or NaN
    wherever the bound is not met (rounding keeps the sign of a difference)."""
    tol = cfg.bound * 2.0 ** -cfg.precision * (r.abs() + rn.abs())
    look = ~(((ynd - (2 * cfg.symmetry - yd)).abs() - tol).max() <= 0)
    if cfg.zero_sign and cfg.symmetry == 0:
        look = look | ((xd == 0) & (_negative(yd) == _negative(ynd))).any()
    return look


def _differs(y: torch.Tensor, y_canon: torch.Tensor) -> torch.Tensor:
    """Bitwise different from the canonical kernel (any NaN equals any NaN)."""
    return (y.view(torch.int32) != y_canon.view(torch.int32)) & ~(_nan(y) & _nan(y_canon))


def _counted(cfg: _FusedConfig, yd: torch.Tensor, r: torch.Tensor,
             err: torch.Tensor) -> torch.Tensor:
    """The screen's errors that enter the maximum: a flushed subnormal (a zero result for a
    reference below the smallest normal) is not "the worst input" (as in the full pass).
    Only unflagged chunks use this maximum, and there every error is within the allowance:
    a zero result for a reference of at least the smallest normal is 2^(p-1) ulps or more
    off, so with an allowance below that a zero result alone says "flushed" (the test of
    the reference cost a third of the pair screen's time)."""
    if not cfg.allow_flush:
        return err
    flushed = yd == 0
    if not cfg.allowed < 2.0 ** (cfg.precision - 1):
        flushed = flushed & (r.abs() < cfg.tiny)
    return torch.where(flushed, -1.0, err)


def _packed_counts(cfg: _FusedConfig, errs: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """error - u against the histogram edges below the bound (an unflagged chunk has nothing
    above it), two counts per int64 (a chunk holds fewer than 2^31 inputs): each mask sum
    costs a vector add per input, so fewer sums are faster.  One set of sums per tensor in
    `errs`: adding the two halves' terms of a pair before the sum made inductor store the
    terms and sum them in loops of their own (2.5x the pair screen's time)."""
    one = torch.ones((), dtype=torch.int64, device=errs[0].device)
    edges = _screened_edges(cfg)
    sums = []
    for err in errs:
        shifted = err - cfg.unc
        for i in range(0, len(edges), 2):
            packed = torch.where(shifted <= edges[i], one, 0)
            if i + 1 < len(edges):
                packed = packed + torch.where(shifted <= edges[i + 1], one << 32, 0)
            sums.append(packed.sum())
    return sums


def _screen(cfg: _FusedConfig, x: torch.Tensor, y: torch.Tensor, y_neg: torch.Tensor,
            y_canon: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The common chunk's pass: a full chunk (no padding) in which nothing needs looking at.

    Returns (the largest error, infinite where the chunk is flagged; the cumulative
    histogram counts below the bound, packed two to an int64).  The flag is raised by
    anything the plain |y - r| / ulp(r) and these counts do not settle: an error above the
    allowance (a violation, or a flushed subnormal to excuse), a NaN, an infinity or an
    overflowing reference (`accuracy.ulp_error`'s own rules), a zero whose sign counts, an
    input outside `defined`, an adjacent pair out of order, a symmetry miss, a bitwise
    difference from the canonical kernel.  A flagged chunk is analysed again by the full
    pass ("reduce" / "reduce_full" and "detail"); an unflagged one has no violations, all its
    pairs and finite inputs checked, and the counts given here.  The monotonicity test reads
    y[1:] against y[:-1] (two views: inductor vectorizes them, unlike a padded shifted load).
    `_validate_screen` holds this pass to the full one before a sweep uses it."""
    params = dict(cfg.params)
    xd = x.double()
    r, rn = cfg.reference(xd, params)
    yd, err, m, look = _screen_half(cfg, y, r)
    look = look | _inputs_look(cfg, x, xd, params, mirrored=False)
    if cfg.symmetry is not None:
        if rn is None:
            rn = cfg.reference(-xd, params)[0]
        look = look | _symmetry_look(cfg, xd, yd, y_neg.double(), r, rn)
    if cfg.canonical:
        look = look | _differs(y, y_canon).any()
    if cfg.monotone:
        look = look | (~(y[1:] >= y[:-1])).any()
    m = torch.where(look, math.inf, m)
    return (m, *_packed_counts(cfg, (err,)))


def _pair_screen(cfg: _FusedConfig, x: torch.Tensor, y: torch.Tensor, y_neg: torch.Tensor,
                 y_canon: torch.Tensor, c_neg: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`_screen` for a mirrored pair of full chunks: x the non-negative inputs (ascending),
    y = f(x) and y_neg = f(-x) (the mirror chunk, descending in value; every input through
    the kernel once).
    Both halves are judged (one float64 reference call gives f(x) and f(-x)), the symmetry
    check compares the two halves, and the monotonicity test runs over y ascending and y_neg
    descending.  Returns (the largest error of each half, both infinite where the pair is
    flagged; the cumulative histogram counts of both halves together, packed as `_screen`'s).
    `_validate_pair` holds this pass to the full one on each half before a sweep uses it."""
    params = dict(cfg.params)
    xd = x.double()
    r, rn = cfg.reference(xd, params)
    if rn is None:
        rn = cfg.reference(-xd, params)[0]
    yd, err, m, look = _screen_half(cfg, y, r)
    ynd, err_neg, m_neg, look_neg = _screen_half(cfg, y_neg, rn)
    look = (look | look_neg | _inputs_look(cfg, x, xd, params, mirrored=True)
            | _symmetry_look(cfg, xd, yd, ynd, r, rn))
    if cfg.canonical:
        look = look | (_differs(y, y_canon) | _differs(y_neg, c_neg)).any()
    if cfg.monotone:
        look = look | (~(y[1:] >= y[:-1])).any() | (~(y_neg[:-1] >= y_neg[1:])).any()
    m, m_neg = torch.where(look, math.inf, m), torch.where(look, math.inf, m_neg)
    return (m, m_neg, *_packed_counts(cfg, (err, err_neg)))


def _screened_edges(cfg: _FusedConfig) -> tuple[float, ...]:
    """The cumulative histogram edges the screen counts: those below the bound."""
    return tuple(e for e in _LE_EDGES if e < cfg.bound)


def _bounded(spec: ActivationSpec, params: dict, overflow: float) -> bool:
    """Whether the spec's range keeps the true value below half the overflow threshold."""
    if spec.range is None:
        return False
    lo, hi = spec.range(params)
    return max(abs(lo), abs(hi)) < overflow / 2


def _unpack_screen(packed: tuple, n: int, cfg: _FusedConfig, *, halves: int = 1) -> list[int]:
    """The counts vector of the full pass, for an unflagged screened chunk of n inputs (or
    the sum over both halves of a mirrored pair of such chunks, `halves=2`)."""
    low = (1 << 32) - 1
    edges = _screened_edges(cfg)
    per_half = len(packed) // halves  # `_packed_counts` gives each half's sums in turn
    le = [0] * len(edges)
    for h in range(halves):
        unpacked = [c for v in packed[h * per_half:(h + 1) * per_half]
                    for c in (int(v) & low, int(v) >> 32)]
        le = [a + b for a, b in zip(le, unpacked)]
    counts = [0] * (_C_LE + len(_LE_EDGES))
    counts[_C_MONON] = halves * (n - 1) if cfg.monotone else 0
    counts[_C_SYMN] = halves * n if cfg.symmetry is not None else 0
    counts[_C_LE:] = le + [halves * n] * (len(_LE_EDGES) - len(edges))
    return counts


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

    def __init__(self, state: _State, *, chunk: int, use_compile: bool,
                 paired: bool = False) -> None:
        """`paired`: the sweep visits a mirrored input set in pairs of chunks (`run_pair`);
        only with the symmetry check, whose f(-x) is then the mirror chunk's own output."""
        s = state.s
        self.state, self.chunk, self.device = state, chunk, s.device
        self.paired = paired and state.sym is not None
        bound = s.spec.bound(s.fmt).evaluate(np.zeros(1), state.params, s.fmt)
        bound = 0.5 if s.policy.correct_rounding else float(np.asarray(bound).ravel()[0])
        unc = reference_uncertainty(s.fmt)
        self.cfg = _FusedConfig(
            reference=s.spec.fast_reference, defined=s.spec.defined,
            params=tuple(sorted(state.params.items())),
            precision=s.fmt.precision, emin=s.fmt.emin, emax=s.fmt.emax, tiny=s.fmt.tiny,
            overflow=float(overflow_threshold(s.fmt)), allowed=bound + unc, unc=unc,
            bound=bound, allow_flush=s.policy.allow_flush,
            zero_sign=s.spec.zero_sign == "specified" or s.policy.zero_sign == "always",
            symmetry=s.spec.point_symmetry if state.sym is not None else None,
            canonical=state.canon is not None, monotone=state.mono is not None,
            bounded=_bounded(s.spec, state.params, float(overflow_threshold(s.fmt))))
        self.compiled = False
        cfg, device = self.cfg, self.device
        eager = {mode: _own_code(lambda *a, _m=mode: _fused(cfg, *a, mode=_m),
                                 f"_fused_{mode}_{len(_COMPILED)}")
                 for mode in ("reduce", "reduce_full", "argmax", "bins")}
        eager["screen"] = _own_code(lambda *a: _screen(cfg, *a[:4]),
                                    f"_fused_screen_{len(_COMPILED)}")
        eager["pair"] = _own_code(lambda *a: _pair_screen(cfg, *a),
                                  f"_fused_pair_{len(_COMPILED)}")
        self.passes = dict(eager)
        self.key = (cfg, chunk, device, self.paired)
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
                warnings.warn(f"torch.compile of the fused sweep pass failed "
                              f"({type(exc).__name__}: {exc}); running it eagerly",
                              RuntimeWarning, stacklevel=2)
                self.passes = dict(eager)
        self.engine = "fused-compiled" if self.compiled else "fused-eager"
        self._top: list[tuple[float, int, tuple]] = []  # the chunks with the largest maxima
        self._buffers: dict[str, torch.Tensor] = {}
        self._tick = 0
        self._pairs = 0  # mirrored pairs visited

    def _buffer(self, name: str, n: int, dtype: torch.dtype, *, size: int | None = None
                ) -> torch.Tensor:
        """A chunk-sized buffer of our own, reused from chunk to chunk: a fresh 16 MB tensor
        per chunk costs its page faults every time (the allocator hands large blocks back to
        the system), about a tenth of a sweep's time with the checks on."""
        size = self.chunk if size is None else size
        buf = self._buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.numel() < max(n, size):
            buf = self._buffers[name] = torch.empty(max(n, size), dtype=dtype,
                                                    device=self.device)
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
        if self.paired:
            self.passes["pair"](x, x, x, x, x)
        else:
            self.passes["screen"](x, x, x, x)

    def inputs(self, start: int, step: int, n: int, keys: torch.Tensor | None) -> torch.Tensor:
        """The chunk's inputs, padded to the compiled size by repeating the last one."""
        if keys is not None:
            x = _keys_to_x(keys, self.state.s.fmt, self.device)
        else:
            # A run lies in one sign half: its bit patterns are an arithmetic progression
            # (descending for negative values), i.e. one int32 arange.
            fmt = self.state.s.fmt
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
        state, s = self.state, self.state.s
        x = self.inputs(start, step, n, keys)
        y = s.call(x, state.params)
        y_neg = (s.call(torch.neg(x, out=self._buffer("neg", x.numel(), x.dtype)), state.params)
                 if self.cfg.symmetry is not None else y)
        y_canon = s.canonical(x, state.params) if self.cfg.canonical else y
        nvalid = torch.tensor(n, device=self.device)
        return (x, y, y_neg, y_canon, nvalid)

    def run_chunk(self, start: int, step: int, n: int, keys: torch.Tensor | None) -> torch.Tensor:
        """Analyse one chunk; returns its inputs (the first n are real)."""
        args = self._args(start, step, n, keys)
        where = (start, step, n, keys)
        if n == self.chunk:  # a full chunk: screen it first, most have nothing to look at
            m, *packed = self.fused("screen", *args[:4])
            m = float(m)
            if m < math.inf:
                counts = _unpack_screen(packed, n, self.cfg)
                self._tally(n, counts)
                self._locate(args[0], n, m, where)
                ends = self._checks(args, n, counts, None, below=self.state.carry.last,
                                    above=None)
                self.state.carry.last = ends[1]
                return args[0]
        ends = self._full(args, n, where, below=self.state.carry.last, above=None)
        self.state.carry.last = ends[1]
        return args[0]

    def _pair_inputs(self, start: int, step: int, n: int) -> torch.Tensor:
        """The pair's 2n inputs in one buffer: the n non-negative inputs from key `start`
        (ascending), then their negatives (the same bit patterns with the sign bit set, so
        descending in value); both are int32 aranges."""
        a = int(bits_of_key(start, self.state.s.fmt))
        bits = self._buffer("bits", 2 * n, torch.int32, size=2 * self.chunk)
        torch.arange(a, a + n * step, step, out=bits[:n])
        torch.arange(a - (1 << 31), a - (1 << 31) + n * step, step, out=bits[n:])
        return bits.view(torch.float32)

    def _pair_outputs(self, xp: torch.Tensor, xn: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The kernel's (and the canonical kernel's) outputs on both halves of a pair: one
        call per half, so that every input goes through the kernel once.  Not one call on
        both: a pair's 32 MB output is above glibc's largest mmap threshold, so each call got
        fresh pages from the system and paid a page fault per 4 KB (the kernel took 25 ms
        instead of 6 on a pair of 4 M-input halves); a half's 16 MB are reused from call to
        call, as the chunks in value order and the bare pass reuse theirs."""
        s, params = self.state.s, self.state.params
        yp, yn = s.call(xp, params), s.call(xn, params)
        if not self.cfg.canonical:
            return yp, yn, yp, yn
        return yp, yn, s.canonical(xp, params), s.canonical(xn, params)

    def run_pair(self, neg: tuple[int, int, int], pos: tuple[int, int, int]) -> torch.Tensor:
        """Analyse a mirrored pair of chunks (`_KeySet.mirror_chunks`, visited outward from
        zero), each input through the kernel once (`_pair_outputs`); returns the pair's 2n
        inputs.  An unflagged pair
        of full chunks is settled by the pair screen; otherwise each half is analysed by the
        full pass as a chunk of its own, in value order, with the other half's outputs as
        its f(-x)."""
        state, cfg = self.state, self.cfg
        n = pos[2]
        x2 = self._pair_inputs(pos[0], pos[1], n)
        xp, xn = x2[:n], x2[n:]
        yp, yn, cp, cn = self._pair_outputs(xp, xn)
        first_pair = self._pairs == 0  # its halves meet at zero: the seam pair
        self._pairs += 1
        Half = Callable[[End | None, End | None], tuple[End | None, End | None]]
        screened = False
        if n == self.chunk:
            m, m_neg, *packed = self.fused("pair", xp, yp, yn, cp, cn)
            m, m_neg = float(m), float(m_neg)
            screened = max(m, m_neg) < math.inf
        if screened:
            counts = _unpack_screen(packed, n, cfg, halves=2)
            self._tally(2 * n, counts)
            self._locate(xn, n, m_neg, (*neg, None), descending=True)
            self._locate(xp, n, m, (*pos, None))
            # the within-chunk counts of both halves go with the negative half; then each
            # half's pairs across its boundaries
            neg_half: Half = lambda below, above: self._checks(
                (xp, yp, yn, cp), 2 * n, counts, None, ends=self._ends(xn, yn, n - 1, 0),
                below=below, above=above)
            pos_half: Half = lambda below, above: self._checks(
                None, 0, None, None, ends=self._ends(xp, yp, 0, n - 1), below=below,
                above=above)
        else:
            nvalid = torch.tensor(n, device=self.device)
            neg_half = lambda below, above: self._full(
                (*(self._pad(t.flip(0)) for t in (xn, yn, yp, cn)), nvalid), n, (*neg, None),
                below=below, above=above)
            pos_half = lambda below, above: self._full(
                (*(self._pad(t) for t in (xp, yp, yn, cp)), nvalid), n, (*pos, None),
                below=below, above=above)
        carry = state.carry
        ends_neg = neg_half(None, carry.upper)  # the negative halves come descending
        carry.upper = ends_neg[0]
        if first_pair:
            carry.last = ends_neg[1]
        carry.last = pos_half(carry.last, None)[1]
        return x2

    def _pad(self, t: torch.Tensor) -> torch.Tensor:
        """A half of a pair at the compiled size, padded by repeating its last element (the
        padding is masked, as `inputs` pads a short chunk)."""
        if t.numel() == self.chunk:
            return t
        return torch.cat([t, t[-1:].expand(self.chunk - t.numel())])

    def _full(self, args: tuple, n: int, where: tuple, *, below: End | None,
              above: End | None) -> tuple[End | None, End | None]:
        """The full pass over one chunk in value order (its first n inputs real) and its
        accounting; returns the chunk's (first, last) monotonicity ends."""
        m, counts = self.fused("reduce", *args)
        counts = counts.tolist()
        if counts[_C_SPECIAL]:  # NaN, infinities, overflow: apply accuracy.ulp_error's rules
            m, counts = self.fused("reduce_full", *args)
            counts = counts.tolist()
        m = float(m)
        self._tally(n, counts, args)
        self._locate(args[0], n, m, where)
        detail = None
        if counts[_C_BAD] or counts[_C_MONO] or counts[_C_SYM] or counts[_C_DIFF]:
            detail = _fused(self.cfg, *args, mode="detail")
        if counts[_C_BAD]:
            self._violations(args[0], args[1], detail)
        return self._checks(args, n, counts, detail, below=below, above=above)

    def finish(self) -> None:
        """Find the worst input of each of the chunks with the largest maxima (their kernels
        run once more: cheaper than locating the maximum of every chunk)."""
        state, s = self.state, self.state.s
        fwd = state.forward
        for m, _, where in sorted(self._top, reverse=True):
            args = self._args(*where)
            _, i = self.fused("argmax", *args)
            i = int(i)
            x, y = args[0], args[1]
            ref = s.reference(x[i:i + 1], state.params)
            fwd.candidate_worst(m, fwd._describe(x[i:i + 1], y[i:i + 1], ref, np.array([m]),
                                                 0, None))

    def _tally(self, n: int, counts: list[int], args: tuple | None = None) -> None:
        """The pass's statistics and histogram for n inputs with these counts (`args`, the
        chunk, where the counts say that errors above 16 ulp need every input's bin)."""
        fwd = self.state.forward
        fwd.stats.n += n
        fwd.stats.not_correctly_rounded += n - counts[_C_LE + 1]  # error - u > 0.5
        fwd.stats.excused += counts[_C_EXCUSED]
        cum = np.asarray(counts[_C_LE:_C_LE + len(_LE_EDGES)])
        if cum[-1] < n:  # errors above 16 ulp (or infinite): every input's bin
            bins = self.fused("bins", *args)
            fwd.hist += np.bincount(bins.cpu().numpy(), minlength=N_BINS + 1)[:N_BINS]
        else:
            fwd.hist[:len(_LE_EDGES)] += np.diff(cum, prepend=0)

    def _locate(self, x: torch.Tensor, n: int, m: float, where: tuple, *,
                descending: bool = False) -> None:
        """The chunk's point of the per-chunk plot, and whether it is among the chunks whose
        worst input `finish` locates (`descending`: x holds the chunk in descending order,
        as the negative half of a pair)."""
        if m < 0:
            return
        state, fmt = self.state, self.state.s.fmt
        lo, hi, mid = (n - 1, 0, n - 1 - n // 2) if descending else (0, n - 1, n // 2)
        first = int(order_key(int(fmt.bits_of(x[lo:lo + 1].cpu())[0]), fmt))
        last = int(order_key(int(fmt.bits_of(x[hi:hi + 1].cpu())[0]), fmt))
        # for the per-chunk plot: the chunk's middle, its maximum
        state.chunk_points.append(((first + last) // 2, float(x[mid]), m))
        self._tick += 1
        item = (m, self._tick, (where[0], where[1], where[2], where[3]))
        if len(self._top) < N_WORST_CHUNKS:
            heapq.heappush(self._top, item)
        elif m > self._top[0][0]:
            heapq.heapreplace(self._top, item)

    def _violations(self, x: torch.Tensor, y: torch.Tensor, detail: dict) -> None:
        """The library's own verdict on every flagged input (conventions, reasons)."""
        state, s, fmt = self.state, self.state.s, self.state.s.fmt
        fwd = state.forward
        idx = torch.nonzero(detail["bad"]).flatten().cpu()
        for part in idx.split(EXACT_CHUNK):
            xs, ys = x[part.to(x.device)], y[part.to(x.device)]
            cmp, ref, bad, accepted = judge(s, xs, ys, state.params)
            acc = _PassAcc("tmp", fmt)
            acc.add_exact(x=xs, y=ys, ref=ref, cmp=cmp, bad=bad, accepted=accepted)
            fwd.stats.policy_violations += acc.stats.policy_violations
            fwd.stats.accepted += acc.stats.accepted
            for e in acc._examples:
                fwd.example(e[0], e[2])

    def _checks(self, args: tuple | None, n: int, counts: list[int] | None,
                detail: dict | None, *, below: End | None, above: End | None,
                ends: tuple[End | None, End | None] | None = None
                ) -> tuple[End | None, End | None]:
        """The whole-space checks' counts and examples for a chunk of n inputs in value order
        (`args`: its x, y, f(-x), canonical y; `counts` the pass's), monotonicity with the
        pairs across its boundaries: `below`, the end of the chunk just below in value order,
        `above`, that of the chunk just above, where already visited.  `args` None: only the
        boundaries of a chunk with these `ends`.  Returns the chunk's (first, last) ends."""
        state, s, fmt = self.state, self.state.s, self.state.s.fmt
        if args is not None and ends is None:
            ends = self._ends(args[0], args[1], 0, n - 1)
        if state.mono is not None:
            self._mono(args, counts, detail, ends, below, above)
        if args is None:
            return ends
        x, y, y_neg, y_canon = args[:4]
        if state.sym is not None:
            ex = []
            if counts[_C_SYM]:
                for j in torch.nonzero(detail["sym"]).flatten()[:MAX_EXAMPLES].tolist():
                    ex.append({"x": float(x[j]), "bits": _hex_at(x, j, fmt),
                               "f(x)": float(y[j]), "f(-x)": float(y_neg[j]),
                               "expected f(-x)": 2 * s.spec.point_symmetry - float(y[j])})
            state.sym.add(counts[_C_SYMN], counts[_C_SYM], ex, key=self._key("bits"))
        if state.canon is not None:
            ex = []
            if counts[_C_DIFF]:
                for j in torch.nonzero(detail["diff"]).flatten()[:MAX_EXAMPLES].tolist():
                    ref = float(detail["ref"][j])
                    u = float(ulp(np.array([ref]), fmt)[0])
                    ex.append({"x": float(x[j]), "bits": _hex_at(x, j, fmt),
                               "y": float(y[j]), "canonical": float(y_canon[j]),
                               "gap_ulp": abs(float(y[j]) - float(y_canon[j])) / u})
            state.canon.add(n, counts[_C_DIFF], ex, key=self._key("bits"))
        return ends

    def _key(self, field: str) -> Callable[[dict], int]:
        """An example's place in value order, from the bit pattern under `field`: the fused
        pass visits mirrored pairs outward from zero, and keeps the examples the exact
        engine (which visits in value order) keeps."""
        fmt = self.state.s.fmt
        return lambda e: int(order_key(int(e[field], 16), fmt))

    def _ends(self, x: torch.Tensor, y: torch.Tensor, lo: int, hi: int
              ) -> tuple[End | None, End | None]:
        """A chunk's lowest (x[lo]) and highest (x[hi]) inputs in value order with their
        outputs, each None where the true value is undefined (the monotonicity chain breaks
        there)."""
        state, fmt = self.state, self.state.s.fmt
        ref = state.s.reference(torch.stack([x[lo], x[hi]]), state.params)
        return tuple(None if np.isnan(r) else (float(x[i]), float(y[i]), _hex_at(x, i, fmt))
                     for i, r in ((lo, ref[0]), (hi, ref[1])))

    def _mono(self, args: tuple | None, counts: list[int] | None, detail: dict | None,
              ends: tuple[End | None, End | None], below: End | None,
              above: End | None) -> None:
        state, fmt = self.state, self.state.s.fmt
        ex, pairs, bad = [], 0, 0
        if args is not None:
            x, y = args[:2]
            pairs, bad = counts[_C_MONON], counts[_C_MONO]
            if bad:
                for j in torch.nonzero(detail["mono"]).flatten()[:MAX_EXAMPLES].tolist():
                    ex.append({"x_lo": float(x[j]), "bits_lo": _hex_at(x, j, fmt),
                               "y_lo": float(y[j]), "x_hi": float(x[j + 1]),
                               "bits_hi": _hex_at(x, j + 1, fmt),
                               "y_hi": float(y[j + 1])})
        # the pairs across the boundaries with the chunks below and above
        for lo, hi in ((below, ends[0]), (ends[1], above)):
            if lo is not None and hi is not None:
                pairs += 1
                found = mono_pair(lo, hi)
                if found is not None:
                    bad += 1
                    ex.append(found)
        state.mono.add(pairs, bad, ex, key=self._key("bits_lo"))


def _validate_fast(engine: _FastEngine, state: _State) -> str | None:
    """Run the fused pass and the exact engine on the same validation inputs (random bit
    patterns plus the thresholds' neighbourhoods; once without and once with infinities and
    NaN, so that both the plain and the full-rules pass are exercised); None if they agree,
    else what differs."""
    s, fmt = state.s, state.s.fmt
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
        problem = _validate_on(engine, state, keys)
        if problem:
            problems.append(problem)
    return "; ".join(problems) or None


def _validate_on(engine: _FastEngine, state: _State, keys: torch.Tensor) -> str | None:
    s, fmt = state.s, state.s.fmt
    x = engine.inputs(0, 0, keys.numel(), keys)
    nv = torch.tensor(keys.numel(), device=engine.device)
    y = s.call(x, state.params)
    y_neg = s.call(-x, state.params)
    args = (x, y, y_neg, y, nv)
    m, counts = engine.fused("reduce", *args)
    if counts.tolist()[_C_SPECIAL]:
        m, counts = engine.fused("reduce_full", *args)
    counts = counts.tolist()
    bins = engine.fused("bins", *args)
    xs, ys = x[:keys.numel()], y[:keys.numel()]
    cmp, ref, bad, accepted = judge(s, xs, ys, state.params)
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
    # the screen a sweep uses: the pair screen for a mirrored sweep, else the chunk screen
    problem = (_validate_pair(engine, xs) if engine.paired
               else _validate_screen(engine, args[:4]))
    if problem:
        problems.append(problem)
    return "; ".join(problems) or None


def _full_counts(engine: _FastEngine, args: tuple) -> tuple[float, list[int]]:
    """The full pass's maximum and counts for a (padded, so all valid) chunk."""
    full = (*args, torch.tensor(engine.chunk, device=engine.device))
    m, counts = engine.fused("reduce", *full)
    if counts.tolist()[_C_SPECIAL]:
        m, counts = engine.fused("reduce_full", *full)
    return float(m), counts.tolist()


_FLAGS = (_C_BAD, _C_EXCUSED, _C_MONO, _C_SYM, _C_DIFF)  # counts a screened chunk must not have


def _validate_pair(engine: _FastEngine, x: torch.Tensor) -> str | None:
    """The pair screen against the full pass on each half, for the magnitudes of the
    validation inputs x (ascending, padded) and their negatives: it must flag whatever the
    full pass finds on either half, and where it flags nothing give each half's maximum and
    the two halves' counts summed."""
    bits = torch.unique(x.view(torch.int32) & 0x7FFFFFFF)  # sorted: ascending magnitudes
    xp = engine._pad(bits.view(torch.float32))
    xn = -xp
    yp, yn, cp, cn = engine._pair_outputs(xp, xn)
    n = engine.chunk
    m, counts = _full_counts(engine, (xp, yp, yn, cp))
    m_neg, counts_neg = _full_counts(engine, tuple(t.flip(0) for t in (xn, yn, yp, cn)))
    sm, sm_neg, *packed = (float(v) if i < 2 else v for i, v in
                           enumerate(engine.fused("pair", xp, yp, yn, cp, cn)))
    if max(sm, sm_neg) < math.inf:
        if any(counts[c] or counts_neg[c] for c in _FLAGS):
            return (f"the pair screen flagged nothing where the full pass counts "
                    f"{counts[:_C_LE]} and {counts_neg[:_C_LE]}")
        screened = _unpack_screen(packed, n, engine.cfg, halves=2)
        summed = [a + b for a, b in zip(counts, counts_neg)]
        if (sm, sm_neg) != (m, m_neg) or screened != summed:
            return (f"the pair screen gives maxima {sm}, {sm_neg} and counts {screened}, the "
                    f"full pass {m}, {m_neg} and {summed}")
    return None


def _validate_screen(engine: _FastEngine, args: tuple) -> str | None:
    """The screen against the full pass on the same (padded, so all valid) chunk: it must
    flag whatever the full pass finds, and where it flags nothing give the same maximum and
    counts."""
    m, counts = _full_counts(engine, args)
    sm, *packed = engine.fused("screen", *args)
    if float(sm) < math.inf:
        if any(counts[c] for c in _FLAGS):
            return f"the screen flagged nothing where the full pass counts {counts[:_C_LE]}"
        screened = _unpack_screen(packed, engine.chunk, engine.cfg)
        if float(sm) != m or screened != counts:
            return (f"the screen gives max {float(sm)} and counts {screened}, the full pass "
                    f"{float(m)} and {counts}")
    return None
