"""Triton kernels for the activations, each with the torch.nn.functional signature.

    TRITON_INTERPRET=1 actverify check examples/triton_kernels.py:sigmoid --activation sigmoid

Without a CUDA device the kernels run under Triton's interpreter (numpy) on CPU tensors: this
module sets TRITON_INTERPRET=1 itself when torch sees no GPU, and declares devices=["cpu"].
With a GPU (and TRITON_INTERPRET unset) the same kernels are compiled and run on CUDA tensors
only (devices=["cuda"]).

Every kernel loads its input, computes in float32 (float64 for float64 inputs), and stores the
result converted to the input's dtype (`.to(y_ptr.dtype.element_ty)`): the usual Triton idiom.
`relu` is the exception: it works in the input's own dtype with `tl.maximum`, as most Triton
ReLU kernels do.  Kernels:

* sigmoid     forward and backward in Triton (torch.autograd.Function); the backward's own
              backward (double backward) in torch ops, so gradgradcheck works too.
* tanh        forward only: x * P(x^2) for |x| < 0.55, (1 - e) / (1 + e), e = exp(-2|x|), beyond.
* relu        forward only: tl.maximum(x, 0, propagate_nan=ALL) in the input's dtype.
* leaky_relu  forward only: where(x > 0, x, x * slope), the slope in the compute dtype.
* step        forward only: where(x > 0, 1, 0) (step(NaN) = 0, PyTorch's convention).
* softmax     forward only, last dim only: three passes over each row in chunks of up to 4096
              columns (max, sum of exp, write), several rows per program for narrow rows.

Under the interpreter bfloat16 is stored as uint16 and Triton 3.9.0's interpreter mishandles
it: float32 -> bfloat16 truncates (round toward zero, not to nearest even), bfloat16 and
float32 subnormals are converted wrongly in both directions, and comparisons / tl.maximum on
bfloat16 compare the raw uint16 bit patterns.  actverify reports each of these (see
examples/README.md and tests/test_examples.py); on CUDA none of them applies.

Not verified here (no GPU): compiled for CUDA, tl.exp on float32 may lower to the approximate
ex2.approx.f32 (after a multiplication by log2 e), whose error grows with |x|; the float32
sigmoid, tanh and softmax bounds may not hold there.  Run the check on a GPU to find out.
"""

from __future__ import annotations

import os
import sys

import torch

if not torch.cuda.is_available():  # no GPU: the interpreter is the only way Triton runs here
    os.environ.setdefault("TRITON_INTERPRET", "1")

import mpmath  # noqa: E402
import numpy as np  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

import actverify  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # examples/ load each other
from _autograd import sigmoid_function  # noqa: E402

INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
# Triton's own @jit helpers (tl.max, tl.sum, ...) are made interpretable when triton is first
# imported: a process that imported triton before TRITON_INTERPRET was set cannot interpret
# kernels that use them (RuntimeError "Cannot call @triton.jit'd outside of the scope of a
# kernel").  Say so now rather than fail inside the softmax.
if INTERPRETED and type(tl.standard.max).__name__ != "InterpretedFunction":
    raise ImportError("triton was imported before TRITON_INTERPRET=1 was set: set it in the "
                      "environment, or import this module before triton")
DEVICES = ["cpu"] if INTERPRETED else ["cuda"]
DTYPES = ["float16", "bfloat16", "float32", "float64"]
BLOCK = 1024  # elements per program (elementwise kernels)
LIMITS = ("Triton interpreter on CPU tensors (TRITON_INTERPRET=1)" if INTERPRETED
          else "CUDA tensors only")
# The interpreter runs a kernel in Python: tensors of millions of elements (the scale regimes)
# would take minutes.
MAX_ELEMENTS = 2**20 if INTERPRETED else None


def _compute_dtype(x: torch.Tensor):
    """(Triton, torch) dtype the arithmetic runs in: float64 for float64, else float32."""
    return (tl.float64, torch.float64) if x.dtype == torch.float64 else (tl.float32,
                                                                          torch.float32)


def _launch(kernel, grid, *args, **meta) -> None:
    # The interpreter evaluates in numpy, which warns where IEEE arithmetic overflows
    # (float32 -> float16 casts of large values, inf * 0): expected here, not news.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        kernel[grid](*args, **meta)


