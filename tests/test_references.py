"""The specs' references against mpmath at 128 bits: a reference must be far more accurate
than any output it judges (accuracy.reference_uncertainty: 8 units of the reference type),
in float64 (16- and 32-bit outputs) and x87 extended precision (float64 outputs), the tails
included, where a naive formula cancels or underflows first."""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np
import pytest

from actverify.accuracy import reference_dtype
from actverify.dtypes import float_format
from actverify.spec import get_spec


# accuracy.reference_uncertainty's margin: units of the reference type.
UNITS = 8


def _exact(v: np.floating) -> mpmath.mpf:
    num, den = v.as_integer_ratio()  # exact for float64 and longdouble alike
    return mpmath.mpf(num) / den


def _tanh_u(x: mpmath.mpf) -> mpmath.mpf:
    return mpmath.sqrt(2 / mpmath.pi) * (x + mpmath.mpf("0.044715") * x**3)


def _gelu_tanh(x: mpmath.mpf) -> mpmath.mpf:
    return x / (1 + mpmath.exp(-2 * _tanh_u(x)))


TRUE: dict[str, tuple[str, dict, Callable[[mpmath.mpf], mpmath.mpf]]] = {
    "sigmoid": ("sigmoid", {}, lambda x: 1 / (1 + mpmath.exp(-x))),
    "tanh": ("tanh", {}, mpmath.tanh),
    "silu": ("silu", {}, lambda x: x / (1 + mpmath.exp(-x))),
    "gelu": ("gelu", {}, lambda x: x * mpmath.ncdf(x)),
    "gelu_tanh": ("gelu", {"approximate": "tanh"}, _gelu_tanh),
    "elu": ("elu", {}, lambda x: x if x > 0 else mpmath.expm1(x)),
}

# Grids that cross every branch of the references: the series/continued-fraction seam of
# GELU's normal CDF at |x| = sqrt 2, the deep negative tail down to the format's underflow.
GRID = np.concatenate([np.linspace(-40.0, 12.0, 1041), np.linspace(-1.5, -1.3, 41),
                       -np.logspace(-12, 0, 25)])


@pytest.mark.parametrize("name", sorted(TRUE))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_reference_is_within_a_few_units_of_its_type(name: str, dtype: str) -> None:
    activation, params, true = TRUE[name]
    rt = reference_dtype(float_format(dtype))
    x = GRID.astype(rt)
    got = get_spec(activation).reference(x, **params)
    unit = mpmath.mpf(2) ** -(np.finfo(rt).nmant + 1)
    # Where intermediates (Phi(x), e^(2u)) leave the reference type's normal range, it is no
    # longer the reference's job: those outputs round to 0 in every format it serves.
    floor = mpmath.mpf(2) ** (np.finfo(rt).minexp + 16)
    worst, where = mpmath.mpf(0), None
    with mpmath.workprec(128):
        for xi, yi in zip(x, got):
            r = true(_exact(xi))
            if r == 0:
                assert yi == 0, f"{name}({xi!r}) = {yi!r}, not 0"
                continue
            if abs(r) < floor * max(1, abs(_exact(xi))):
                continue
            rel = abs(_exact(yi) - r) / abs(r) / unit
            # The tanh form's tail is e^(2u): u computed to a few units carries |2u| times
            # that into the result (the conditioning of exp, not the reference's error).
            rel /= 1 + (abs(2 * _tanh_u(_exact(xi))) if name == "gelu_tanh" else 0)
            if rel > worst:
                worst, where = rel, xi
    assert worst <= UNITS, f"{name} reference in {rt.__name__} off by {float(worst):.3g} units at {where!r}"
