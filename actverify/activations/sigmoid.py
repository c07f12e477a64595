import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actverify.spec import (ActivationSpec, Bound, Derivative, EntryPoint, Relation,
                            every_dtype)


def reference(x: np.ndarray) -> np.ndarray:
    # 1 / (1 + e^-x) loses nothing for x >= 0; for x < 0 use e^x / (1 + e^x) so that e^-x
    # cannot overflow.  Both are a few ulps of the reference type, far below the output's ulp.
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def fast_reference(x: torch.Tensor, params) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(x), f(-x)) in float64 torch ops: one exponential for both."""
    e = torch.exp(-x.abs())
    big = 1 / (1 + e)
    small = e * big  # e / (1 + e) within a float64 ulp: one division instead of two
    return torch.where(x >= 0, big, small), torch.where(x <= 0, big, small)


def first(x: np.ndarray) -> np.ndarray:
    # sigmoid(x) sigmoid(-x): no cancellation, unlike s (1 - s) once s rounds to 1.  Both
    # factors from one exponential: reference(x) * reference(-x) element for element (the
    # larger 1 / (1 + e) where x >= 0, resp. x <= 0, else e / (1 + e)), the same roundings.
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(x))
        big, small = 1 / (1 + e), e / (1 + e)
        return np.where(x >= 0, big, small) * np.where(x <= 0, big, small)


def second(x: np.ndarray) -> np.ndarray:
    # s'(1 - 2s), with 1 - 2s = tanh(-x/2) to avoid cancellation.
    return first(x) * np.tanh(-x / 2)


# g * (1 - y) * y and g * (1 - y * y): three rounded operations in the output format (or
# better), each a relative error of at most u, which is up to 1 ulp at the bottom of a binade.
BACKWARD = Bound(3.0, "three rounded operations on the saved output (g (1 - y) y, "
                      "g (1 - y^2)), up to 1 ulp each; plus the forward's error carried "
                      "through d f'/d y")


def thresholds(fmt):
    return (
        0.0,
        (fmt.precision + 1) * math.log(2),  # above this sigmoid rounds to 1
        -math.log(fmt.max),  # below this the naive e^-x overflows
        fmt.emin * math.log(2),  # below this the result is subnormal
        (fmt.emin - fmt.precision + 1) * math.log(2),  # below this the result underflows to 0
    )


_TRANSCENDENTAL_16 = Bound(
    1.0,
    "faithful rounding: evaluated in float32 (or better) and rounded once, the float32 error "
    "is below 2^-10 ulp of the 16-bit result, so any such kernel is within 1 ulp",
)
_WIDE = Bound(
    3.0,
    "1/(1+exp(-x)): exp within 2 ulp (CUDA Programming Guide bound for expf/exp), carried "
    "through 1/(1+e) with condition <= 1, plus two correctly rounded operations (0.5 ulp each)",
)

SPEC = ActivationSpec(
    name="sigmoid",
    summary="logistic function 1 / (1 + exp(-x))",
    signature="sigmoid(x)",
    entry_points=(
        EntryPoint("F.sigmoid", F.sigmoid),
        EntryPoint("torch.sigmoid", torch.sigmoid),
        EntryPoint("nn.Sigmoid", lambda x: nn.Sigmoid()(x)),
        EntryPoint("torch.sigmoid_", torch.sigmoid_, inplace=True),
    ),
    reference=reference,
    bounds={"float16": _TRANSCENDENTAL_16, "bfloat16": _TRANSCENDENTAL_16,
            "float32": _WIDE, "float64": _WIDE},
    range=lambda p: (0.0, 1.0),
    at_infinity=lambda p: (0.0, 1.0),
    point_symmetry=0.5,
    relations=(Relation(text="sigmoid(x) = (1 + tanh(x/2)) / 2", partner="tanh",
                        inner=lambda x: x / 2, outer=lambda x, t: (1 + t) / 2,
                        gain=lambda x: np.full_like(x, 0.5)),),
    fast_reference=fast_reference,
    derivative=Derivative(
        vjp=lambda x, g: g * first(x),
        from_output=lambda y, g: g * (y * (1 - y)),
        first=first,
        second=second,
        bounds=every_dtype(BACKWARD),
        # f' = y (1 - y): |d f'/d y| = |1 - 2y|;  f'' = y (1 - y)(1 - 2y): |1 - 6y + 6y^2|.
        output_sensitivity=lambda y: np.abs(1 - 2 * y),
        second_sensitivity=lambda y: np.abs(1 - 6 * y + 6 * y * y),
        range=lambda p: (0.0, 0.25),
        peak=(0.0, 0.25),
        even=True,
    ),
    thresholds=thresholds,
    conventions=(
        "NaN propagates.",
        "Results whose true value is subnormal may be flushed to zero (default policy).",
    ),
)
