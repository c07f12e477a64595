import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from actverify.spec import ActivationSpec, Bound, Derivative, EntryPoint, Kink, Param


def reference(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    # The product is exact in the reference types for 16/32-bit inputs; for float64 inputs it
    # is correctly rounded in extended precision.  IEEE evaluation: -inf * 0 is NaN.
    with np.errstate(invalid="ignore"):
        return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def fast_reference(x: torch.Tensor, params) -> tuple[torch.Tensor, None]:
    return torch.where(x > 0, x, x * float(params.get("negative_slope", 0.01))), None


def defined(x: torch.Tensor, params) -> torch.Tensor:
    """Where the true value is not NaN: -inf * 0 is NaN for a zero slope."""
    undefined = torch.isnan(x)
    if float(params.get("negative_slope", 0.01)) == 0:
        undefined = undefined | (x == -math.inf)
    return ~undefined


def thresholds(fmt):
    return (0.0, fmt.tiny, -fmt.tiny, -fmt.smallest_subnormal, -fmt.max)


# Slopes the issue names: 0, tiny, the default, 1, above 1, negative; plus any in between.
SLOPES = (0.0, 2.0**-20, 0.01, 0.2, 1.0, 2.5, -2.0, -0.5)


def _beyond_float32(v: float) -> bool:
    """Whether float32 cannot hold v exactly."""
    return float(np.float32(v)) != v


def slopes(ndim: int, fmt=None) -> st.SearchStrategy[float]:
    """Slopes in the kernel's precision: float64 kernels also get slopes that float32 cannot
    hold (a kernel that rounds the slope to float32 is then off); the others float32 slopes."""
    width = 64 if fmt is not None and fmt.bits == 64 else 32
    drawn = st.floats(-10.0, 10.0, allow_subnormal=False, width=width)
    if width == 64:
        # Hypothesis favours simple floats (integers, halves, its constants), which float32
        # holds exactly: without this filter about seven drawn float64 slopes in ten are
        # float32 values, and a float64 kernel that rounds its slope to float32 is rarely seen.
        drawn = drawn.filter(_beyond_float32)  # named: see strategies._one_dim
    return st.one_of(st.sampled_from(SLOPES), drawn)


# PyTorch refuses the backward of the in-place form for negative slopes (it cannot recover the
# input's sign from the overwritten output).
_INPLACE_BACKWARD = lambda p: p["negative_slope"] >= 0  # noqa: E731
_INPLACE_LIMITS = "backward with a negative negative_slope is not supported (PyTorch raises)"

SPEC = ActivationSpec(
    name="leaky_relu",
    summary="x for x > 0, negative_slope * x otherwise",
    signature="leaky_relu(x, negative_slope=0.01)",
    entry_points=(
        EntryPoint("F.leaky_relu", lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope)),
        EntryPoint("nn.LeakyReLU", lambda x, negative_slope=0.01: nn.LeakyReLU(negative_slope)(x)),
        EntryPoint(
            "F.leaky_relu(inplace=True)",
            lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope, inplace=True),
            inplace=True, backward_supports=_INPLACE_BACKWARD, limits=_INPLACE_LIMITS,
        ),
        EntryPoint(
            "nn.LeakyReLU(inplace=True)",
            lambda x, negative_slope=0.01: nn.LeakyReLU(negative_slope, inplace=True)(x),
            inplace=True, backward_supports=_INPLACE_BACKWARD, limits=_INPLACE_LIMITS,
        ),
    ),
    reference=reference,
    params=(Param("negative_slope", 0.01, "slope for x <= 0; any real number"),),
    param_strategies={"negative_slope": slopes},
    bounds={
        "float16": Bound(1.0, "slope and product in float32, then rounded to 16 bits: "
                              "double rounding can pass the half-ulp mark"),
        "bfloat16": Bound(1.0, "as float16"),
        "float32": Bound(1.0, "the slope is rounded to float32 (0.5 ulp) before one correctly "
                              "rounded product (0.5 ulp)"),
        "float64": Bound(0.5, "one correctly rounded product with the exact float64 slope"),
    },
    at_infinity=lambda p: (
        float("nan") if p["negative_slope"] == 0 else -np.sign(p["negative_slope"]) * np.inf,
        float("inf"),
    ),
    monotone=lambda p: p["negative_slope"] >= 0,
    derivative=Derivative(
        # PyTorch: x > 0 ? g : g * slope, so the kink takes the slope.
        vjp=lambda x, g, negative_slope=0.01: np.where(x > 0, g, g * x.dtype.type(negative_slope)),
        first=lambda x, negative_slope=0.01: np.where(x > 0, 1.0, negative_slope).astype(x.dtype),
        bounds={
            "float16": Bound(1.0, "g * slope in float32, rounded to 16 bits: double rounding"),
            "bfloat16": Bound(1.0, "as float16"),
            "float32": Bound(1.0, "slope rounded to float32, then one product"),
            "float64": Bound(0.5, "one correctly rounded product"),
        },
        piecewise_constant=True,
        kinks=lambda p: (Kink(0.0, pytorch=p["negative_slope"],
                              subdifferential=tuple(sorted((p["negative_slope"], 1.0)))),),
    ),
    identity_on_positive=True,
    thresholds=thresholds,
    fast_reference=fast_reference,
    defined=defined,
    same_bits_on_all_devices=True,
    conventions=(
        "x > 0 gives x; otherwise negative_slope * x evaluated in IEEE arithmetic: "
        "leaky_relu(-inf, 0) is NaN (-inf * 0), leaky_relu(-0, -2) is +0.",
        "NaN propagates.",
    ),
)
