"""Identities: symmetry, the tanh-sigmoid relation, ReLU's odd part, leaky ReLU's two sides.

Tolerances come from the accuracy model, never from the property: an identity between results
that may each be off by B ulps may be off by the sum of those ulps (computed exactly in the
reference precision), and identities that are exact in floating point are checked bitwise.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from actverify.accuracy import compare, ulp
from actverify.properties.base import Subject, activation, law
from actverify.spec import get_spec
from actverify.strategies import Case, cases


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


def _partner(name: str):
    return get_spec(name).canonical.fn


@law("tanh_sigmoid", summary="tanh(x) = 2 sigmoid(2x) - 1, against PyTorch's own partner",
     applies=activation("tanh", "sigmoid"), inputs=finite_cases)
def tanh_sigmoid(s: Subject, case: Case) -> None:
    x = case.x
    sig, tanh = get_spec("sigmoid"), get_spec("tanh")
    if s.spec.name == "tanh":
        t = s.call(x)
        x2 = x * 2  # exact, or +-inf where sigmoid is 1 or 0 anyway
        sg = s.call(x2, fn=_partner("sigmoid"), inplace=False)
        lhs, rhs = s.values(t), 2 * s.values(sg) - 1
        tol = (s.bound(x) * ulp(s.reference(x), s.fmt)
               + 2 * s.bound(x) * ulp(sig.reference(s.values(x2)), s.fmt))
        actual, exact = t, np.ones(lhs.shape, dtype=bool)
    else:
        sg = s.call(x)
        half = x / 2
        exact = s.values(half) * 2 == s.values(x)  # halving is exact unless it underflows
        t = s.call(half, fn=_partner("tanh"), inplace=False)
        lhs, rhs = s.values(sg), (1 + s.values(t)) / 2
        tol = (s.bound(x) * ulp(s.reference(x), s.fmt)
               + s.bound(x) / 2 * ulp(tanh.reference(s.values(half)), s.fmt))
        actual = sg
    bad = exact & (np.abs(lhs - rhs) > tol)
    s.fail_where(bad, "tanh(x) = 2 sigmoid(2x) - 1 does not hold within the accuracy bounds",
                 x=x, actual=actual, expected=rhs, case=case)


@law("relu_odd_part", summary="relu(x) - relu(-x) = x exactly for finite x",
     applies=activation("relu"), inputs=finite_cases)
def relu_odd_part(s: Subject, case: Case) -> None:
    y, y_neg = s.call(case.x), s.call(-case.x)
    diff = s.values(y) - s.values(y_neg)  # one side is zero: exact
    s.fail_where(diff != s.values(case.x), "relu(x) - relu(-x) != x", x=case.x, actual=y,
                 expected=s.values(case.x), case=case)


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


__all__ = ["point_symmetry", "tanh_sigmoid", "relu_odd_part", "positive_identity",
           "negative_slope", "torch"]