def _elementwise(kernel, x: torch.Tensor, *args, **meta) -> torch.Tensor:
    """Run `kernel(x_ptr, y_ptr, n, *args, BLOCK, CT)` over a contiguous copy of x (strided
    inputs are copied: the kernels index a flat array)."""
    xc = x.contiguous()
    y = torch.empty_like(xc)
    n = xc.numel()
    if n:
        _launch(kernel, (triton.cdiv(n, BLOCK),), xc, y, n, *args, BLOCK=BLOCK,
                CT=_compute_dtype(x)[0], **meta)
    return y


# ------------------------------------------------------------------------------- sigmoid

@triton.jit
def _sigmoid_fwd(x_ptr, y_ptr, n, BLOCK: tl.constexpr, CT: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask).to(CT)
    e = tl.exp(-tl.abs(x))  # never overflows
    y = tl.where(x >= 0, 1 / (1 + e), e / (1 + e))
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _sigmoid_bwd(g_ptr, y_ptr, gx_ptr, n, BLOCK: tl.constexpr, CT: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(g_ptr + offs, mask=mask).to(CT)
    y = tl.load(y_ptr + offs, mask=mask).to(CT)
    gx = g * (y * (1 - y))
    tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)


def _sigmoid_backward(g: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """g * y * (1 - y) in Triton."""
    gc, yc = g.contiguous(), y.contiguous()
    gx = torch.empty_like(yc)
    n = yc.numel()
    if n:
        _launch(_sigmoid_bwd, (triton.cdiv(n, BLOCK),), gc, yc, gx, n, BLOCK=BLOCK,
                CT=_compute_dtype(y)[0])
    return gx


SigmoidFunction = sigmoid_function(lambda x: _elementwise(_sigmoid_fwd, x), _sigmoid_backward)


@actverify.declare(dtypes=DTYPES, devices=DEVICES, backward=True, limits=LIMITS,
                   max_elements=MAX_ELEMENTS)
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return SigmoidFunction.apply(x)


# ---------------------------------------------------------------------------------- tanh

def _tanh_coefficients(count: int) -> list[float]:
    """tanh x = sum_k c_k x^(2k+1): c_k = 2^2n (2^2n - 1) B_2n / (2n)!, n = k + 1."""
    with mpmath.workdps(40):
        return [float(mpmath.mpf(4) ** n * (mpmath.mpf(4) ** n - 1) * mpmath.bernoulli(2 * n)
                      / mpmath.factorial(2 * n)) for n in range(1, count + 1)]


# Terms for |x| < 0.55: the next term is below 2^-24 (float32) or 2^-53 (float64) relative.
_TANH_TERMS = {torch.float32: 10, torch.float64: 18}
_TANH_COEFFS = {dt: _tanh_coefficients(k) for dt, k in _TANH_TERMS.items()}


@triton.jit
def _tanh_fwd(x_ptr, y_ptr, n, c_ptr, BLOCK: tl.constexpr, CT: tl.constexpr,
              TERMS: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask).to(CT)
    a = tl.abs(x)
    e = tl.exp(-2 * a)
    big = (1 - e) / (1 + e)  # no cancellation for |x| >= 0.55 (e <= 1/3)
    s = x * x
    p = tl.load(c_ptr + TERMS - 1)  # coefficients in the compute dtype (literals are fp32)
    for i in tl.static_range(TERMS - 1):
        p = p * s + tl.load(c_ptr + TERMS - 2 - i)
    small = x * p  # keeps tanh(-0) = -0
    y = tl.where(a < 0.55, small, tl.where(x < 0, -big, big))
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@actverify.declare(dtypes=DTYPES, devices=DEVICES, backward=False, limits=LIMITS,
                   max_elements=MAX_ELEMENTS)
def tanh(x: torch.Tensor) -> torch.Tensor:
    ct = _compute_dtype(x)[1]
    coeffs = torch.tensor(_TANH_COEFFS[ct], dtype=ct, device=x.device)
    return _elementwise(_tanh_fwd, x, coeffs, TERMS=_TANH_TERMS[ct])


# ---------------------------------------------------------------------------------- relu

@triton.jit
def _relu_fwd(x_ptr, y_ptr, n, BLOCK: tl.constexpr, CT: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)  # the input's own dtype: max needs no rounding
    y = tl.maximum(x, 0.0, propagate_nan=tl.PropagateNan.ALL)
    tl.store(y_ptr + offs, y, mask=mask)


@actverify.declare(dtypes=DTYPES, devices=DEVICES, backward=False, limits=LIMITS,
                   max_elements=MAX_ELEMENTS)
def relu(x: torch.Tensor) -> torch.Tensor:
    return _elementwise(_relu_fwd, x)


# ---------------------------------------------------------------------------- leaky_relu

@triton.jit
def _leaky_relu_fwd(x_ptr, y_ptr, n, slope_ptr, BLOCK: tl.constexpr, CT: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask).to(CT)
    slope = tl.load(slope_ptr)  # a Python float argument would be rounded to float32
    y = tl.where(x > 0, x, x * slope)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@actverify.declare(dtypes=DTYPES, devices=DEVICES, backward=False, limits=LIMITS,
                   max_elements=MAX_ELEMENTS)
def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    slope = torch.tensor([negative_slope], dtype=_compute_dtype(x)[1], device=x.device)
    return _elementwise(_leaky_relu_fwd, x, slope)


# ---------------------------------------------------------------------------------- step

@triton.jit
def _step_fwd(x_ptr, y_ptr, n, BLOCK: tl.constexpr, CT: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask).to(CT)
    y = tl.where(x > 0, 1.0, 0.0)  # NaN > 0 is false: step(NaN) = 0 as in PyTorch
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@actverify.declare(dtypes=DTYPES, devices=DEVICES, backward=False, limits=LIMITS,
                   max_elements=MAX_ELEMENTS)
def step(x: torch.Tensor) -> torch.Tensor:
    return _elementwise(_step_fwd, x)


# ------------------------------------------------------------------------------- softmax

SOFTMAX_TILE = 4096  # elements per program and pass: ROWS x BLOCK_N


@triton.jit
def _softmax_fwd(x_ptr, y_ptr, n_rows, n_cols, ROWS: tl.constexpr, BLOCK_N: tl.constexpr,
                 CT: tl.constexpr):
    rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
    row_ok = rows < n_rows
    base = rows.to(tl.int64) * n_cols
    # pass 1: the row maximum (NaN propagates; masked lanes are -inf)
    m = tl.full([ROWS, BLOCK_N], float("-inf"), CT)
    for start in range(0, n_cols, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        mask = row_ok[:, None] & (cols[None, :] < n_cols)
        x = tl.load(x_ptr + base[:, None] + cols[None, :], mask=mask).to(CT)
        x = tl.where(mask, x, float("-inf"))
        m = tl.maximum(m, x, propagate_nan=tl.PropagateNan.ALL)
    mx = tl.max(m, axis=1)
    # pass 2: the sum of exp(x - max), accumulated in the compute dtype
    acc = tl.zeros([ROWS, BLOCK_N], CT)
    for start in range(0, n_cols, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        mask = row_ok[:, None] & (cols[None, :] < n_cols)
        x = tl.load(x_ptr + base[:, None] + cols[None, :], mask=mask).to(CT)
        e = tl.exp(x - mx[:, None])
        acc += tl.where(mask, e, 0.0)
    total = tl.sum(acc, axis=1)
    # pass 3: exp(x - max) / sum
    for start in range(0, n_cols, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        mask = row_ok[:, None] & (cols[None, :] < n_cols)
        x = tl.load(x_ptr + base[:, None] + cols[None, :], mask=mask).to(CT)
        y = tl.exp(x - mx[:, None]) / total[:, None]
        tl.store(y_ptr + base[:, None] + cols[None, :], y.to(y_ptr.dtype.element_ty), mask=mask)


@actverify.declare(dtypes=DTYPES, devices=DEVICES, softmax_dims="last", backward=False,
                   limits=LIMITS, max_elements=MAX_ELEMENTS)
def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    ndim = max(x.dim(), 1)
    if dim % ndim != ndim - 1:
        raise ValueError(f"this Triton softmax reduces over the last dim only, got dim={dim}")
    xc = x.contiguous()
    y = torch.empty_like(xc)
    if xc.numel() == 0:
        return y
    n_cols = xc.shape[-1] if xc.dim() else 1
    n_rows = xc.numel() // n_cols
    block_n = min(max(triton.next_power_of_2(n_cols), 16), SOFTMAX_TILE)
    rows = max(SOFTMAX_TILE // block_n, 1)
    _launch(_softmax_fwd, (triton.cdiv(n_rows, rows),), xc, y, n_rows, n_cols, ROWS=rows,
            BLOCK_N=block_n, CT=_compute_dtype(x)[0])
    return y


__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "step", "softmax", "SigmoidFunction",
           "INTERPRETED", "DEVICES"]
