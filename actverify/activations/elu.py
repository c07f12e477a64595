"""ELU with alpha = 1: x for x > 0, e^x - 1 otherwise (Clevert et al., 2015)."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actverify.activations.sigmoid import _TRANSCENDENTAL_16, BACKWARD
from actverify.spec import ActivationSpec, Bound, Derivative, EntryPoint, every_dtype


def reference(x: np.ndarray) -> np.ndarray:
    # expm1, not exp(x) - 1, which cancels near 0; x itself where x > 0 (NaN propagates
    # through expm1).  expm1(-0) = -0, as the definition's e^x - 1 rounds in IEEE arithmetic.
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def fast_reference(x: torch.Tensor, params) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.where(x > 0, x, torch.expm1(x.clamp(max=0))),
            torch.where(x < 0, -x, torch.expm1((-x).clamp(max=0))))


def first(x: np.ndarray) -> np.ndarray:
    # Continuous at 0 for alpha = 1: e^0 = 1 from the left, 1 from the right.
    return np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))).astype(x.dtype)


def thresholds(fmt):
    return (
        0.0,
        -(fmt.precision + 1) * math.log(2),  # below this e^x - 1 rounds to -1
        fmt.emin * math.log(2),  # below this e^x (the derivative) is subnormal
        -math.sqrt(2.0**-fmt.precision),  # above this (to 0) expm1(x) rounds to x
    )


_WIDE = Bound(
    2.0,
    "alpha * expm1(x): expm1 within 1 ulp (the CUDA Programming Guide's bound for expm1f "
    "and expm1; glibc's are within it), and one rounding of the product with alpha, which a "
    "kernel multiplies by without knowing it is 1 (at most 1 ulp of the result's binade)",
)

SPEC = ActivationSpec(
    name="elu",
    summary="exponential linear unit x for x > 0, e^x - 1 otherwise (alpha = 1)",
    signature="elu(x)",
    entry_points=(
        EntryPoint("F.elu", F.elu),
        EntryPoint("nn.ELU", lambda x: nn.ELU()(x)),
        EntryPoint("F.elu_", F.elu_, inplace=True),
        EntryPoint("F.elu(inplace=True)", lambda x: F.elu(x, inplace=True), inplace=True),
        EntryPoint("nn.ELU(inplace=True)", lambda x: nn.ELU(inplace=True)(x), inplace=True),
    ),
    reference=reference,
    bounds={"float16": _TRANSCENDENTAL_16, "bfloat16": _TRANSCENDENTAL_16,
            "float32": _WIDE, "float64": _WIDE},
    range=lambda p: (-1.0, float("inf")),
    at_infinity=lambda p: (-1.0, float("inf")),
    identity_on_positive=True,
    fast_reference=fast_reference,
    derivative=Derivative(
        vjp=lambda x, g: g * first(x),
        # The in-place forms keep only the output: g (y + alpha) for y <= 0, which cancels
        # where y rounds to -1 (x < -17.3 in float32): the forward's error is carried through
        # |d f'/d y| = 1 there, 0 where f' = 1.
        from_output=lambda y, g: g * np.where(y > 0, 1.0, y + 1),
        output_sensitivity=lambda y: np.where(y > 0, 0.0, 1.0),
        first=first,
        bounds=every_dtype(BACKWARD),
        range=lambda p: (0.0, 1.0),
        peak=(0.0, 1.0),
    ),
    thresholds=thresholds,
    zero_sign="free",
    conventions=("NaN propagates.", "elu(-inf) = -1 exactly; elu(x) = x bit for bit for x > 0."),
)
