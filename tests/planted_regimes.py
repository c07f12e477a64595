"""Kernels exact on most inputs and wrong only in the regimes real kernels break in:
past 2^24 elements, beyond a launch grid's 65,535 rows, with a wrapped offset, on the last
partial tile of a long row (tests/test_regimes.py; the property is actverify/properties/scale.py).

Each has the torch.nn.functional signature of its activation and computes PyTorch's own
values except where its bug lies, so the scale property is the one that must fire.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tests.gradient_kernels import custom_function

GRID_LIMIT = 65_535  # CUDA's y and z grid limit
TILE = 4096
EXACT = 2**24  # integers exact in float32
WRAP = 2**24  # where the simulated offset wraps


def sigmoid_float32_index(x: torch.Tensor) -> torch.Tensor:
    """Element indices computed in float32, as a kernel computing idx = float(block) * width +
    lane does: exact up to 2^24, past it odd indices round to even ones and read a neighbour."""
    flat = x.reshape(-1)
    y = torch.sigmoid(flat)
    # Below 2^24 the float32 index is exact: compute only the part past it the buggy way.
    if flat.numel() > EXACT:
        idx = torch.arange(EXACT, flat.numel(), dtype=torch.float32).long()
        y[EXACT:] = torch.sigmoid(flat[idx])
    return y.reshape(x.shape)


def tanh_offset_wrap(x: torch.Tensor) -> torch.Tensor:
    """An element offset that wraps: the int32 wrap at 2^31, simulated with 24-bit offsets so
    that it shows on 2^24 + 1 elements; elements past the wrap read from the start."""
    flat = x.reshape(-1)
    y = torch.tanh(flat)
    y[WRAP:] = y[: max(0, flat.numel() - WRAP)]  # offset i & (WRAP - 1)
    return y.reshape(x.shape)


def relu_second_launch_reads_from_zero(x: torch.Tensor) -> torch.Tensor:
    """Work split into launches of 2^24 elements, the second launch's first vector (8 lanes)
    reading from offset 0 instead of its own: 8 wrong elements among more than 2^24, far from
    the first and the last, in any dtype (the scale screen must flag them, not everything)."""
    flat = x.reshape(-1)
    y = torch.relu(flat)
    if flat.numel() >= EXACT + 8:
        y[EXACT:EXACT + 8] = torch.relu(flat[:8])
    return y.reshape(x.shape)


def relu_grid_y_limit(x: torch.Tensor) -> torch.Tensor:
    """A launch grid with the last dimension on x and the others on y and z: rows past 65,535
    along a leading or middle dimension get no block and are left unwritten (zero here)."""
    out = torch.zeros_like(x)
    rows = tuple(slice(0, GRID_LIMIT) for _ in range(x.ndim - 1)) + (slice(None),)
    out[rows] = torch.relu(x[rows])
    return out


def softmax_grid_y_limit(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """One block per row, the batch dimensions on the grid's y and z: rows past 65,535 along
    any dimension other than dim are left unwritten (zero here)."""
    d = dim % x.ndim if x.ndim else 0
    out = torch.zeros_like(x)
    rows = tuple(slice(None) if i == d else slice(0, GRID_LIMIT) for i in range(x.ndim))
    out[rows] = F.softmax(x[rows], dim)
    return out


def softmax_skips_last_tile(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Rows longer than 2^16 take a tiled path (tiles of 4,096) that forgets the last partial
    tile: those entries are left zero and missing from the row's maximum and sum."""
    if x.ndim == 0 or x.shape[dim] <= 2**16:
        return F.softmax(x, dim)
    full = x.shape[dim] // TILE * TILE
    out = torch.zeros_like(x)
    out.narrow(dim, 0, full).copy_(F.softmax(x.narrow(dim, 0, full), dim))
    return out


# ------------------------------------------------------------------------------- seams


def sigmoid_seam_at_4(x: torch.Tensor) -> torch.Tensor:
    """A fast approximation switched in at |x| = 4 that is 3e-4 off where it starts: the output
    drops by 3e-4 as x crosses 4 (and rises as it crosses -4), a window of about 0.02 that
    random draws rarely straddle.  Caught by `monotonic` through its seam probe."""
    y = torch.sigmoid(x.double())
    y = torch.where(x >= 4, y - 3e-4, y)
    y = torch.where(x <= -4, y + 3e-4, y)
    return y.to(x.dtype)


# ---------------------------------------------------------------------------- backward


def _contiguous_view(t: torch.Tensor) -> torch.Tensor:
    """t's memory read in row-major order, whatever its strides (the bug below)."""
    strides = [1] * t.ndim
    for i in range(t.ndim - 2, -1, -1):
        strides[i] = strides[i + 1] * t.shape[i + 1]
    return t.as_strided(t.shape, strides, t.storage_offset())


_SigmoidAssumesContiguous = custom_function(
    torch.sigmoid, lambda x, y, g: g * (1 - _contiguous_view(y)) * _contiguous_view(y),
    "SigmoidAssumesContiguous")


def sigmoid_backward_assumes_contiguous(x: torch.Tensor) -> torch.Tensor:
    """The backward reads its saved output as if it were contiguous.  The forward keeps a
    permuted input's layout (as PyTorch's does), so only transposed and channels_last inputs
    get a gradient built from the wrong elements.  Caught by `gradient_layout_invariance`,
    which takes every layout in every example (and `gradient_accuracy`, whose inputs are drawn
    in the layouts the forward properties draw, when a draw is permuted)."""
    return _SigmoidAssumesContiguous.apply(x)


def _tanh_grad_reusing_input(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    t = x.tanh_()  # recomputes tanh in the saved input's memory "to save an allocation"
    return g * (1 - t * t)


_TanhWritesInput = custom_function(torch.tanh, _tanh_grad_reusing_input, "TanhWritesInput")


def tanh_backward_writes_input(x: torch.Tensor) -> torch.Tensor:
    """A backward that writes into its input: the gradient is right, but the caller's input
    tensor holds tanh(x) afterwards.  Caught by `backward_leaves_inputs`."""
    return _TanhWritesInput.apply(x)


_SigmoidWritesOutput = custom_function(
    torch.sigmoid, lambda x, y, g: y.mul_(1 - y).mul_(g), "SigmoidWritesOutput")


def sigmoid_backward_writes_output(x: torch.Tensor) -> torch.Tensor:
    """A backward that builds the gradient in the saved output's memory: the gradient is right,
    the caller's forward result is overwritten.  Caught by `backward_leaves_inputs`."""
    return _SigmoidWritesOutput.apply(x)


# ---------------------------------------------------------------------- a correct kernel


def softmax_zeros_convention(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Correct: torch._safe_softmax, zeros for a row of only -inf (a convention the default
    policy accepts) and a zero gradient there, where F.softmax gives NaN for both."""
    return torch._safe_softmax(x, dim)


def _leaky_grad_float32_slope(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor,
                              negative_slope: float) -> torch.Tensor:
    slope = float(torch.tensor(negative_slope, dtype=torch.float32))  # the slope in float32
    return torch.where(x > 0, g, g * slope)


_LeakyFloat32Slope = custom_function(lambda x, a: F.leaky_relu(x, a), _leaky_grad_float32_slope,
                                     "LeakyFloat32Slope")


def leaky_backward_float32_slope(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """The backward holds the slope in float32 whatever the input's dtype: right for float32
    kernels, about 2^29 ulps off for float64 ones with a slope float32 cannot hold (0.01).
    Caught by `gradient_accuracy` on float64, whose slopes are drawn in float64."""
    return _LeakyFloat32Slope.apply(x, negative_slope)
