"""Correct alternative implementations that actverify must pass: it never cries wolf.

Each function has the torch.nn.functional signature of its activation and is genuinely
correct: within the accuracy model, NaN propagated, limits exact, backward right.  They are
written differently from PyTorch's own entry points (another primitive, a wider working
precision, a reflection) so that the verifier meets kernels it was not written against.
tests/test_correct_alternatives.py runs every applicable property on every dtype for each.

`kink` names the derivative convention at a kink the alternative follows: PyTorch's value
("pytorch", what the default policy asks) or another subgradient ("math", the option
`--actverify-kink math` exists for).  Only ReLU forms built on clamp/maximum need "math".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Kernel = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Alternative:
    fn: Kernel
    activation: str
    kink: str = "pytorch"

    @property
    def name(self) -> str:
        return self.fn.__name__


ALTERNATIVES: list[Alternative] = []


def alternative(activation: str, *, kink: str = "pytorch") -> Callable[[Kernel], Kernel]:
    """Register the decorated kernel as a correct form of `activation`."""

    def register(fn: Kernel) -> Kernel:
        ALTERNATIVES.append(Alternative(fn, activation, kink))
        return fn

    return register


def _in_float64(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """op evaluated in float64 and rounded once to x's dtype: at most half an ulp plus
    float64's own error (far below an ulp of float32 or 16-bit results).  For float64 input
    it is op itself."""
    return op(x.to(torch.float64)).to(x.dtype)


# ------------------------------------------------------------------------------- sigmoid


@alternative("sigmoid")
def sigmoid_expit(x: torch.Tensor) -> torch.Tensor:
    """torch.special.expit: SciPy's name for the logistic function."""
    return torch.special.expit(x)


@alternative("sigmoid")
def sigmoid_via_float64(x: torch.Tensor) -> torch.Tensor:
    """Sigmoid in float64, rounded once; float64 -> float16 rounds twice (through float32),
    which is still within the 1-ulp bound for 16-bit formats."""
    return _in_float64(torch.sigmoid, x)


# ---------------------------------------------------------------------------------- tanh


@alternative("tanh")
def tanh_via_float64(x: torch.Tensor) -> torch.Tensor:
    """tanh in float64, rounded once (double rounding for float16, as above)."""
    return _in_float64(torch.tanh, x)


@alternative("tanh")
def tanh_odd_reflection(x: torch.Tensor) -> torch.Tensor:
    """-tanh(-x): exact negations around tanh, so also tanh(-0) = -0."""
    return -torch.tanh(-x)


# ---------------------------------------------------------------------------------- relu


@alternative("relu")
def relu_threshold(x: torch.Tensor) -> torch.Tensor:
    """F.threshold(x, 0, 0): x where x > 0, else 0; NaN propagates (NaN <= 0 is false) and
    the backward passes g only where x > 0, PyTorch's kink convention."""
    return F.threshold(x, 0.0, 0.0)


@alternative("relu")
def relu_where_nan_aware(x: torch.Tensor) -> torch.Tensor:
    """where(x > 0 or x is NaN, x, 0): the NaN-swallowing where form, repaired."""
    return torch.where((x > 0) | torch.isnan(x), x, torch.zeros_like(x))


@alternative("relu", kink="math")
def relu_clamp(x: torch.Tensor) -> torch.Tensor:
    """x.clamp(min=0).  Its backward gives relu'(0) = 1 (clamp passes g at the boundary), a
    subgradient but not PyTorch's 0: correct under kink='math'."""
    return x.clamp(min=0)


@alternative("relu", kink="math")
def relu_maximum(x: torch.Tensor) -> torch.Tensor:
    """torch.maximum(x, 0), NaN-propagating; its backward splits g at the tie, relu'(0) =
    1/2, a subgradient: correct under kink='math'."""
    return torch.maximum(x, torch.zeros_like(x))


# ---------------------------------------------------------------------------- leaky_relu


