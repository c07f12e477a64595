import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actverify.activations.sigmoid import _TRANSCENDENTAL_16, BACKWARD
from actverify.spec import (ActivationSpec, Bound, Derivative, EntryPoint, Relation,
                            every_dtype)


def fast_reference(x: torch.Tensor, params) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.tanh(x)
    return t, -t  # odd: the true tanh(-x) is exactly -tanh(x)


def first(x: np.ndarray) -> np.ndarray:
    # sech^2 x, not 1 - tanh^2 x, which cancels to 0 once tanh rounds to 1.
    with np.errstate(over="ignore"):
        return 1 / np.cosh(x) ** 2


def second(x: np.ndarray) -> np.ndarray:
    return -2 * np.tanh(x) * first(x)


def thresholds(fmt):
    return (
        0.0,
        math.sqrt(3 * 2.0**-fmt.precision),  # below this tanh(x) rounds to x
        (fmt.precision + 2) * math.log(2) / 2,  # above this tanh rounds to 1
        math.log(fmt.max) / 2,  # above this a naive e^(2x) overflows
        fmt.tiny,
    )


_WIDE = Bound(
    2.0,
    "the CUDA Programming Guide's bound for tanhf; glibc's tanh/tanhf are within it",
)

SPEC = ActivationSpec(
    name="tanh",
    summary="hyperbolic tangent",
    signature="tanh(x)",
    entry_points=(
        EntryPoint("F.tanh", F.tanh),
        EntryPoint("torch.tanh", torch.tanh),
        EntryPoint("nn.Tanh", lambda x: nn.Tanh()(x)),
        EntryPoint("torch.tanh_", torch.tanh_, inplace=True),
    ),
    reference=np.tanh,
    bounds={"float16": _TRANSCENDENTAL_16, "bfloat16": _TRANSCENDENTAL_16,
            "float32": _WIDE, "float64": _WIDE},
    range=lambda p: (-1.0, 1.0),
    at_infinity=lambda p: (-1.0, 1.0),
    point_symmetry=0.0,
    relations=(Relation(text="tanh(x) = 2 sigmoid(2x) - 1", partner="sigmoid",
                        inner=lambda x: 2 * x, outer=lambda x, s: 2 * s - 1,
                        gain=lambda x: np.full_like(x, 2.0)),),
    fast_reference=fast_reference,
    zero_sign="specified",
    derivative=Derivative(
        vjp=lambda x, g: g * first(x),
        from_output=lambda y, g: g * (1 - y * y),
        first=first,
        second=second,
        bounds=every_dtype(BACKWARD),
        # f' = 1 - y^2: |d f'/d y| = 2|y|;  f'' = -2y (1 - y^2): |6y^2 - 2|.
        output_sensitivity=lambda y: 2 * np.abs(y),
        second_sensitivity=lambda y: np.abs(6 * y * y - 2),
        range=lambda p: (0.0, 1.0),
        peak=(0.0, 1.0),
        even=True,
    ),
    thresholds=thresholds,
    conventions=("Odd: tanh(-0) = -0.", "NaN propagates."),
)
