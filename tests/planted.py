"""Buggy activation kernels that actverify must catch, one per bug class.

Each function has the torch.nn.functional signature of its activation and a bug someone has
really written (overflow, early saturation, a wrong vector tail, NaN swallowed, strides
ignored, a backward that forgets the upstream gradient...).  The `planted` decorator records
which property must catch the bug, on which dtype (and device) it shows naturally, and
fragments of the failure message that prove the property caught it for the planted reason
rather than for an incidental one.  A kernel two properties must catch carries two
decorators.
tests/test_planted_bugs.py runs one case per entry of `BUGS`.

The kernels are wrong on purpose; apart from the planted bug each behaves like PyTorch's own
form (shapes, 0-d and empty tensors, dtype), so that the property under test is the one that
fires.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from actverify.standin import on_stand_in
from tests.gradient_kernels import custom_function

Kernel = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class PlantedBug:
    """A buggy kernel and the evidence the verifier owes us for it."""

    fn: Kernel
    activation: str
    catches: str  # the property that must fail
    dtype: str  # where the bug shows naturally
    # Fragments of the failure message, one of which must appear: caught for the planted
    # reason, not for an incidental one.
    evidence: tuple[str, ...]
    inplace: bool = False  # declared as an in-place form (for inplace_writes_input)
    device: str = "cpu"  # an accelerator for the cross-device properties

    @property
    def name(self) -> str:
        return self.fn.__name__


BUGS: list[PlantedBug] = []


def planted(activation: str, catches: str, *, dtype: str = "float32",
            evidence: str | tuple[str, ...], inplace: bool = False, device: str = "cpu"
            ) -> Callable[[Kernel], Kernel]:
    """Register the decorated kernel as a planted bug that `catches` must find on `dtype`,
    with a failure message holding `evidence` (one fragment of it, if a tuple)."""
    fragments = (evidence,) if isinstance(evidence, str) else tuple(evidence)

    def register(fn: Kernel) -> Kernel:
        BUGS.append(PlantedBug(fn, activation, catches, dtype, fragments, inplace, device))
        return fn

    return register


def _wide(x: torch.Tensor) -> torch.Tensor:
    """x in float64, the working precision of kernels whose bug is not about precision."""
    return x.to(torch.float64)


def _is_16_bit(x: torch.Tensor) -> bool:
    return x.dtype in (torch.float16, torch.bfloat16)


# ------------------------------------------------------------------------------ accuracy


@planted("sigmoid", "accuracy", evidence="unexpected NaN")
def sigmoid_overflow(x: torch.Tensor) -> torch.Tensor:
    """Overflow to NaN: the textbook exp(x) / (1 + exp(x)) is inf / inf for x > 88.7 in
    float32.  Caught by `accuracy` (NaN where the true value is 1)."""
    e = torch.exp(x)
    return e / (1 + e)


@planted("sigmoid", "accuracy", evidence="ulp error above bound")
def sigmoid_early_saturation(x: torch.Tensor) -> torch.Tensor:
    """Early saturation: returns 1 for x > 8, but float32 sigmoid only rounds to 1 above
    about 17.3 (sigmoid(8) = 0.99966 is thousands of ulps below 1).  Caught by `accuracy`."""
    return torch.where(x > 8, torch.ones_like(x), torch.sigmoid(x))


@planted("tanh", "accuracy", evidence="result differs from the true value")
def tanh_cancellation(x: torch.Tensor) -> torch.Tensor:
    """Cancellation: tanh(x) = 2 sigmoid(2x) - 1 evaluated in the input dtype loses every
    significant bit for small |x| (2 * 0.5000001 - 1).  Caught by `accuracy`."""
    return 2 * torch.sigmoid(2 * x) - 1


@planted("tanh", "point_symmetry", evidence="f(-x) differs from 0 - f(x)")
@planted("tanh", "accuracy", evidence="sign of zero differs")
def tanh_plus_zero(x: torch.Tensor) -> torch.Tensor:
    """Sign of zero lost: a special case for zero returns +0 for -0, but tanh is odd and its
    spec states tanh(-0) = -0.  Caught by `point_symmetry` (f(-0) and f(+0) have the same
    sign) and, when -0 is drawn, by `accuracy` (the spec specifies the zero sign)."""
    return torch.where(x == 0, 0.0, torch.tanh(x))


def _lane_sum_in_dtype(e: torch.Tensor, dim: int, lanes: int = 32) -> torch.Tensor:
    """Sum along dim the way a SIMD kernel with `lanes` accumulators of e's dtype does: each
    lane adds its elements one after another, then the lanes are added one after another,
    every addition rounded to e's dtype (no float32 accumulator)."""
    rows = e.movedim(dim, -1)
    n = rows.shape[-1]
    padded = F.pad(rows, (0, (-n) % lanes)).unflatten(-1, (-1, lanes))
    acc = torch.zeros_like(padded[..., 0, :])
    for i in range(padded.shape[-2]):
        acc = acc + padded[..., i, :]
    total = torch.zeros_like(acc[..., 0])
    for j in range(lanes):
        total = total + acc[..., j]
    return total.unsqueeze(-1).movedim(-1, dim)


