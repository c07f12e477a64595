"""Identities: symmetry, the relations each spec states (tanh through sigmoid, SiLU through
sigmoid, the odd part of ReLU, SiLU and GELU), leaky ReLU's two sides.

Tolerances come from the accuracy model, never from the property: an identity between results
that may each be off by B ulps may be off by the sum of those ulps (computed exactly in the
reference precision), and identities that are exact in floating point are checked bitwise.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from actverify.accuracy import compare, ulp
from actverify.properties.base import Subject, activation, allowance, law
from actverify.properties.conventions import stated
from actverify.spec import get_spec
from actverify.strategies import Case


def finite_cases(s: Subject) -> st.SearchStrategy[Case]:
    return s.cases(allow_nan=False, allow_infinity=False)


@law("point_symmetry", summary="f(-x) = 2c - f(x): sigmoid(-x) = 1 - sigmoid(x), tanh odd "
     "(the sign of zero included where the spec specifies it)",
     applies=lambda t: t.spec.point_symmetry is not None, inputs=finite_cases)
def point_symmetry(s: Subject, case: Case) -> None:
    c = s.spec.point_symmetry
    y, y_neg = s.call(case.x, case.params), s.call(-case.x, case.params)
    a, b = s.values(y), s.values(y_neg)
    ref, ref_neg = s.reference(case.x, case.params), s.reference(-case.x, case.params)
    tol = (s.bound(case.x) * ulp(ref, s.fmt) + s.bound(case.x) * ulp(ref_neg, s.fmt))
    gap = np.abs(b - (2 * c - a))
    bad = gap > tol
    if s.spec.zero_sign == "specified" or s.policy.zero_sign == "always":
        bad |= (s.values(case.x) == 0) & (np.signbit(a) == np.signbit(b)) & (c == 0)
    s.fail_where(bad, f"f(-x) differs from {2 * c:g} - f(x) (expected is {2 * c:g} - f(x), "
                 "actual is f(-x))", x=case.x, actual=y_neg, expected=2 * c - a,
                 case=case, tolerance=float(np.max(tol)) if tol.size else 0.0)


@law("identity", summary="the identities each spec states with related activations "
     "(tanh(x) = 2 sigmoid(2x) - 1, silu(x) = x sigmoid(x), f(x) - f(-x) = x, ...), against "
     "PyTorch's own partner, within both sides' accuracy bounds",
     applies=lambda t: bool(t.spec.relations), inputs=finite_cases)
def identity(s: Subject, case: Case) -> None:
    x, xr = case.x, s.values(case.x)
    y = s.call(x, case.params)
    y_ref = s.reference(x, case.params)
    own = s.allowance(x, y_ref, case.params)
    for rel in s.spec.relations:
        if not rel.applies(case.params):
            continue
        partner = s.spec if rel.partner is None else get_spec(rel.partner)
        params = case.params if rel.partner is None else {}
        u = rel.inner(x)  # rounded to the format, as a kernel built on the partner gets it
        g = s.call(u, params, fn=None if rel.partner is None else partner.canonical.fn,
                   inplace=None if rel.partner is None else False)
        ur, u_exact = s.values(u), rel.inner(xr)
        with np.errstate(invalid="ignore", over="ignore"):
            rhs = rel.outer(xr, s.values(g))
            gain = rel.gain(xr)
            tol = own + gain * allowance(partner, s.fmt, s.policy, ur,
                                         partner.reference(ur, **params), params)
            if not np.all(ur == u_exact):  # the partner ran at a rounded argument: carry g'
                if partner.derivative is None or partner.derivative.first is None:
                    tol = np.where(ur == u_exact, tol, np.inf)
                else:
                    slope = np.abs(partner.derivative.first(u_exact, **params))
                    drift = np.where(slope == 0, 0.0, slope * np.abs(ur - u_exact))
                    tol = tol + gain * np.nan_to_num(drift, nan=np.inf)
            bad = ~(np.abs(s.values(y) - rhs) <= tol)
        # Results a documented convention accepts (PyTorch's gelu(x) = inf past half of
        # float32's range) say nothing about the identity: leave them out, on either side.
        bad &= ~(stated(s.spec, s.policy, xr, s.values(y), case.params)
                 | stated(partner, s.policy, ur, s.values(g), params))
        s.fail_where(bad, f"{rel.text} does not hold within the accuracy bounds (expected is "
                     "the right-hand side)", x=x, actual=y, expected=rhs, case=case)


@law("positive_identity", summary="f(x) = x bit for bit for every x > 0 (+inf included)",
     applies=lambda t: t.spec.identity_on_positive,
     inputs=lambda s: s.cases())
def positive_identity(s: Subject, case: Case) -> None:
    y = s.call(case.x, case.params)
    xv, yv = s.values(case.x), s.values(y)
    s.fail_where((xv > 0) & (yv != xv), "f(x) != x for x > 0", x=case.x, actual=y,
                 expected=xv, case=case)


@law("negative_slope", summary="for x < 0, leaky_relu(x) = negative_slope * x within the "
     "accuracy bound, for any real slope (0, tiny, default, 1, above 1, negative)",
     applies=activation("leaky_relu"),
     inputs=lambda s: s.cases(allow_nan=False))
def negative_slope(s: Subject, case: Case) -> None:
    y = s.call(case.x, case.params)
    xv = s.values(case.x)
    slope = case.params["negative_slope"]
    with np.errstate(invalid="ignore"):
        expected = xv * xv.dtype.type(slope)
    cmp = compare(y, expected, fmt=s.fmt, bound=s.bound(case.x, case.params), policy=s.policy,
                  zero_sign_specified=False)
    s.fail_where((xv < 0) & cmp.bad, f"f(x) != {slope!r} * x for x < 0", x=case.x, actual=y,
                 expected=expected, error=cmp.error, case=case)