@alternative("leaky_relu")
def leaky_where(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """where(x > 0, x, x * slope): NaN goes to the product and stays NaN; the backward is
    the slope at x = 0, PyTorch's convention."""
    return torch.where(x > 0, x, x * negative_slope)


@alternative("leaky_relu")
def leaky_rrelu_eval(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """Randomized leaky ReLU in evaluation mode with lower = upper = slope: deterministic,
    the slope (lower + upper) / 2."""
    return F.rrelu(x, negative_slope, negative_slope, training=False)


# ------------------------------------------------------------------------------- softmax


@alternative("softmax")
def softmax_float64_max_shift(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp(x - max) normalised in float64, then rounded once.  The shift is detached:
    softmax is shift-invariant, so the gradient needs no path through the max."""
    if x.numel() == 0:
        return x.clone()
    w = x.to(torch.float64)
    e = torch.exp(w - w.amax(dim, keepdim=True).detach())
    return (e / e.sum(dim, keepdim=True)).to(x.dtype)


@alternative("softmax")
def softmax_special(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """torch.special.softmax, the special-functions namespace's entry point."""
    return torch.special.softmax(x, dim)


# ---------------------------------------------------------------------------------- step


@alternative("step")
def step_compare(x: torch.Tensor) -> torch.Tensor:
    """(x > 0) as the input's dtype: 0 at the threshold, 0 for NaN (PyTorch's convention,
    accepted by default); no gradient (a comparison is not differentiable)."""
    return (x > 0).to(x.dtype)


@alternative("step")
def step_sign_clamped(x: torch.Tensor) -> torch.Tensor:
    """sign(x) clamped below at 0: 1 for x > 0, 0 for x <= 0 and NaN; its backward gives
    zeros, the derivative almost everywhere, which the default policy accepts."""
    return torch.sign(x).clamp(min=0)


# ---------------------------------------------------------------------------------- silu


@alternative("silu")
def silu_via_float64(x: torch.Tensor) -> torch.Tensor:
    """SiLU in float64, rounded once.  (x * sigmoid(x) written out is not correct at the edge:
    autograd's product rule forms g * x, which overflows to inf for float64 x near -5.7e307,
    and inf * sigmoid'(x) = inf * 0 gives a NaN gradient where the true one is 0; a 10-example
    run of this file found it.)"""
    return _in_float64(F.silu, x)


@alternative("silu")
def silu_odd_reflection(x: torch.Tensor) -> torch.Tensor:
    """x + silu(-x) for x > 0 (the odd part is x), PyTorch's silu for x <= 0, in float64."""
    def op(t: torch.Tensor) -> torch.Tensor:
        return torch.where((t > 0) & (t < torch.inf), t + F.silu(-t), F.silu(t))

    return _in_float64(op, x)


# ---------------------------------------------------------------------------------- gelu


@alternative("gelu")
def gelu_erfc(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """x/2 erfc(-x/sqrt 2) in float64 (no cancellation for x < 0); the tanh form as
    x sigmoid(2u) in float64."""
    def op(t: torch.Tensor) -> torch.Tensor:
        if approximate == "tanh":
            u = 0.7978845608028654 * (t + 0.044715 * t * t * t)
            return t * torch.special.expit(2 * u)
        # Past |t| = 40 the erfc factor is 0 or 2 exactly, and the product's backward would
        # form g t / 2 (infinite for |t| near the float64 maximum) before multiplying it by
        # erfc's zero derivative: a NaN gradient where the true one is g.  So the formula runs
        # on t clamped to [-40, 40] and the tails are t and 0 themselves.
        inner = t.clamp(-40.0, 40.0)
        formula = inner / 2 * torch.special.erfc(-inner * 0.7071067811865476)
        return torch.where(t > 40, t, torch.where(t < -40, torch.zeros_like(t), formula))

    return _in_float64(op, x)


@alternative("gelu")
def gelu_module_float64(x: torch.Tensor, approximate: str = "none") -> torch.Tensor:
    """nn.GELU evaluated in float64 and rounded once."""
    return _in_float64(lambda t: torch.nn.GELU(approximate)(t), x)


# ----------------------------------------------------------------------------------- elu


@alternative("elu")
def elu_expm1_where(x: torch.Tensor) -> torch.Tensor:
    """x where x > 0, expm1(x) elsewhere, in the input's own dtype (torch.expm1 rounds once:
    no cancellation near 0, unlike exp(x) - 1)."""
    return torch.where(x > 0, x, torch.expm1(x.clamp(max=0)))


@alternative("elu")
def elu_half_angle(x: torch.Tensor) -> torch.Tensor:
    """e^x - 1 = 2 e^(x/2) sinh(x/2) for x <= 0 (no cancellation), in float64 and rounded once:
    correct for float32 and the 16-bit formats.  Three float64 roundings are not within 2 ulp
    of a float64 result (the suite caught 2.1 ulp at -38.8 and a non-monotone step at -512),
    so float64 inputs take CELU at alpha = 1, which is ELU.  The input is clamped to
    [-1000, 0]: at -1000 the product is already -1 (at -inf it would be 0 * -inf), and above
    0 the branch torch.where discards must stay finite, or its zero gradient times inf is a
    NaN gradient (a first draft was caught so by gradient_accuracy)."""
    if x.dtype == torch.float64:
        return F.celu(x, alpha=1.0)

    def op(t: torch.Tensor) -> torch.Tensor:
        h = t.clamp(min=-1000, max=0) / 2
        return torch.where(t > 0, t, 2 * torch.exp(h) * torch.sinh(h))

    return _in_float64(op, x)
