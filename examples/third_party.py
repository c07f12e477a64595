"""A kernel nobody on the team wrote: Liger-Kernel's Triton softmax (PyPI `liger-kernel`,
liger_kernel/ops/softmax.py, LigerSoftmaxFunction), adapted to F.softmax's signature.

    pip install --no-deps liger-kernel==0.8.5
    actverify check examples/third_party.py:liger_softmax --activation softmax

Liger's softmax reduces over the last dimension only (declared: softmax_dims="last"); its
forward and backward are Triton kernels (torch.autograd.Function), run here exactly as
published.  Two adapters:

* `liger_softmax_raw` checks `dim` and calls `LigerSoftmaxFunction.apply(x)`: everything else
  is Liger's own, and actverify reports that 0-d inputs raise ValueError (`*batch, n_cols =
  x.shape`), an empty last dim raises RuntimeError (`view(-1, 0)`), and rows wider than 65536
  raise RuntimeError (`calculate_settings`; so its multi-block kernels are never reached).
  The 0-d failures drown the numerical findings (nearly every property draws a 0-d input).
* `liger_softmax` also handles the degenerate shapes a model never gives it (0-d: as one
  element; empty: returned as is), and hands every other input to Liger unchanged, rows
  wider than 65536 included.

Its backward is a Triton kernel that autograd cannot differentiate again: with
create_graph=True the gradient comes back without a grad_fn, so gradgradcheck fails
("Numerical gradient for function expected to be zero").

Without a GPU, Triton runs it under its interpreter (TRITON_INTERPRET=1, set
here before Liger's kernels are defined), on CPU tensors.
"""

from __future__ import annotations

import os

import numpy as np
import torch

if not torch.cuda.is_available():  # before liger_kernel defines its @triton.jit kernels
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton.language as tl  # noqa: E402
from liger_kernel.ops.softmax import LigerSoftmaxFunction  # noqa: E402

import actverify  # noqa: E402

INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
if INTERPRETED and type(tl.standard.max).__name__ != "InterpretedFunction":
    # tl.max / tl.sum (used by Liger's softmax) were defined before the interpreter was on.
    raise ImportError("triton was imported before TRITON_INTERPRET=1 was set: set it in the "
                      "environment, or import this module before triton")
DEVICES = ["cpu"] if INTERPRETED else ["cuda"]
LIMITS = ("Triton interpreter on CPU tensors (TRITON_INTERPRET=1)" if INTERPRETED
          else "CUDA tensors only")
# The interpreter runs a kernel in Python: tensors of millions of elements (the scale regimes)
# would take minutes.
MAX_ELEMENTS = 2**20 if INTERPRETED else None


def _last_dim_only(x: torch.Tensor, dim: int) -> None:
    ndim = max(x.dim(), 1)
    if dim % ndim != ndim - 1:
        raise ValueError(f"Liger's softmax reduces over the last dim only, got dim={dim}")


@actverify.declare(devices=DEVICES, softmax_dims="last", limits=LIMITS,
                   max_elements=MAX_ELEMENTS)
def liger_softmax_raw(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    _last_dim_only(x, dim)
    with _quiet():
        return LigerSoftmaxFunction.apply(x)


def _quiet():
    # The interpreter evaluates in numpy, which warns where IEEE arithmetic overflows.
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


@actverify.declare(devices=DEVICES, softmax_dims="last", limits=LIMITS,
                   max_elements=MAX_ELEMENTS)
def liger_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    _last_dim_only(x, dim)
    if x.dim() == 0:
        return LigerSoftmaxFunction.apply(x.reshape(1)).reshape(())
    if x.numel() == 0:
        return x.clone()  # nothing to compute; keeps the autograd graph
    with _quiet():
        return LigerSoftmaxFunction.apply(x)


__all__ = ["liger_softmax", "liger_softmax_raw", "LigerSoftmaxFunction", "INTERPRETED"]
