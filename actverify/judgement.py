"""Verdicts: whether a result is right, in one place.

`actverify.accuracy` is the accuracy model (ULP error, policies, `compare` of one result with
one reference).  This module applies it to what a subject computed: the forward result against
the reference with the spec's conventions, the gradient against the analytic derivative with
the error carried from the forward, kinks, two paths to the same values, identities with a
partner activation, point symmetry.  Properties (`actverify/properties/`) and sweeps
(`actverify/sweep/`) both call these functions and re-implement none of them, so a sweep and a
property can never disagree about what counts as wrong (tests/test_sweep.py holds them to one
verdict on planted cases).

Conventions.  Where IEEE evaluation gives NaN the default policy also accepts what a spec
documents (`ActivationSpec.accepted`: step(NaN) = 0, zeros for a softmax row of only -inf,
the limit for a row holding +inf).  Two results that each follow one of them agree, although
one may be NaN and the other a number.  A backward through such an element is NaN (through the
undefined value, as PyTorch's softmax backward is) or 0 (the derivative of the constant the
convention returns, as torch._safe_softmax's is).  The strict policy accepts none of them.

Every function takes the subject (target, format, device, policy) first and plain arrays or
tensors after it; none of them calls the target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from actverify.accuracy import Comparison, Policy, compare, ulp
from actverify.dtypes import FloatFormat, float_format
from actverify.spec import ActivationSpec, Relation, get_spec

if TYPE_CHECKING:  # the subject is defined beside the properties, which import this module
    from actverify.properties.base import Subject


# ------------------------------------------------------------------------------ allowances

def allowance(spec: ActivationSpec, fmt: FloatFormat, policy: Policy, x_ref: np.ndarray,
              y_true: np.ndarray, params: dict) -> np.ndarray:
    """Absolute error allowed for `spec`'s result at x_ref (true value y_true) under `policy`:
    its ulp bound (half an ulp under strict), or all of it where the policy lets a subnormal
    true value flush to zero.  Exact activations (bound 0: the result is the input, zero or
    one) compute nothing that could underflow, so no flush is excused for them."""
    if policy.correct_rounding:
        ulps = np.asarray(0.5)
    else:
        ulps = np.asarray(spec.bound(fmt).evaluate(x_ref, params, fmt), dtype=np.float64)
    allowed = ulps * ulp(y_true, fmt)
    if policy.allow_flush:
        flushable = (np.abs(y_true) < fmt.tiny) & (ulps > 0)
        allowed = np.where(flushable, np.maximum(np.abs(y_true), allowed), allowed)
    return allowed


def forward_allowance(s: Subject, x: torch.Tensor, y_true: np.ndarray, params: dict
                      ) -> np.ndarray:
    """How far the forward output a backward may have saved is allowed to be from the truth:
    its ulp bound, or all of it where the policy lets a subnormal result flush to zero."""
    return allowance(s.spec, s.fmt, s.policy, s.values(x), y_true, params)


# ------------------------------------------------------------------------------ conventions

def stated(spec: ActivationSpec, policy: Policy, x_ref: np.ndarray, y: np.ndarray,
           params: dict) -> np.ndarray:
    """Outputs of `spec` (a partner activation's too) that its documented conventions accept
    under `policy` (its `accepted`: step(NaN) = 0, PyTorch's gelu(+inf) = NaN, ...)."""
    if spec.accepted is None or policy.nan != "spec":
        return np.zeros(np.shape(x_ref), dtype=bool)
    return np.asarray(spec.accepted(x_ref, y, params), dtype=bool)


def conventional(s: Subject, x: torch.Tensor, values: torch.Tensor, params: dict, *,
                 backward: bool = False) -> np.ndarray:
    """Bool mask: elements of `values` (the activation's results at x, or with `backward` a
    gradient at x) that the policy accepts by convention: where the true value is undefined,
    and where the spec states a convention (its `accepted`, its derivative's `accepted`)."""
    shape = tuple(x.shape)
    found = np.zeros(shape, dtype=bool)
    if s.policy.nan != "spec":
        return found
    xv, v = s.values(x).reshape(shape), s.values(values).reshape(shape)
    d = s.spec.derivative
    if backward and d is not None and d.accepted is not None:
        found |= np.asarray(d.accepted(xv, v, params, s.fmt), dtype=bool).reshape(shape)
    if s.spec.accepted is None:
        return found
    undefined = np.isnan(s.reference(x, params)).reshape(shape)
    if backward:
        # A NaN input has no derivative under any convention: only undefined values of
        # non-NaN inputs (a softmax row of -inf, a row holding +inf).
        return found | (undefined & ~np.isnan(xv) & (np.isnan(v) | (v == 0)))
    return found | (undefined & np.isnan(v)) | stated(s.spec, s.policy, xv, v, params)


def both_conventional(s: Subject, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                      params: dict, *, backward: bool = False) -> np.ndarray:
    """Elements where two results (a kernel's and PyTorch's, or two paths) each follow a
    convention the policy accepts: they agree there, whichever each chose."""
    return (conventional(s, x, a, params, backward=backward)
            & conventional(s, x, b, params, backward=backward))


# ------------------------------------------------------------------------------ forward

class Judged(NamedTuple):
    """A result judged: the comparison, the true values, the elements that are wrong, and
    those a convention (or a subgradient at a kink) accepts, left out of the error figures."""

    comparison: Comparison
    reference: np.ndarray
    bad: np.ndarray
    accepted: np.ndarray


def judge(s: Subject, x: torch.Tensor, y: torch.Tensor, params: dict) -> Judged:
    """The forward result y at x against the reference under the subject's policy;
    conventions accepted under the default policy."""
    ref = s.reference(x, params)
    cmp = compare(y, ref, fmt=s.fmt, bound=s.bound(x, params), policy=s.policy,
                  zero_sign_specified=s.spec.zero_sign == "specified")
    accepted = stated(s.spec, s.policy, s.values(x), s.values(y).reshape(ref.shape), params)
    return Judged(cmp, ref, cmp.bad & ~accepted, accepted)


def point_symmetry_bad(s: Subject, x: torch.Tensor, y: np.ndarray, y_neg: np.ndarray,
                       ref: np.ndarray, ref_neg: np.ndarray, params: dict) -> np.ndarray:
    """f(-x) = 2c - f(x) within both sides' accuracy bounds at every finite x (a NaN f(-x)
    for a finite x fails too), and the sign of zero where the spec or policy specifies it.
    y, y_neg: the results at x and -x in the reference precision; ref, ref_neg: the truth."""
    c = s.spec.point_symmetry
    b = s.bound(x, params)
    tol = b * ulp(ref, s.fmt) + b * ulp(ref_neg, s.fmt)
    xv = s.values(x)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(xv) & ~(np.abs(y_neg - (2 * c - y)) <= tol)
    if s.spec.zero_sign == "specified" or s.policy.zero_sign == "always":
        bad |= (xv == 0) & (np.signbit(y) == np.signbit(y_neg)) & (c == 0)
    return bad


def relation_bad(s: Subject, rel: Relation, *, x: torch.Tensor, y: torch.Tensor,
                 u: torch.Tensor, g: torch.Tensor, params: dict, partner_params: dict
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Where y = f(x) breaks the identity `rel` with its partner's result g = partner(u), u the
    inner argument rounded to the format as a kernel built on the partner gets it; and the
    right-hand side.  Each side may be off by its own allowance; the partner's through
    |d outer / d g|, and where u was rounded, the partner's slope times the rounding."""
    partner = s.spec if rel.partner is None else get_spec(rel.partner)
    xr, ur, u_exact = s.values(x), s.values(u), rel.inner(s.values(x))
    with np.errstate(invalid="ignore", over="ignore"):
        rhs = rel.outer(xr, s.values(g))
        gain = rel.gain(xr)
        tol = (allowance(s.spec, s.fmt, s.policy, xr, s.reference(x, params), params)
               + gain * allowance(partner, s.fmt, s.policy, ur,
                                  partner.reference(ur, **partner_params), partner_params))
        if not np.all(ur == u_exact):  # the partner ran at a rounded argument: carry g'
            if partner.derivative is None or partner.derivative.first is None:
                tol = np.where(ur == u_exact, tol, np.inf)
            else:
                slope = np.abs(partner.derivative.first(u_exact, **partner_params))
                drift = np.where(slope == 0, 0.0, slope * np.abs(ur - u_exact))
                tol = tol + gain * np.nan_to_num(drift, nan=np.inf)
        bad = ~(np.abs(s.values(y) - rhs) <= tol)
    # Results a documented convention accepts (PyTorch's gelu(x) = inf past half of float32's
    # range) say nothing about the identity: leave them out, on either side.
    bad &= ~(stated(s.spec, s.policy, xr, s.values(y), params)
             | stated(partner, s.policy, ur, s.values(g), partner_params))
    return bad, rhs


# ------------------------------------------------------------------------------ two paths

def disagreement(s: Subject, x: torch.Tensor, y: torch.Tensor, expected: torch.Tensor,
                 params: dict, *, allowance: tuple[np.ndarray, np.ndarray] | None = None,
                 upstream: torch.Tensor | None = None, backward: bool = False
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Where two ways of computing the same values disagree beyond the policy; and the gap in
    ulps of the true value where they differ (None under strict, which compares bits).

    Strict: bit for bit.  Default: by at most two accuracy bounds, 2 B(x) ulps of the true
    value: each of the two results may be B off the truth, on either side (a kernel's vector
    body and scalar tail round differently in PyTorch's CPU sigmoid, docs/findings.md).
    Activations with a zero bound (ReLU, step) stay bit for bit under both.  `allowance`
    gives (true values, allowed ulps) for other quantities; `upstream`, for gradients with
    that upstream gradient, has them computed as `tolerance` (`backward`).
    Where the true value is undefined, two results that each follow a convention the policy
    accepts agree, forward and backward.

    Elements of the same bits agree under every rule here, so for an element-wise activation
    (whose true values, bounds and conventions at an element depend on that element alone)
    only the others are judged: their true values and allowances are computed for them alone
    (taken from x's where x has them), and where all bits agree, none at all.  The gap is 0
    at the elements judged equal by their bits.
    """
    shape = tuple(y.shape)
    same = same_bits(y, expected).reshape(shape)
    differ = np.flatnonzero(~same)
    if not s.spec.elementwise or differ.size == same.size:
        return _disagreement(s, x, y, expected, same, params, allowance=allowance,
                             upstream=upstream, backward=backward)
    bad = np.zeros(shape, dtype=bool)
    if not differ.size:
        return bad, None if s.policy.correct_rounding else np.zeros(shape)
    if allowance is not None:
        allowance = tuple(np.broadcast_to(a, shape).reshape(-1)[differ] for a in allowance)
    bad_there, gap_there = _disagreement(
        s, s.take(x, differ, flat=True), s.take(y, differ, flat=True),
        s.take(expected, differ, flat=True), same.reshape(-1)[differ], params,
        allowance=allowance, backward=backward,
        upstream=None if upstream is None else s.take(upstream, differ, flat=True))
    bad.reshape(-1)[differ] = bad_there
    if gap_there is None:
        return bad, None
    gap = np.zeros(shape, dtype=gap_there.dtype)
    gap.reshape(-1)[differ] = gap_there
    return bad, gap


def _disagreement(s: Subject, x: torch.Tensor, y: torch.Tensor, expected: torch.Tensor,
                  same: np.ndarray, params: dict, *,
                  allowance: tuple[np.ndarray, np.ndarray] | None,
                  upstream: torch.Tensor | None, backward: bool
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """`disagreement` of y and expected at x, given where their bits are the same."""
    # Whether each side follows a convention, once: both checks below read it.
    y_conventional = conventional(s, x, y, params, backward=backward)
    expected_conventional = conventional(s, x, expected, params, backward=backward)
    same = same | (y_conventional & expected_conventional)
    if s.policy.correct_rounding:
        return ~same, None
    if allowance is not None:
        ref, bound = allowance
    elif upstream is not None:
        ref, bound = tolerance(s, x, upstream, params)
    else:
        ref, bound = s.reference(x, params), s.bound(x, params)
    unit = ulp(ref, s.fmt)
    y_values, expected_values = s.values(y), s.values(expected)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: the same infinity
        gap = np.abs(y_values - expected_values) / unit
        bad = ~same & ~(gap <= 2 * bound)  # each side may be one bound off the truth
    if s.policy.allow_flush:  # one side flushed a subnormal true value to zero
        zero = (y_values == 0) | (expected_values == 0)
        bad &= ~(zero & (np.abs(ref) < s.fmt.tiny))
    # One side follows a convention the policy accepts (silu(x) = 0 where a flushed
    # sigmoid(x) zeroes it), the other is within its bound of the truth: both are accepted.
    with np.errstate(invalid="ignore", over="ignore"):
        def accurate(values: np.ndarray) -> np.ndarray:
            return (values == ref) | (np.abs(values - ref) <= bound * unit)

        bad &= ~((y_conventional & accurate(expected_values))
                 | (expected_conventional & accurate(y_values)))
    return bad, gap


def same_bits(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Element-wise bit equality; any NaN equals any NaN (payloads are not specified)."""
    a, b = a.detach().cpu(), b.detach().cpu()
    both_nan = torch.isnan(a) & torch.isnan(b)
    if a.dtype == b.dtype:  # compared as integers of the format's width, without widening
        width = float_format(a.dtype).int_dtype
        return ((a.contiguous().view(width) == b.contiguous().view(width)) | both_nan).numpy()
    fa, fb = float_format(a.dtype), float_format(b.dtype)
    return (fa.bits_of(a).numpy() == fb.bits_of(b).numpy()) | both_nan.numpy()


# ------------------------------------------------------------------------------ backward

def tolerance(s: Subject, x: torch.Tensor, g: torch.Tensor, params: dict
              ) -> tuple[np.ndarray, np.ndarray]:
    """The true vjp and the allowed ulps per element under the subject's policy: the
    backward's own ulp bound plus the forward's error carried through d f'/d y for backwards
    computed from the saved output (see `Derivative` in actverify/spec.py)."""
    d = s.spec.derivative
    xr, gr = s.values(x), s.values(g)
    ref = np.asarray(d.vjp(xr, gr, **params), dtype=xr.dtype)
    u = ulp(ref, s.fmt)
    if s.policy.correct_rounding:
        return ref, np.full(ref.shape, 0.5)
    own = absolute = d.bounds[s.fmt.name].evaluate(xr, params, s.fmt) * u
    y_true = s.reference(x, params)
    forward_error = forward_allowance(s, x, y_true, params)
    if d.output_sensitivity is not None:
        absolute = absolute + np.abs(gr) * d.output_sensitivity(y_true) * forward_error
    if d.extra is not None:
        absolute = absolute + d.extra(xr, gr, y_true, forward_error, params, s.fmt)
    # At x = +-inf a finite true vjp is g times the derivative's limit (spec.with_limits):
    # the backward's own bound holds there, not the terms that grow with |x| for finite x
    # (GELU's cancellation, the carried forward error), which are infinite at infinity.
    absolute = np.where(np.isinf(xr) & np.isfinite(ref), own, absolute)
    with np.errstate(over="ignore"):  # an allowance beyond float64's range is no limit at all
        return ref, np.asarray(absolute / u, dtype=np.float64)


def second_tolerance(s: Subject, x: torch.Tensor, params: dict
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The true second derivative and its allowed ulps: twice the backward's bound (a double
    backward rounds through two backward formulas) plus the forward's error carried through
    d f''/d y."""
    d = s.spec.derivative
    ref = np.asarray(d.second(s.values(x), **params))
    if s.policy.correct_rounding:
        return ref, np.full(ref.shape, 0.5)
    u = ulp(ref, s.fmt)
    y_true = s.reference(x, params)
    absolute = (2 * d.bounds[s.fmt.name].evaluate(s.values(x), params, s.fmt) * u
                + d.second_sensitivity(y_true) * forward_allowance(s, x, y_true, params))
    with np.errstate(over="ignore"):
        return ref, np.asarray(absolute / u, dtype=np.float64)


def own_output_error(s: Subject, x: torch.Tensor, g: torch.Tensor, y: torch.Tensor,
                     gx: torch.Tensor, params: dict) -> Comparison | None:
    """The backward's own quality: its error against the exact vjp of the output y the forward
    returned (and a backward from the saved output reads), under the backward's own bound:
    the spec's ulps, its accumulation error (softmax), and its own roundings of intermediates
    built from y (y * y, 1 - y), which to first order read y one ulp off and are amplified as
    a forward error is (1 - y^2 cancels where tanh saturates); nothing carried from the
    forward.  None where the spec gives no such form (backwards exact from x: relu, leaky)."""
    d = s.spec.derivative
    if d.from_output is None or s.policy.correct_rounding:
        return None
    xr, yr, gr = s.values(x), s.values(y), s.values(g)
    with np.errstate(all="ignore"):
        ref = np.asarray(d.from_output(yr, gr, **params), dtype=yr.dtype)
        u = ulp(ref, s.fmt)
        absolute = d.bounds[s.fmt.name].evaluate(xr, params, s.fmt) * u
        if d.output_sensitivity is not None:
            absolute = absolute + np.abs(gr) * d.output_sensitivity(yr) * ulp(yr, s.fmt)
        if d.extra is not None:
            absolute = absolute + d.extra(xr, gr, yr, np.zeros(yr.shape), params, s.fmt)
        bound = np.asarray(absolute / u, dtype=np.float64)
        return compare(gx, ref, fmt=s.fmt, bound=bound, policy=s.policy,
                       zero_sign_specified=False)


def at_kink_within_subdifferential(s: Subject, x: torch.Tensor, g: torch.Tensor,
                                   gx: torch.Tensor, params: dict) -> np.ndarray:
    """Under kink='math': elements at a kink whose gradient is g times some subgradient
    (within the accuracy bound of the larger end)."""
    excused = np.zeros(tuple(x.shape), dtype=bool)
    if s.policy.kink != "math" or s.spec.derivative is None:
        return excused
    xv, gv, gxv = s.values(x), s.values(g), s.values(gx)
    for kink in s.spec.derivative.kinks(params):
        lo, hi = kink.subdifferential
        ends = np.stack([gv * lo, gv * hi])
        slack = s.bound(x, params) * ulp(np.max(np.abs(ends), axis=0), s.fmt) + 0.0
        excused |= ((xv == kink.at) & (gxv >= ends.min(axis=0) - slack)
                    & (gxv <= ends.max(axis=0) + slack))
    return excused


def judge_gradient(s: Subject, x: torch.Tensor, g: torch.Tensor, gx: torch.Tensor,
                   params: dict) -> Judged:
    """The gradient gx at x with upstream g against the true vjp g * f'(x) under the
    tolerance; accepted (not wrong, left out of the figures): g times a subgradient at a kink
    under kink='math', and the spec's backward conventions (PyTorch's NaN gradients of GELU's
    tanh form where x^3 overflows)."""
    gx = gx.detach()
    with np.errstate(all="ignore"):
        ref, bound = tolerance(s, x, g, params)
        cmp = compare(gx, ref, fmt=s.fmt, bound=bound, policy=s.policy,
                      zero_sign_specified=False)
    accepted = (at_kink_within_subdifferential(s, x, g, gx, params)
                | conventional(s, x, gx, params, backward=True))
    return Judged(cmp, ref, np.asarray(cmp.bad) & ~accepted, accepted)
