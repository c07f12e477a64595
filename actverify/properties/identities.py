"""Identities: symmetry, the relations each spec states (tanh through sigmoid, SiLU through
sigmoid, the odd part of ReLU, SiLU and GELU), leaky ReLU's two sides.

Tolerances come from the accuracy model, never from the property: an identity between results
that may each be off by B ulps may be off by the sum of those ulps (computed exactly in the
reference precision), and identities that are exact in floating point are checked bitwise.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from actverify.accuracy import compare
from actverify.judgement import point_symmetry_bad, relation_bad
from actverify.properties.base import Subject, activation, define
from actverify.spec import get_spec
from actverify.strategies import Case


def finite_cases(s: Subject) -> st.SearchStrategy[Case]:
    return s.cases(allow_nan=False, allow_infinity=False)


@define("point_symmetry", summary="f(-x) = 2c - f(x): sigmoid(-x) = 1 - sigmoid(x), tanh odd "
     "(the sign of zero included where the spec specifies it)",
     applies=lambda t: t.spec.point_symmetry is not None, inputs=finite_cases)
def point_symmetry(s: Subject, case: Case) -> None:
    c = s.spec.point_symmetry
    y, y_neg = s.call(case.x, case.params), s.call(-case.x, case.params)
    a = s.values(y)
    bad = point_symmetry_bad(s, case.x, a, s.values(y_neg), s.reference(case.x, case.params),
                             s.reference(-case.x, case.params), case.params)
    s.fail_where(bad, f"f(-x) differs from {2 * c:g} - f(x) (expected is {2 * c:g} - f(x), "
                 "actual is f(-x))", x=case.x, actual=y_neg, expected=2 * c - a, case=case)


@define("identity", summary="the identities each spec states with related activations "
     "(tanh(x) = 2 sigmoid(2x) - 1, silu(x) = x sigmoid(x), f(x) - f(-x) = x, ...), against "
     "PyTorch's own partner, within both sides' accuracy bounds",
     applies=lambda t: bool(t.spec.relations), inputs=finite_cases)
def identity(s: Subject, case: Case) -> None:
    x = case.x
    y = s.call(x, case.params)
    for rel in s.spec.relations:
        if not rel.applies(case.params):
            continue
        partner_params = case.params if rel.partner is None else {}
        u = rel.inner(x)  # rounded to the format, as a kernel built on the partner gets it
        fn = None if rel.partner is None else get_spec(rel.partner).canonical.fn
        g = s.call(u, partner_params, fn=fn, inplace=None if fn is None else False)
        bad, rhs = relation_bad(s, rel, x=x, y=y, u=u, g=g, params=case.params,
                                partner_params=partner_params)
        s.fail_where(bad, f"{rel.text} does not hold within the accuracy bounds (expected is "
                     "the right-hand side)", x=x, actual=y, expected=rhs, case=case)


@define("positive_identity", summary="f(x) = x bit for bit for every x > 0 (+inf included)",
     applies=lambda t: t.spec.identity_on_positive,
     inputs=lambda s: s.cases())
def positive_identity(s: Subject, case: Case) -> None:
    y = s.call(case.x, case.params)
    xv, yv = s.values(case.x), s.values(y)
    s.fail_where((xv > 0) & (yv != xv), "f(x) != x for x > 0", x=case.x, actual=y,
                 expected=xv, case=case)


@define("negative_slope", summary="for x < 0, leaky_relu(x) = negative_slope * x within the "
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


