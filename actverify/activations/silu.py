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
                            every_dtype, nan_at_infinity, odd_part_is_x,
                            with_limits)

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
    # backward is judged with the absolute term of `_backward_error`.
    with np.errstate(invalid="ignore", over="ignore"):
        return sigmoid(x) * (1 + x * sigmoid(-x))


# f' with its limits at -inf (0) and +inf (1), where the formula gives NaN.
_first = with_limits(first, minus=0.0, plus=1.0)


def _working(fmt) -> tuple[int, float, float]:
    """Precision, smallest normal and smallest subnormal of the working format: 16-bit
    kernels compute in float32 (or better) and round once."""
    if fmt.bits >= 32:
        return fmt.precision, fmt.tiny, fmt.smallest_subnormal
    return 24, 2.0**-126, 2.0**-149


def _backward_error(x, g, y_true, forward_error, params, fmt):
    """Absolute error of the backward g s (1 + x (1 - s)) beyond its ulp bound: its terms
    have opposite signs and cancel at the minimum X_MIN (3 roundings of the larger term), and
    sigmoid's own error reaches the result through d/ds [s (1 + x (1 - s))] = 1 + x - 2xs, at
    most 1 + 2|x| (x = 37: 1 - s rounds to 0, the 1 + x (1 - s) it loses is 2e-15 relative).
    That error is 3 ulp (relative 3 2^(1-p), plus a subnormal quantum), or all of s where s
    is subnormal and the default policy lets it flush (sigmoid's F1).  And where the product
    g s is subnormal, its rounding (up to a quantum, whatever g) is multiplied by
    1 + x (1 - s), at most 1 + |x|."""
    p, tiny, quantum = _working(fmt)
    with np.errstate(invalid="ignore", over="ignore"):
        s = sigmoid(x)
        larger = s * (1 + np.abs(x) * sigmoid(-x))
        own = np.where(s < tiny, s, 3 * (2.0 ** (1 - p) * s + quantum))
        carried = (1 + 2 * np.abs(x)) * own
        return np.abs(g) * (3 * larger * 2.0**-p + carried) + (1 + np.abs(x)) * quantum


def _sigmoid_underflows(x: np.ndarray) -> np.ndarray:
    """Where sigmoid(x) is below the working format's normal range, so that a kernel may
    have flushed it (sigmoid's F1): float32's for the formats a float64 reference serves,
    float64's for float64 (whose reference is extended precision)."""
    tiny = np.finfo(np.float32 if x.dtype == np.float64 else np.float64).tiny
    with np.errstate(over="ignore"):
        return sigmoid(x) < tiny


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
    # -inf: NaN by IEEE (PyTorch) or the limit 0.  And where sigmoid(x) underflows, a kernel
    # may have flushed it (sigmoid's F1), which zeroes silu(x) whose true value is normal.
    accepted=lambda x, y, p: (y == 0) & ((x == -np.inf) | _sigmoid_underflows(x)),
    derivative=Derivative(
        vjp=lambda x, g: g * _first(x),
        first=_first,
        # NaN at +-inf: s (1 + x (1 - s)) evaluates inf * 0 there (findings B10).
        accepted=nan_at_infinity,
        bounds=every_dtype(Bound(
            SIGMOID_BACKWARD.ulps + 1,
            "g s (1 + x (1 - s)) from the saved input: sigmoid's backward's three roundings "
            "and one more for the product with x; plus the cancellation near the minimum and "
            "sigmoid's own error carried through 1 + x - 2xs (silu.py)")),
        extra=_backward_error,
    ),
    thresholds=lambda fmt: (0.0, X_MIN, *sigmoid_thresholds(fmt)),
    conventions=(
        "NaN propagates.",
        "silu(-inf) is NaN (IEEE: -inf * 0, PyTorch) or 0 (the limit); both are accepted.",
        "Results whose true value is subnormal may be flushed to zero (default policy); so may "
        "results where sigmoid(x) underflows the working format (x < -87.3 in float32, "
        "-708.4 in float64), where the kernel's sigmoid may have flushed.",
    ),
)