@planted("softmax", "accuracy", dtype="float16", evidence="ulp error above bound")
def softmax_half_accumulation(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Half-precision accumulation: for 16-bit inputs the row sum is accumulated in the input
    dtype (32 float16 lanes), which stagnates once the partial sums grow; the spec's bound
    assumes a float32 accumulator.  Caught by `accuracy` on float16."""
    if not _is_16_bit(x) or x.ndim == 0 or x.numel() == 0:
        return F.softmax(x, dim)
    e = torch.exp(x.float() - x.float().amax(dim, keepdim=True)).to(x.dtype)
    return (e.float() / _lane_sum_in_dtype(e, dim).float()).to(x.dtype)


@planted("step", "accuracy", evidence="ulp error above bound")
def step_threshold_inclusive(x: torch.Tensor) -> torch.Tensor:
    """Wrong value at the threshold: x >= 0 makes step(0) = step(-0) = 1; the binary step is
    heaviside(x, 0), 0 at the threshold.  Caught by `accuracy` (step is exact)."""
    return (x >= 0).to(x.dtype)


@planted("leaky_relu", "accuracy", dtype="float64", evidence="ulp error above bound")
def leaky_abs_slope(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """Wrong for a negative slope: the kernel takes abs(negative_slope) (someone assumed slopes
    are non-negative), so leaky_relu(-1, -2) gives -2 instead of 2.  Caught by `accuracy`
    (the strategies draw negative slopes)."""
    return F.leaky_relu(x, abs(negative_slope))


# -------------------------------------------------------------------------------- limits

_LN2 = math.log(2.0)


@planted("sigmoid", "at_infinity", evidence="wrong value at infinity")
def sigmoid_range_reduction_inf(x: torch.Tensor) -> torch.Tensor:
    """Wrong limits: exp(-x) by Cody-Waite range reduction, 2^n exp(r) with n = round(-x/ln 2)
    and r = -x - n ln 2, without the special case for infinities: r = inf - inf is NaN, so
    sigmoid(-inf) and sigmoid(+inf) are NaN instead of 0 and 1.  Caught by `at_infinity`."""
    z = -_wide(x)
    n = torch.round(z / _LN2)
    e = torch.ldexp(torch.exp(z - n * _LN2), n)
    return (1 / (1 + e)).to(x.dtype)


@planted("relu", "at_infinity", evidence="wrong value at infinity")
def relu_mask_multiply(x: torch.Tensor) -> torch.Tensor:
    """Wrong limit at -inf: relu as x * (x > 0) gives -inf * 0 = NaN for x = -inf (relu(-inf)
    is 0).  Caught by `at_infinity`."""
    return x * (x > 0).to(x.dtype)


@planted("leaky_relu", "at_infinity", evidence="wrong value at infinity")
def leaky_negative_dead(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """Leaky ReLU's negative side dead: the slope is dropped and the kernel is plain relu, so
    leaky_relu(-inf) is 0 instead of -inf (or NaN for slope 0).  Caught by `at_infinity`."""
    return torch.relu(x)


# --------------------------------------------------------------------------------- range


@planted("tanh", "range", evidence="output outside [-1.0, 1.0]")
def tanh_pade_unclamped(x: torch.Tensor) -> torch.Tensor:
    """Range broken: the Pade approximant x (27 + x^2) / (27 + 9 x^2) used without clamping;
    it exceeds 1 for x > 3 and grows like x / 9.  Caught by `range`."""
    x2 = x * x
    return x * (27 + x2) / (27 + 9 * x2)


@planted("step", "range", evidence="output not in [0.0, 1.0]")
def step_sign_half(x: torch.Tensor) -> torch.Tensor:
    """A value outside the step's set {0, 1}: (sign(x) + 1) / 2 gives 0.5 at x = 0.  Caught by
    `range` (step's discrete values)."""
    return (torch.sign(x) + 1) / 2


# ---------------------------------------------------------------------------- monotonic


@planted("sigmoid", "monotonic", evidence="output decreases")
def sigmoid_asymptotic_seam(x: torch.Tensor) -> torch.Tensor:
    """Monotonicity broken at a seam: beyond |x| = 2 the kernel switches to the asymptotic
    forms exp(x) and 1 - exp(-x), which do not meet sigmoid at the seam (1 - e^-2 = 0.8647
    lies below sigmoid(1.99) = 0.8797).  Caught by `monotonic`.

    monotonic only compares neighbours among the values drawn, which are dense near the
    spec's thresholds, not near an arbitrary seam: the same bug with the seam at |x| = 4 (a
    jump of 3e-4, a window of about 0.02) escapes 100 derandomized float32 examples."""
    s = torch.sigmoid(x)
    s = torch.where(x >= 2, 1 - torch.exp(-x), s)
    return torch.where(x <= -2, torch.exp(x), s)


# ---------------------------------------------------------------------- nan_propagation


@planted("relu", "nan_propagation", evidence="NaN did not propagate")
def relu_where_drops_nan(x: torch.Tensor) -> torch.Tensor:
    """NaN swallowed: torch.where(x > 0, x, 0) sends NaN (NaN > 0 is false) to 0.  Caught by
    `nan_propagation`."""
    return torch.where(x > 0, x, torch.zeros_like(x))


@planted("relu", "nan_propagation", dtype="bfloat16", evidence="NaN did not propagate")
def relu_fmax_drops_nan(x: torch.Tensor) -> torch.Tensor:
    """NaN swallowed by a clamp-style primitive: fmax(x, 0) returns the non-NaN operand, so
    relu(NaN) is 0.  Caught by `nan_propagation`."""
    return torch.fmax(x, torch.zeros_like(x))


@planted("softmax", "nan_propagation", evidence="NaN did not propagate")
def softmax_nan_as_masked(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """NaN swallowed by masking: non-finite logits are treated as masked (-inf), so a row
    holding NaN gives finite probabilities instead of NaN.  Caught by `nan_propagation`."""
    return F.softmax(torch.where(torch.isnan(x), -math.inf, x), dim)


# --------------------------------------------------------------------------- identities


@planted("sigmoid", "point_symmetry", evidence="f(-x) differs from 1 - f(x)")
def sigmoid_biased_negative(x: torch.Tensor) -> torch.Tensor:
    """Symmetry broken: 1 / (1 + exp(-x)) for x >= 0, but for x < 0 a fast exponential
    (1 + x/256)^256, biased low by about x^2 / 512 relatively, so sigmoid(-x) is not
    1 - sigmoid(x).  Caught by `point_symmetry`."""
    w = _wide(x)
    fast = torch.clamp(1 + w / 256, min=0) ** 256
    return torch.where(w >= 0, torch.sigmoid(w), fast / (1 + fast)).to(x.dtype)


@planted("tanh", "identity", evidence="tanh(x) = 2 sigmoid(2x) - 1 does not hold")
def tanh_half_internal(x: torch.Tensor) -> torch.Tensor:
    """Precision lost internally: tanh evaluated in float16 whatever the input dtype (a "fast"
    path), off by thousands of float32 ulps.  Caught by `identity` (against PyTorch's
    own sigmoid)."""
    return torch.tanh(x.to(torch.float16)).to(x.dtype)


@planted("relu", "identity", evidence="relu(x) - relu(-x) = x does not hold")
def relu_flush_subnormals(x: torch.Tensor) -> torch.Tensor:
    """Subnormals flushed (a kernel built with flush-to-zero): relu of a positive subnormal is
    0, so relu(x) - relu(-x) is 0 instead of x.  Caught by `identity`."""
    y = torch.relu(x)
    return torch.where(y.abs() < torch.finfo(x.dtype).tiny, torch.zeros_like(y), y)


@planted("relu", "positive_identity", dtype="float16", evidence="f(x) != x for x > 0")
def relu_abs_average(x: torch.Tensor) -> torch.Tensor:
    """Overflow in a branch-free formula: (x + |x|) / 2 overflows to inf for x above half the
    largest float16 (32752), so relu(60000) is inf.  Caught by `positive_identity`."""
    return (x + x.abs()) / 2


@planted("leaky_relu", "positive_identity", evidence="f(x) != x for x > 0")
def leaky_max_form(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """A formula valid only for slopes in [0, 1]: max(x, slope * x) returns slope * x for
    x > 0 when the slope exceeds 1.  Caught by `positive_identity`."""
    return torch.maximum(x, x * negative_slope)


@planted("leaky_relu", "negative_slope", evidence="* x for x < 0")
def leaky_slope_ignored(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """Slope argument ignored: always PyTorch's default 0.01.  Caught by `negative_slope`."""
    return F.leaky_relu(x, 0.01)


# ---------------------------------------------------------------------------- signature


@planted("sigmoid", "signature", dtype="float16", evidence="dtype torch.float32")
def sigmoid_upcast(x: torch.Tensor) -> torch.Tensor:
    """dtype upcast: computes in float32 and forgets to cast back, returning float32 for
    float16 input.  Caught by `signature`."""
    return torch.sigmoid(x.float())


@planted("step", "signature", dtype="float64", evidence="dtype torch.bool")
def step_bool(x: torch.Tensor) -> torch.Tensor:
    """dtype lost: returns the comparison mask x > 0 itself, a bool tensor.  Caught by
    `signature`."""
    return x > 0


@planted("relu", "signature", evidence="of shape")
def relu_flattened(x: torch.Tensor) -> torch.Tensor:
    """Shape change: returns the flattened result (a kernel written for 1-d buffers).
    Caught by `signature`."""
    return torch.relu(x).flatten()


@planted("tanh", "signature", evidence="not a tensor")
def tanh_returns_list(x: torch.Tensor) -> torch.Tensor:
    """Returns a non-tensor: a Python list (or float for a 0-d input) via tolist().  Caught
    by `signature`."""
    return torch.tanh(x).tolist()


@planted("relu", "signature", evidence="device meta")
def relu_output_on_fixed_device(x: torch.Tensor) -> torch.Tensor:
    """Device ignored: the output is allocated on the device the kernel was built for, not the
    input's ('meta' stands in for another device on a CPU-only machine).  Caught by
    `signature`."""
    return torch.empty_like(x, device="meta")


# --------------------------------------------------------------------- input / in place


@planted("relu", "input_unmodified", evidence="the input was modified")
def relu_writes_input(x: torch.Tensor) -> torch.Tensor:
    """Input modified: an out-of-place form that clamps its input in place and returns it.
    Caught by `input_unmodified`."""
    return x.clamp_(min=0) if not _overlapping(x) else torch.relu(x)


@planted("softmax", "input_unmodified", evidence="the input was modified")
def softmax_subtracts_in_place(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Input modified: subtracts the row maximum from x in place to save memory.  Caught by
    `input_unmodified`."""
    if x.numel() == 0 or _overlapping(x):
        return F.softmax(x, dim)
    x.sub_(x.amax(dim, keepdim=True).nan_to_num(0.0, 0.0, 0.0))
    return F.softmax(x, dim)


def _overlapping(x: torch.Tensor) -> bool:
    """An expanded tensor cannot be written in place (PyTorch raises): the in-place bugs
    above skip those, so that what they show is the modified input, not a crash."""
    return any(st == 0 and n > 1 for st, n in zip(x.stride(), x.shape))


@planted("sigmoid", "inplace_writes_input", evidence="returned a new tensor", inplace=True)
def sigmoid_inplace_returns_copy(x: torch.Tensor) -> torch.Tensor:
    """An in-place form that is not: declared in place (like torch.sigmoid_), it returns a
    new tensor and leaves its input alone.  Caught by `inplace_writes_input`."""
    return torch.sigmoid(x)


# ------------------------------------------------------------------------- independence


@planted("sigmoid", "elementwise_independence", evidence="results change")
def sigmoid_vector_tail(x: torch.Tensor) -> torch.Tensor:
    """Vector tail computed wrongly: the last numel % 8 elements (the scalar remainder loop of
    an 8-lane kernel) use the cruder "fast sigmoid" 0.5 + 0.5 x / (1 + |x|).  Caught by
    `elementwise_independence` (an element's result depends on its position)."""
    flat = x.reshape(-1)
    body = flat.numel() - flat.numel() % 8
    y = torch.sigmoid(flat)
    tail = flat[body:]
    y[body:] = 0.5 + 0.5 * tail / (1 + tail.abs())
    return y.reshape(x.shape)


@planted("sigmoid", "elementwise_independence", evidence="results change")
def sigmoid_size_fast_path(x: torch.Tensor) -> torch.Tensor:
    """Size-dependent results: tensors of 64 elements or more take a "fast" path,
    0.5 tanh(x / 2) + 0.5, which cancels for negative x.  Caught by
    `elementwise_independence` (appending elements changes the others' results)."""
    if x.numel() >= 64:
        return 0.5 * torch.tanh(0.5 * x) + 0.5
    return torch.sigmoid(x)


@planted("softmax", "row_independence", dtype="float16", evidence="change when other rows")
def softmax_global_max(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Rows coupled: the maximum subtracted is the whole tensor's, not each row's, so a row far
    below the global maximum underflows (0 / 0) and every row depends on the others.  Caught
    by `row_independence`."""
    if x.numel() == 0:
        return F.softmax(x, dim)
    w = x.float()
    e = torch.exp(w - w.amax())
    return (e / e.sum(dim, keepdim=True)).to(x.dtype)


# --------------------------------------------------------------------------- determinism


@planted("sigmoid", "determinism", evidence="a second call gave different bits")
def sigmoid_nondeterministic(x: torch.Tensor) -> torch.Tensor:
    """Nondeterminism: about half the elements move by one ulp, chosen at random on every call
    (as a reduction whose order depends on thread scheduling does).  Caught by
    `determinism`."""
    y = torch.sigmoid(x)
    flip = torch.rand(y.shape, device=y.device) < 0.5
    return torch.where(flip, torch.nextafter(y, torch.zeros_like(y)), y)


_CALLS = [0]


@planted("softmax", "determinism", evidence="a second call gave different bits")
def softmax_alternating_order(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Results depend on the call: the row sum is taken forwards on one call and backwards on
    the next (work handed to threads round-robin), so two calls round differently.  Caught
    by `determinism`."""
    _CALLS[0] += 1
    if x.ndim == 0 or x.numel() == 0:
        return F.softmax(x, dim)
    w = x.float()
    e = torch.exp(w - w.amax(dim, keepdim=True))
    terms = e.flip(dim) if _CALLS[0] % 2 else e
    return (e / terms.sum(dim, keepdim=True)).to(x.dtype)


# ---------------------------------------------------------------------------- layouts


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


@planted("tanh", "layout_invariance", evidence="layout changes the results")
def tanh_ignores_strides(x: torch.Tensor) -> torch.Tensor:
    """Strides ignored: the kernel reads the underlying storage as if the tensor were
    contiguous (x.as_strided with contiguous strides), so a transposed, strided or expanded
    input is read in the wrong order.  Caught by `layout_invariance`."""
    return torch.tanh(x.as_strided(tuple(x.shape), _contiguous_strides(tuple(x.shape)),
                                   x.storage_offset()))


@planted("leaky_relu", "layout_invariance", evidence="the target raised RuntimeError")
def leaky_view_requires_contiguous(x: torch.Tensor, negative_slope: float = 0.01
                                   ) -> torch.Tensor:
    """Layout not supported: the kernel takes x.view(-1), which raises for transposed and
    strided inputs instead of copying.  Caught by `layout_invariance`."""
    return F.leaky_relu(x.view(-1), negative_slope).view(x.shape)


# ------------------------------------------------------------------ empty and 0-d tensors


@planted("softmax", "empty_and_scalar", evidence="the target raised")
def softmax_rows_view(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Crash on degenerate shapes: the kernel views the input as (rows, x.shape[dim]), which
    fails for a 0-d tensor (no dims) and for an empty softmax dim (reshape(-1, 0) is
    ambiguous).  Caught by `empty_and_scalar`."""
    moved = x.movedim(dim, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    return F.softmax(rows, -1).reshape(moved.shape).movedim(-1, dim)


@planted("sigmoid", "empty_and_scalar", evidence="of shape")
def sigmoid_atleast_1d(x: torch.Tensor) -> torch.Tensor:
    """Wrong shape for 0-d input: the kernel promotes its input to 1-d and returns shape (1,)
    for a 0-d tensor.  Caught by `empty_and_scalar`."""
    return torch.sigmoid(torch.atleast_1d(x))


# ------------------------------------------------------------------- entry_points_agree


@planted("sigmoid", "entry_points_agree", dtype="float16", evidence="differs from F.sigmoid")
def sigmoid_half_arithmetic(x: torch.Tensor) -> torch.Tensor:
    """Reduced-precision arithmetic: float16 inputs computed in bfloat16 (8 significant bits
    where 11 are owed), several ulps from F.sigmoid: beyond the two accuracy bounds that two
    correct kernels may lie apart.  Caught by `entry_points_agree`."""
    return torch.sigmoid(x.to(torch.bfloat16)).to(x.dtype)


# -------------------------------------------------------------------------- cross-device


def _on_accelerator(x: torch.Tensor) -> bool:
    # The stand-in second device (cpu:1) runs kernels in a child process on CPU tensors.
    return x.device.type != "cpu" or on_stand_in()


@planted("relu", "cross_device", evidence="differs from the CPU's", device="cuda")
def relu_flushes_on_accelerator(x: torch.Tensor) -> torch.Tensor:
    """Device-dependent results: on an accelerator the kernel is compiled with flush-to-zero,
    so relu of a positive subnormal is 0 there and the subnormal itself on the CPU (relu must
    give the same bits everywhere).  Caught by `cross_device` (on an accelerator, or on the
    stand-in second device cpu:1)."""
    y = torch.relu(x)
    if _on_accelerator(x):
        y = torch.where(y.abs() < torch.finfo(x.dtype).tiny, torch.zeros_like(y), y)
    return y


# ------------------------------------------------------------------------------- softmax


@planted("softmax", "softmax_shift_invariance", evidence="softmax(x + c) differs")
def softmax_no_max(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Overflow to NaN: exp(x) / sum exp(x) without subtracting the row maximum overflows for
    logits above 88.7 (float32).  Caught by `softmax_shift_invariance`."""
    e = torch.exp(x)
    return e / e.sum(dim, keepdim=True)


@planted("softmax", "softmax_sums_to_one", evidence="sums to")
def softmax_last_dim_only(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Wrong dimension: always normalises along the last dim, whatever `dim` says.  Caught by
    `softmax_sums_to_one` (rows along dim do not sum to one)."""
    return F.softmax(x, -1)


@planted("softmax", "softmax_order", evidence="a larger logit got a smaller probability")
def softmax_is_softmin(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Order reversed: softmin (softmax of -x), a sign slip; rows still sum to one.  Caught by
    `softmax_order`."""
    return F.softmin(x, dim)


@planted("softmax", "softmax_special_rows", evidence="masked (-inf) entry did not give exactly 0")
def softmax_mask_fill_small(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Masked entries leak: in rows with a finite entry, -inf is replaced by a "large
    negative" -30 before the softmax, and exp(-30 - max) is not 0 in float32 (fully masked
    rows are left alone and stay NaN).  Caught by `softmax_special_rows`."""
    if x.ndim == 0 or x.numel() == 0:
        return F.softmax(x, dim)
    masked = (x == -math.inf) & (x.amax(dim, keepdim=True) > -math.inf)
    return F.softmax(torch.where(masked, -30.0, x), dim)


@planted("softmax", "softmax_special_rows", evidence="broke the convention")
def softmax_all_masked_uniform(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """All -inf row gives garbage: -inf is replaced by the dtype's lowest finite value, so
    masked entries still give 0 but a fully masked row gives 1/n everywhere, neither NaN nor
    zeros.  Caught by `softmax_special_rows`."""
    return F.softmax(torch.where(x == -math.inf, torch.finfo(x.dtype).min, x), dim)


# ----------------------------------------------------------------------------- backward


@planted("sigmoid", "gradient_accuracy", evidence="gradient differs from the analytic")
def sigmoid_where_branches(x: torch.Tensor) -> torch.Tensor:
    """NaN gradient from the branch not taken: where(x >= 0, 1/(1+e^-x), e^x/(1+e^x)) is a
    correct forward, but autograd differentiates both branches, and the one not taken
    overflows (0 * inf = NaN) for |x| > 88.7.  Caught by `gradient_accuracy`."""
    return torch.where(x >= 0, 1 / (1 + torch.exp(-x)), torch.exp(x) / (1 + torch.exp(x)))


# Custom autograd Functions, made by the factory the gradient tests share: backward(x, y, g).
# the upstream gradient g is forgotten:
_TanhNoUpstream = custom_function(torch.tanh, lambda x, y, g: 1 - y * y, "TanhNoUpstream")
# sign slip: tanh' is 1 - y^2
_TanhSignSlip = custom_function(torch.tanh, lambda x, y, g: g * (1 + y * y), "TanhSignSlip")
# tanh' is 1 - y^2, not 1 - y
_TanhMissingSquare = custom_function(torch.tanh, lambda x, y, g: g * (1 - y), "TanhMissingSquare")


def _sigmoid_grad_from_x(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    e = torch.exp(-x)
    return g * (e / (1 + e) ** 2)  # (1 + e)^2 overflows to inf long before e does


_SigmoidBackwardFromX = custom_function(torch.sigmoid, _sigmoid_grad_from_x,
                                        "SigmoidBackwardFromX")


@planted("tanh", "gradient_linearity", evidence="did not double")
def tanh_backward_ignores_upstream(x: torch.Tensor) -> torch.Tensor:
    """Backward ignores the upstream gradient: returns tanh'(x) as if g were all ones (a
    hand-written backward tested only with loss.sum()).  Caught by `gradient_linearity`."""
    return _TanhNoUpstream.apply(x)


@planted("tanh", "derivative_range", evidence="derivative outside [0.0, 1.0]")
def tanh_backward_sign(x: torch.Tensor) -> torch.Tensor:
    """Sign slip in the backward: 1 + tanh^2 instead of 1 - tanh^2, a derivative in [1, 2].
    Caught by `derivative_range`."""
    return _TanhSignSlip.apply(x)


@planted("sigmoid", "derivative_shape", evidence="not even")
def sigmoid_backward_overflow(x: torch.Tensor) -> torch.Tensor:
    """Overflow in the backward: sigmoid'(x) as e^-x / (1 + e^-x)^2 in the input dtype; the
    square overflows for x < -44 (float32), giving 0 (and NaN below -88.7) where sigmoid'(-x)
    is not 0, so the derivative is not even.  Caught by `derivative_shape`."""
    return _SigmoidBackwardFromX.apply(x)


class _LeakyBackward(torch.autograd.Function):
    """leaky_relu whose backward uses `backward_slope(slope)` on the negative side."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, negative_slope: float, backward_slope: float
                ) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.backward_slope = backward_slope
        return F.leaky_relu(x, negative_slope)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, g, g * ctx.backward_slope), None, None


@planted("leaky_relu", "derivative_pieces", evidence=("negative-side slope", "at the kink"))
def leaky_backward_relu_derivative(x: torch.Tensor, negative_slope: float = 0.01
                                   ) -> torch.Tensor:
    """Backward copied from relu: the gradient is 0 for x <= 0 instead of the slope.
    Caught by `derivative_pieces`."""
    return _LeakyBackward.apply(x, negative_slope, 0.0)


@planted("leaky_relu", "gradient_entry_points_agree", evidence="gradient differs")
def leaky_backward_default_slope(x: torch.Tensor, negative_slope: float = 0.01
                                 ) -> torch.Tensor:
    """Backward ignores the slope argument: uses the default 0.01 whatever the forward used.
    Caught by `gradient_entry_points_agree` (against F.leaky_relu's gradient)."""
    return _LeakyBackward.apply(x, negative_slope, 0.01)


@planted("leaky_relu", "cross_device_gradient", evidence="differs from the CPU's",
         device="cuda")
def leaky_backward_default_slope_on_accelerator(x: torch.Tensor, negative_slope: float = 0.01
                                                ) -> torch.Tensor:
    """Device-dependent backward: the accelerator's backward kernel uses the default slope
    0.01 whatever the forward used; the CPU's is right.  Caught by `cross_device_gradient`
    (on an accelerator, or on the stand-in second device cpu:1)."""
    slope = 0.01 if _on_accelerator(x) else negative_slope
    return _LeakyBackward.apply(x, negative_slope, slope)


class _SigmoidOnce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


@planted("sigmoid", "second_derivative", evidence="double backward raised")
def sigmoid_once_differentiable(x: torch.Tensor) -> torch.Tensor:
    """No second derivative: the backward is marked once_differentiable, so double backward
    (Hessian-vector products, gradient penalties) raises.  Caught by `second_derivative`."""
    return _SigmoidOnce.apply(x)


@planted("tanh", "gradcheck", dtype="float64", evidence="gradcheck failed")
def tanh_backward_missing_square(x: torch.Tensor) -> torch.Tensor:
    """Wrong derivative formula: 1 - tanh instead of 1 - tanh^2.  Caught by `gradcheck`
    (finite differences in float64)."""
    return _TanhMissingSquare.apply(x)


@planted("step", "no_gradient", evidence="returned a gradient")
def step_straight_through(x: torch.Tensor) -> torch.Tensor:
    """A gradient where there is none: a straight-through estimator (identity gradient) in a
    kernel presented as the binary step, whose derivative is 0 almost everywhere and whose
    PyTorch backward raises.  Caught by `no_gradient`."""
    return (x > 0).to(x.dtype) + (x - x.detach())


class _SoftmaxBackward(torch.autograd.Function):
    """softmax whose backward is `rule(y, g, dim)`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int, rule) -> torch.Tensor:
        y = F.softmax(x, dim)
        ctx.save_for_backward(y)
        ctx.dim, ctx.rule = dim, rule
        return y

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (y,) = ctx.saved_tensors
        return ctx.rule(y, g, ctx.dim), None, None


@planted("softmax", "softmax_vjp_sums_to_zero", evidence="of the gradient sums to")
def softmax_backward_diagonal(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Backward keeps only the Jacobian's diagonal: g * y, forgetting - y <g, y> (treated as
    elementwise).  Caught by `softmax_vjp_sums_to_zero`."""
    return _SoftmaxBackward.apply(x, dim, lambda y, g, d: g * y)


@planted("softmax", "softmax_jacobian", evidence="Jacobian")
def softmax_backward_mean_centred(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Backward centres g by its mean instead of its y-weighted mean: y (g - mean g), whose
    Jacobian is neither symmetric nor has rows summing to zero.  Caught by
    `softmax_jacobian`."""
    return _SoftmaxBackward.apply(x, dim, lambda y, g, d: y * (g - g.mean(d, keepdim=True)))


# ------------------------------------------------------------------------- silu and gelu


@planted("silu", "accuracy", dtype="float16", evidence="result differs from the true value")
def silu_exp_overflow_in_half(x: torch.Tensor) -> torch.Tensor:
    """x / (1 + e^-x) evaluated in float16: e^-x overflows to inf for x < -11.1, so silu(-12)
    is -0 where the true value is -7.4e-5 (a normal float16).  Caught by `accuracy`."""
    return x / (1 + torch.exp(-x.to(torch.float16)).to(x.dtype))


@planted("gelu", "accuracy", evidence="result differs from the true value")
def gelu_ignores_approximate(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """The tanh approximation whatever `approximate` says (a fused GeGLU kernel with one code
    path): up to 4.7e-4 off the erf form near x = -2.  Caught by `accuracy`."""
    return F.gelu(x, approximate="tanh")


@planted("gelu", "accuracy", dtype="bfloat16", evidence="result differs from the true value")
def gelu_erf_in_bfloat16(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """The erf form with every step rounded to bfloat16 (no float32 accumulation), off by
    several bfloat16 ulps.  Caught by `accuracy`."""
    if approximate == "tanh":
        return F.gelu(x, approximate="tanh")
    h = x.to(torch.bfloat16)
    gate = (1 + torch.special.erf(h * 0.70703125)) * 0.5
    return (h * gate).to(x.dtype)


@planted("elu", "accuracy", evidence="result differs from the true value")
def elu_exp_minus_one(x: torch.Tensor) -> torch.Tensor:
    """e^x - 1 written out instead of expm1: it cancels near 0, elu(-1e-6) loses every digit
    but the first few.  Caught by `accuracy`."""
    return torch.where(x > 0, x, torch.exp(x) - 1)


_EluGradExpOfOutput = custom_function(
    F.elu, lambda x, y, g: g * torch.where(x > 0, torch.ones_like(y), torch.exp(y)),
    "EluGradExpOfOutput")


@planted("elu", "gradient_accuracy", evidence="gradient differs from the analytic derivative")
def elu_backward_exp_of_output(x: torch.Tensor) -> torch.Tensor:
    """Backward e^y instead of e^x for x <= 0: the saved output read as if it were the input
    (right at 0 and nowhere else below it).  Caught by `gradient_accuracy`."""
    return _EluGradExpOfOutput.apply(x)


_SiluGradNoProduct = custom_function(
    F.silu, lambda x, y, g: g * torch.sigmoid(x), "SiluGradNoProduct")
_GeluTanhGradForErf = custom_function(
    lambda x, a: F.gelu(x, approximate=a),
    lambda x, y, g, a: torch.ops.aten.gelu_backward(g, x, approximate="tanh"),
    "GeluTanhGradForErf")


@planted("silu", "gradient_accuracy", evidence="gradient differs from the analytic derivative")
def silu_backward_drops_product_rule(x: torch.Tensor) -> torch.Tensor:
    """Backward g * sigmoid(x): the product rule's x sigmoid'(x) term forgotten (a SwiGLU
    backward that treats the gate as constant).  Caught by `gradient_accuracy`."""
    return _SiluGradNoProduct.apply(x)


@planted("gelu", "gradient_accuracy", evidence="gradient differs from the analytic derivative")
def gelu_backward_tanh_form(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """Forward in the requested form, backward always in the tanh form (one backward kernel
    for both).  Caught by `gradient_accuracy` on the erf form."""
    return _GeluTanhGradForErf.apply(x, approximate)


# ------------------------------------------------------- determinism: global RNGs' noise


def _off_by_one_ulp_sometimes(y: torch.Tensor, draw: float) -> torch.Tensor:
    """y with its first element moved by one ulp when `draw` < 0.5 (a coin flip per call)."""
    if not y.numel() or draw >= 0.5:
        return y
    flat = y.reshape(-1).clone()
    flat[0] = torch.nextafter(flat[0], torch.tensor(2.0, dtype=y.dtype, device=y.device))
    return flat.reshape(y.shape)


@planted("sigmoid", "determinism", evidence="a second call gave different bits")
def sigmoid_python_random_noise(x: torch.Tensor) -> torch.Tensor:
    """Noise from Python's global `random`: a coin flip per call.  Hypothesis reseeds `random`
    before every example, so both calls of an example used to see the same two flips (0.84,
    0.76: never noisy); `determinism` now reseeds it per call."""
    import random

    return _off_by_one_ulp_sometimes(torch.sigmoid(x), random.random())


@planted("tanh", "determinism", evidence="a second call gave different bits")
def tanh_numpy_random_noise(x: torch.Tensor) -> torch.Tensor:
    """Noise from NumPy's global RNG, likewise reseeded by Hypothesis before every example.
    Caught by `determinism`, which reseeds it per call."""
    import numpy as np

    return _off_by_one_ulp_sometimes(torch.tanh(x), float(np.random.random()))


@planted("sigmoid", "cross_device", evidence="by more than the accuracy bound",
         device="cuda")
def sigmoid_fast_exp_on_accelerator(x: torch.Tensor) -> torch.Tensor:
    """Device-dependent accuracy: on an accelerator exp(-x) is computed as exp2 of -x log2(e)
    rounded to the input's format first (what CUDA's fast `__expf` does), so the error grows
    with |x| (about 8 ulp at |x| = 16 in float32); the CPU's is accurate.  The results differ
    by more than two accuracy bounds, not merely in their bits.  Caught by `cross_device`
    (on an accelerator, or on the stand-in second device cpu:1)."""
    if not _on_accelerator(x) or not x.is_floating_point():
        return torch.sigmoid(x)
    t = (x * -1.4426950408889634).to(x.dtype)  # the product rounded: its error is exp2's
    return (1 / (1 + torch.exp2(t.double()))).to(x.dtype)


# ------------------------------------------- the regimes where real kernels break
# Kernels of tests/planted_regimes.py (whose tests run them with `check`'s default profile),
# registered here too so that every property has its planted bug.

from tests.planted_regimes import (relu_grid_y_limit, sigmoid_backward_assumes_contiguous,  # noqa: E402
                                   sigmoid_seam_at_4, tanh_backward_writes_input)

planted("relu", "scale", evidence=("rows along dim 0", "rows along a middle dim"))(relu_grid_y_limit)
planted("sigmoid", "gradient_layout_invariance",
        evidence="layout changes the gradient")(sigmoid_backward_assumes_contiguous)
planted("tanh", "backward_leaves_inputs", evidence="modified the input")(
    tanh_backward_writes_input)
planted("sigmoid", "monotonic", evidence="output decreases")(sigmoid_seam_at_4)


@planted("silu", "gradient_accuracy", dtype="float64",
         evidence="gradient differs from the analytic derivative")
def silu_autograd_product_overflow(x: torch.Tensor) -> torch.Tensor:
    """SiLU written as x * sigmoid(x) and left to autograd: the product rule forms g * x,
    which overflows to inf for x near the largest float64, and inf * sigmoid'(x) = inf * 0 is
    a NaN gradient where the true one is 0 (F.silu's backward, g s (1 + x (1 - s)), does not
    form it).  Caught by `gradient_accuracy`."""
    return x * torch.sigmoid(x)
