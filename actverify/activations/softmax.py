import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from actverify.spec import ActivationSpec, Bound, Derivative, EntryPoint, Param


def reference(x: np.ndarray, dim: int = -1) -> np.ndarray:
    # Subtracting the row maximum is exact enough in the reference type and keeps exp finite.
    # IEEE evaluation gives PyTorch's conventions: a row of only -inf or with +inf is NaN.
    if x.ndim == 0:
        x, dim = x.reshape(1), 0
        return reference(x, dim).reshape(())
    if x.size == 0:
        return x.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.max(x, axis=dim, keepdims=True)
        e = np.exp(x - m)
        return e / np.sum(e, axis=dim, keepdims=True)


def accepted(x: np.ndarray, y: np.ndarray, params) -> np.ndarray:
    """Default-policy conventions: zeros for an all -inf row; the limit for a row with +inf."""
    if x.ndim == 0 or x.size == 0:
        return np.zeros(x.shape, dtype=bool)
    dim = params.get("dim", -1)
    all_neg_inf = np.all(x == -np.inf, axis=dim, keepdims=True)
    pos_inf = x == np.inf
    k = np.sum(pos_inf, axis=dim, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        limit = np.where(pos_inf, 1.0 / k, 0.0)
    has_nan = np.any(np.isnan(x), axis=dim, keepdims=True)
    return ((all_neg_inf & (y == 0))
            | ((k > 0) & ~has_nan & (y == limit)))


def accumulate_precision(fmt) -> int:
    # Reduced-precision softmax accumulates in float32 (PyTorch, Triton); float64 in float64.
    return 53 if fmt.bits == 64 else 24


def bound(x: np.ndarray, params, fmt) -> np.ndarray:
    """Per element: base + (|x_i - max| + n - 1) units of the accumulation precision.

    x_i - max is rounded in the accumulation type (relative error of exp: u_acc |x_i - max|) and
    the row sum of n terms has relative error below (n - 1) u_acc (recursive summation,
    Higham, Accuracy and Stability, 4.2); both are converted to ulps of the output.
    """
    base = 1.5 if fmt.bits == 16 else 3.0
    scale = 2.0 ** (fmt.precision - accumulate_precision(fmt))
    if x.ndim == 0 or x.size == 0:
        return np.full(x.shape, base)
    dim = params.get("dim", -1)
    n = x.shape[dim]
    with np.errstate(invalid="ignore", over="ignore"):
        spread = np.abs(x - np.max(x, axis=dim, keepdims=True)).astype(np.float64)
    spread = np.where(np.isfinite(spread), spread, 0.0)
    return base + (spread + n - 1) * scale


def vjp(x: np.ndarray, g: np.ndarray, dim: int = -1) -> np.ndarray:
    """s * (g - <g, s>) along dim."""
    s = reference(x, dim)
    if x.ndim == 0 or x.size == 0:
        return s * 0 * g
    return s * (g - np.sum(g * s, axis=dim, keepdims=True))


def vjp_extra(x, g, s, forward_error, params, fmt) -> np.ndarray:
    """First-order error of a backward computed from the saved output s (absolute).

    The forward error e_j of each s_j moves vjp_i by e_i |g_i - <g, s>| + s_i sum_j |g_j| e_j;
    the dot product of n terms and the subtraction add s_i (n + 1) u_acc (|g_i| + sum|g_j s_j|).
    """
    if x.ndim == 0 or x.size == 0:
        return np.zeros(x.shape)
    dim = params.get("dim", -1)
    n = x.shape[dim]
    u_acc = 2.0 ** -accumulate_precision(fmt)
    dot = np.sum(g * s, axis=dim, keepdims=True)
    carried = (forward_error * np.abs(g - dot)
               + s * np.sum(np.abs(g) * forward_error, axis=dim, keepdims=True))
    compute = s * (n + 1) * u_acc * (np.abs(g) + np.sum(np.abs(g * s), axis=dim, keepdims=True))
    return (carried + compute).astype(np.float64)


_FORMULA = {
    "float16": "1.5 + (\\|x_i - max\\| + n - 1) 2^-13",
    "bfloat16": "1.5 + (\\|x_i - max\\| + n - 1) 2^-16",
    "float32": "3 + \\|x_i - max\\| + n - 1",
    "float64": "3 + \\|x_i - max\\| + n - 1",
}


def dims(ndim: int) -> st.SearchStrategy[int]:
    return st.integers(-max(ndim, 1), max(ndim, 1) - 1)


def thresholds(fmt):
    return (0.0, math.log(fmt.max), -math.log(fmt.max), math.log(fmt.max) / 2)


SPEC = ActivationSpec(
    name="softmax",
    summary="exp(x_i) / sum_j exp(x_j) along dim",
    signature="softmax(x, dim)",
    entry_points=(
        EntryPoint("F.softmax", lambda x, dim=-1: F.softmax(x, dim)),
        EntryPoint("torch.softmax", lambda x, dim=-1: torch.softmax(x, dim)),
        EntryPoint("nn.Softmax", lambda x, dim=-1: nn.Softmax(dim)(x)),
        EntryPoint("Tensor.softmax", lambda x, dim=-1: x.softmax(dim)),
    ),
    reference=reference,
    params=(Param("dim", -1, "the dimension that sums to one; any valid dim"),),
    param_strategies={"dim": dims},
    bounds={
        name: Bound(bound, formula=_FORMULA[name], reason="1.5 ulp for 16-bit formats (the exponentials may be rounded to the "
                           "output format before the division, as PyTorch's CPU kernel does "
                           "along a non-last dim: up to 1 ulp, then 0.5 for the quotient) or "
                           "3 ulp (exp within 2, one division) plus (|x_i - max| + n - 1) "
                           "units of the float32 (float64 for float64) accumulation, in "
                           "output ulps")
        for name in ("float16", "bfloat16", "float32", "float64")
    },
    accepted=accepted,
    elementwise=False,
    derivative=Derivative(
        vjp=vjp,
        extra=vjp_extra,
        from_output=lambda y, g, dim=-1: y * (g - np.sum(g * y, axis=dim, keepdims=True)),
        bounds={name: Bound(1.0 if name in ("float16", "bfloat16") else 2.0,
                            "one rounding of the product (faithful for 16-bit formats), plus "
                            "the first-order error of the dot product and the forward output")
                for name in ("float16", "bfloat16", "float32", "float64")},
    ),
    range=lambda p: (0.0, 1.0),
    thresholds=thresholds,
    conventions=(
        "A row holding NaN is NaN.",
        "A row of only -inf is NaN in PyTorch (0/0, pytorch issue 25110); the default policy "
        "also accepts zeros there (as torch._safe_softmax returns), strict asks for NaN.",
        "A row holding +inf is NaN in PyTorch (inf - inf); the default policy also accepts the "
        "limit (equal shares at the +inf entries, 0 elsewhere), strict asks for NaN.",
        "Entries of -inf in a row with a finite entry give exactly 0.",
    ),
)
