"""SiLU (swish): x * sigmoid(x), the gate of SwiGLU."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actverify.activations.sigmoid import BACKWARD as SIGMOID_BACKWARD
from actverify.activations.sigmoid import _TRANSCENDENTAL_16, _WIDE
from actverify.activations.sigmoid import fast_reference as sigmoid_pair
from actverify.activations.sigmoid import reference as sigmoid
from actverify.activations.sigmoid import thresholds as sigmoid_thresholds
from actverify.spec import (ActivationSpec, Bound, Derivative, EntryPoint, Relation,
                            every_dtype, odd_part_is_x)

# The minimum of x sigmoid(x), at the root of 1 + x (1 - sigmoid(x)) = 0.
X_MIN = -1.2784645427610737


def reference(x: np.ndarray) -> np.ndarray:
    # x / (1 + e^-x) through the overflow-free sigmoid: one product, no cancellation.
    # IEEE evaluation: silu(-inf) = -inf * 0 = NaN (PyTorch's value; 0 is accepted too).
    with np.errstate(invalid="ignore"):
        return x * sigmoid(x)


def fast_reference(x: torch.Tensor, params) -> tuple[torch.Tensor, torch.Tensor]:
    s, s_neg = sigmoid_pair(x, params)
    return x * s, -x * s_neg


def first(x: np.ndarray) -> np.ndarray:
    # s + x s (1 - s) = s (1 + x sigmoid(-x)); the sum cancels only near X_MIN, where the
    # backward is judged with the absolute term of `_cancellation`.
    with np.errstate(invalid="ignore", over="ignore"):
        return sigmoid(x) * (1 + x * sigmoid(-x))


def _cancellation(x, g, y_true, forward_error, params, fmt):
    """The backward g s (1 + x (1 - s)) sums terms of opposite sign (they cancel at the
    minimum X_MIN, where silu' = 0): its absolute error is up to the rounding of the larger
    term, |g| s (1 + |x| (1 - s)), a few units of the working precision (3 roundings)."""
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.abs(g) * sigmoid(x) * (1 + np.abs(x) * sigmoid(-x))
    return 3 * scale * 2.0 ** -_working_precision(fmt)


def _working_precision(fmt) -> int:
    # 16-bit kernels compute in float32 (or better) and round once.
    return max(fmt.precision, 24)


# x * sigmoid(x): sigmoid within B ulps is a relative error of at most B 2^(1-p); the product
# adds one rounding (2^-p).  Relative to the product's binade (ulp >= 2^-p |y|) that is
# 2B + 1 ulps.
_SILU_WIDE = Bound(2 * _WIDE.ulps + 1,
                   f"x * sigmoid(x): sigmoid within {_WIDE.ulps:g} ulp (relative "
                   f"{_WIDE.ulps:g} 2^(1-p)) and one rounding of the product, measured in the "
                   f"product's binade: 2 * {_WIDE.ulps:g} + 1")

SPEC = ActivationSpec(
    name="silu",
    summary="sigmoid linear unit (swish) x * sigmoid(x)",
    signature="silu(x)",
    entry_points=(
        EntryPoint("F.silu", F.silu),
        EntryPoint("nn.SiLU", lambda x: nn.SiLU()(x)),
        EntryPoint("F.silu(inplace=True)", lambda x: F.silu(x, inplace=True), inplace=True),
        EntryPoint("nn.SiLU(inplace=True)", lambda x: nn.SiLU(inplace=True)(x), inplace=True),
    ),
    reference=reference,
    bounds={"float16": _TRANSCENDENTAL_16, "bfloat16": _TRANSCENDENTAL_16,
            "float32": _SILU_WIDE, "float64": _SILU_WIDE},
    # Not monotone (a minimum at X_MIN); its range depends on rounding (the minimum is
    # irrational), so the accuracy property speaks for it.
    monotone=None,
    relations=(
        Relation(text="silu(x) = x sigmoid(x)", partner="sigmoid", inner=lambda x: x,
                 outer=lambda x, s: x * s, gain=np.abs),
        odd_part_is_x("silu"),
    ),
    fast_reference=fast_reference,
    accepted=lambda x, y, p: (x == -np.inf) & (y == 0),
    derivative=Derivative(
        vjp=lambda x, g: g * first(x),
        first=first,
        bounds=every_dtype(Bound(
            SIGMOID_BACKWARD.ulps + 1,
            "g s (1 + x (1 - s)) from the saved input: sigmoid's backward's three roundings "
            "and one more for the product with x; plus the cancellation term near the "
            "minimum (|g| s (1 + |x| (1 - s)) times 3 units of the working precision)")),
        extra=_cancellation,
    ),
    thresholds=lambda fmt: (0.0, X_MIN, *sigmoid_thresholds(fmt)),
    conventions=(
        "NaN propagates.",
        "silu(-inf) is NaN (IEEE: -inf * 0, PyTorch) or 0 (the limit); both are accepted.",
        "Results whose true value is subnormal may be flushed to zero (default policy).",
    ),
)
