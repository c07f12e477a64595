import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actverify.spec import (ActivationSpec, Bound, Derivative, EntryPoint, Kink,
                            every_dtype, odd_part_is_x)


def reference(x: np.ndarray) -> np.ndarray:
    # IEEE 754-2019 maximum(x, +0): +0 for -0, NaN propagates.
    return np.where(np.isnan(x) | (x > 0), x, 0.0).astype(x.dtype)


def fast_reference(x: torch.Tensor, params) -> tuple[torch.Tensor, None]:
    return torch.where(torch.isnan(x) | (x > 0), x, torch.zeros_like(x)), None


def thresholds(fmt):
    return (0.0, fmt.tiny, fmt.smallest_subnormal, fmt.max)


_EXACT = Bound(0.0, "exact: the result is the input or zero")

SPEC = ActivationSpec(
    name="relu",
    summary="rectified linear unit max(x, 0)",
    signature="relu(x)",
    entry_points=(
        EntryPoint("F.relu", F.relu),
        EntryPoint("torch.relu", torch.relu),
        EntryPoint("nn.ReLU", lambda x: nn.ReLU()(x)),
        EntryPoint("torch.relu_", torch.relu_, inplace=True),
        EntryPoint("F.relu(inplace=True)", lambda x: F.relu(x, inplace=True), inplace=True),
        EntryPoint("nn.ReLU(inplace=True)", lambda x: nn.ReLU(inplace=True)(x), inplace=True),
    ),
    reference=reference,
    bounds=every_dtype(_EXACT),
    range=lambda p: (0.0, float("inf")),
    at_infinity=lambda p: (0.0, float("inf")),
    identity_on_positive=True,
    relations=(odd_part_is_x("relu"),),
    fast_reference=fast_reference,
    derivative=Derivative(
        # PyTorch: g where x > 0, else 0 (also at the kink, and for NaN inputs).
        vjp=lambda x, g: np.where(x > 0, g, 0.0).astype(g.dtype),
        first=lambda x: (x > 0).astype(x.dtype),
        bounds=every_dtype(Bound(0.0, "exact: the upstream gradient or zero")),
        piecewise_constant=True,
        kinks=lambda p: (Kink(0.0, pytorch=0.0, subdifferential=(0.0, 1.0)),),
    ),
    thresholds=thresholds,
    same_bits_on_all_devices=True,
    conventions=(
        "relu(-0) may be -0 (PyTorch eager) or +0 (IEEE 754-2019 maximum, inductor); "
        "the default policy accepts either, strict asks for +0.",
        "NaN propagates.",
    ),
)
