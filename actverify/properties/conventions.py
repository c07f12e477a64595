"""The conventions the default policy accepts where IEEE evaluation gives NaN, stated once
for every property that compares a result with the truth, with PyTorch's entry point or with
another path to the same values, forward and backward.

A spec names the outputs its conventions accept (`ActivationSpec.accepted`: step(NaN) = 0,
zeros for a softmax row of only -inf, the limit for a row holding +inf), beside the IEEE value
NaN.  Two results that each follow one of them agree, although one may be NaN and the other a
number.  A backward through such an element is NaN (through the undefined value, as PyTorch's
softmax backward is) or 0 (the derivative of the constant the convention returns, as
torch._safe_softmax's is).  The strict policy accepts none of them.
"""

from __future__ import annotations

import numpy as np
import torch

from actverify.properties.base import Subject


def _own(params: dict) -> dict:
    return {k: v for k, v in params.items() if not k.startswith("_")}


def stated(spec, policy, x_ref: np.ndarray, y: np.ndarray, params: dict) -> np.ndarray:
    """Outputs of `spec` (a partner activation's too) that its documented conventions accept
    under `policy` (its `accepted`: step(NaN) = 0, PyTorch's gelu(+inf) = NaN, ...)."""
    if spec.accepted is None or policy.nan != "spec":
        return np.zeros(np.shape(x_ref), dtype=bool)
    return np.asarray(spec.accepted(x_ref, y, _own(params)), dtype=bool)


def conventional(s: Subject, x: torch.Tensor, values: torch.Tensor, params: dict, *,
                 backward: bool = False) -> np.ndarray:
    """Bool mask: elements of `values` (the activation's results at x, or with `backward` a
    gradient at x) that the policy accepts by convention: where the true value is undefined,
    and where the spec states a convention (its `accepted`, its derivative's `accepted`)."""
    shape = tuple(x.shape)
    found = np.zeros(shape, dtype=bool)
    if s.policy.nan != "spec":
        return found
    own = _own(params)
    xv, v = s.values(x).reshape(shape), s.values(values).reshape(shape)
    d = s.spec.derivative
    if backward and d is not None and d.accepted is not None:
        found |= np.asarray(d.accepted(xv, v, own, s.fmt), dtype=bool).reshape(shape)
    if s.spec.accepted is None:
        return found
    undefined = np.isnan(s.reference(x, own)).reshape(shape)
    if backward:
        # A NaN input has no derivative under any convention: only undefined values of
        # non-NaN inputs (a softmax row of -inf, a row holding +inf).
        return found | (undefined & ~np.isnan(xv) & (np.isnan(v) | (v == 0)))
    return found | (undefined & np.isnan(v)) | stated(s.spec, s.policy, xv, v, own)


def both_conventional(s: Subject, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                      params: dict, *, backward: bool = False) -> np.ndarray:
    """Elements where two results (a kernel's and PyTorch's, or two paths) each follow a
    convention the policy accepts: they agree there, whichever each chose."""
    return (conventional(s, x, a, params, backward=backward)
            & conventional(s, x, b, params, backward=backward))
