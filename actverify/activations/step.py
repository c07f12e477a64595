import numpy as np
import torch

from actverify.spec import ActivationSpec, Bound, EntryPoint, every_dtype


def heaviside(x: torch.Tensor) -> torch.Tensor:
    return torch.heaviside(x, torch.zeros((), dtype=x.dtype, device=x.device))


def heaviside_(x: torch.Tensor) -> torch.Tensor:
    return x.heaviside_(torch.zeros((), dtype=x.dtype, device=x.device))


def reference(x: np.ndarray) -> np.ndarray:
    # IEEE reading: NaN propagates.  PyTorch returns 0 for NaN, accepted by the default policy
    # through `accepted`.
    return np.where(np.isnan(x), x, (x > 0).astype(x.dtype))


def fast_reference(x: torch.Tensor, params) -> tuple[torch.Tensor, None]:
    return torch.where(torch.isnan(x), x, (x > 0).to(x.dtype)), None


def thresholds(fmt):
    return (0.0, fmt.smallest_subnormal, -fmt.smallest_subnormal)


_EXACT = Bound(0.0, "exact: the result is 0 or 1")

SPEC = ActivationSpec(
    name="step",
    summary="binary step: 1 where x > 0, else 0 (torch.heaviside(x, 0))",
    signature="step(x)",
    entry_points=(
        EntryPoint("torch.heaviside(x, 0)", heaviside),
        EntryPoint("Tensor.heaviside", lambda x: x.heaviside(torch.zeros_like(x))),
        EntryPoint("Tensor.heaviside_", heaviside_, inplace=True),
    ),
    reference=reference,
    bounds=every_dtype(_EXACT),
    range=lambda p: (0.0, 1.0),
    discrete_values=frozenset({0.0, 1.0}),
    at_infinity=lambda p: (0.0, 1.0),
    accepted=lambda x, y, params: np.isnan(x) & (y == 0),
    thresholds=thresholds,
    fast_reference=fast_reference,
    same_bits_on_all_devices=True,
    conventions=(
        "step(0) = step(-0) = 0: the threshold belongs to the lower side.",
        "step(NaN) is 0 in PyTorch (NumPy's heaviside gives NaN); the default policy "
        "accepts PyTorch's 0, strict asks for NaN.",
    ),
)
