"""The verdicts a sweep gives come from the property suite's own functions, imported here and
nowhere else in the sweep, so that a sweep and a property never disagree about what counts as
wrong (and so that moving those functions changes the imports of this one module)."""

from __future__ import annotations

import numpy as np
import torch

from actverify.accuracy import Comparison, compare
from actverify.properties.base import Subject
from actverify.properties.conventions import conventional
from actverify.properties.derivatives import (at_kink_within_subdifferential, gradient,
                                              own_output_error, tolerance)
from actverify.properties.values import judge


def judge_gradient(s: Subject, x: torch.Tensor, g: torch.Tensor, gx: torch.Tensor,
                   params: dict) -> tuple[Comparison, np.ndarray, np.ndarray, np.ndarray]:
    """(comparison, reference, bad, accepted) for a gradient gx at x with upstream g, composed
    as the `gradient_accuracy` property composes it: `tolerance` and `compare`, less what the
    subdifferential at a kink and the spec's conventions (`conventional`, backward: PyTorch's
    NaN gradients of GELU's tanh form where x^3 overflows) accept.  This composition belongs
    with the property's (one function for both) once the verdict functions share a module."""
    gx = gx.detach()
    with np.errstate(all="ignore"):
        ref, bound = tolerance(s, x, g, params)
        cmp = compare(gx, ref, fmt=s.fmt, bound=bound, policy=s.policy,
                      zero_sign_specified=False)
    accepted = (np.asarray(at_kink_within_subdifferential(s, x, g, gx, params), dtype=bool)
                | conventional(s, x, gx, params, backward=True))
    return cmp, ref, np.asarray(cmp.bad) & ~accepted, accepted


__all__ = ["gradient", "judge", "judge_gradient", "own_output_error"]
