"""Cross-device agreement: a kernel on an accelerator against PyTorch's CPU kernel.

These properties apply only off the CPU (`off_cpu=True`); the device is the subject's: an
accelerator, or the stand-in second device `cpu:1` (actverify/standin.py) where none exists.
"""

from __future__ import annotations

import dataclasses

import torch

from actverify.judgement import same_bits
from actverify.properties.base import Subject, always, define
from actverify.properties.derivatives import (differentiable, gradient, tolerance,
                                              upstream_inputs)
from actverify.properties.semantics import inconsistent, with_layouts
from actverify.strategies import Case


def on_cpu(s: Subject) -> Subject:
    """The same target and policy on the CPU, where PyTorch's reference results come from."""
    return dataclasses.replace(s, device="cpu")


def _agree(s: Subject, case: Case, here: torch.Tensor, cpu: torch.Tensor, what: str,
           allowance=None) -> None:
    there = here.cpu()
    if s.spec.same_bits_on_all_devices:
        # Bit for bit, except a zero's sign where the spec leaves it free (relu(-0.0) is -0.0
        # in eager PyTorch on the CPU, +0.0 from inductor and Triton's tl.maximum).
        bad = ~same_bits(there, cpu).reshape(tuple(there.shape))
        if s.spec.zero_sign != "specified" and s.policy.zero_sign != "always":
            bad &= ~((s.values(there) == 0) & (s.values(cpu) == 0))
        s.fail_where(bad, f"{what} differs from the CPU's", x=case.x.cpu(), actual=there,
                     expected=s.values(cpu), case=case.with_input(case.x.cpu()))
    else:
        inconsistent(s, case.with_input(case.x.cpu()), there, cpu,
                     f"{what} differs from the CPU's", allowance=allowance)


@define("cross_device", summary="results on the accelerator equal PyTorch's CPU results (bit for "
     "bit for ReLU, leaky ReLU and step, a zero's sign where specified; within the accuracy "
     "model otherwise)",
     applies=always, inputs=with_layouts, off_cpu=True)
def cross_device(s: Subject, case: Case) -> None:
    here = s.call(case.x, case.params)
    cpu = on_cpu(s).call(case.x.cpu(), case.params, fn=s.spec.canonical.fn, inplace=False)
    _agree(s, case, here, cpu, f"{s.target.name} on {s.device}")


@define("cross_device_gradient", summary="gradients on the accelerator equal PyTorch's CPU "
     "gradients (same rule as cross_device)", applies=differentiable, inputs=upstream_inputs,
     kind="backward", off_cpu=True)
def cross_device_gradient(s: Subject, case: Case) -> None:
    x, g = case.x, case.upstream
    here = gradient(s, x, g, case.params)
    cpu = gradient(on_cpu(s), x.cpu(), g.cpu(), case.params, fn=s.spec.canonical.fn,
                   inplace=False)
    _agree(s, case, here, cpu, f"the gradient of {s.target.name} on {s.device}",
           allowance=tolerance(s, x, g, case.params))
