"""Custom autograd Functions, the way kernel authors ship a backward: correct ones that must
pass every derivative property, and planted gradient bugs that a named property must catch.

Each kernel has the torch.nn.functional signature of its activation.  The forward is
PyTorch's own (so forward properties hold); only the backward differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def custom_function(forward, backward, name: str):
    """A kernel whose backward is backward(x, y, g) -> grad_x (x and y saved); shared with
    tests/planted.py."""

    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *params):
            y = forward(x, *params)
            ctx.save_for_backward(x, y)
            ctx.params = params
            return y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return (backward(x, y, g, *ctx.params), *([None] * len(ctx.params)))

    Fn.__name__ = name
    return Fn


# ------------------------------------------------------------------------- correct kernels

_Sigmoid = custom_function(torch.sigmoid, lambda x, y, g: g * (1 - y) * y, "Sigmoid")
_Tanh = custom_function(torch.tanh, lambda x, y, g: g * (1 - y * y), "Tanh")
_Relu = custom_function(torch.relu, lambda x, y, g: torch.where(x > 0, g, torch.zeros_like(g)),
                     "Relu")
_Leaky = custom_function(lambda x, a: F.leaky_relu(x, a),
                      lambda x, y, g, a: torch.where(x > 0, g, g * a), "Leaky")


def _softmax_with(backward, name: str):
    """A softmax kernel whose backward is backward(s, g, dim) -> grad_x (s saved)."""

    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, dim):
            s = torch.softmax(x, dim)
            ctx.save_for_backward(s)
            ctx.dim = dim
            return s

        @staticmethod
        def backward(ctx, g):
            (s,) = ctx.saved_tensors
            return backward(s, g, ctx.dim), None

    Fn.__name__ = name
    return Fn


def _softmax_vjp(s, g, dim):
    # Accumulate in float32 at least, as real kernels do: in a 16-bit format g - <g, s>
    # cancels (that is a bug class of its own, planted as half_precision_backward).
    wide = torch.promote_types(s.dtype, torch.float32)
    s32, g32 = s.to(wide), g.to(wide)
    return (s32 * (g32 - (g32 * s32).sum(dim, keepdim=True))).to(g.dtype)


_Softmax = _softmax_with(_softmax_vjp, "Softmax")


def sigmoid(x):
    return _Sigmoid.apply(x)


def tanh(x):
    return _Tanh.apply(x)


def relu(x):
    return _Relu.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return _Leaky.apply(x, negative_slope)


def softmax(x, dim=-1):
    return _Softmax.apply(x, dim)


CORRECT = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu, "leaky_relu": leaky_relu,
           "softmax": softmax}

# ----------------------------------------------------------------------------- planted bugs

_IgnoresUpstream = custom_function(torch.sigmoid, lambda x, y, g: (1 - y) * y, "IgnoresUpstream")
_WrongFormula = custom_function(torch.sigmoid, lambda x, y, g: g * y, "WrongFormula")
_TanhFromInput = custom_function(torch.tanh, lambda x, y, g: g * (1 - x * x), "TanhFromInput")
_DeadNegative = custom_function(lambda x, a: F.leaky_relu(x, a),
                             lambda x, y, g, a: torch.where(x > 0, g, torch.zeros_like(g)),
                             "DeadNegative")
_KinkOne = custom_function(torch.relu, lambda x, y, g: torch.where(x >= 0, g, torch.zeros_like(g)),
                        "KinkOne")
_DoubledTanh = custom_function(torch.tanh, lambda x, y, g: 2 * g * (1 - y * y), "DoubledTanh")
_HalfPrecisionBackward = custom_function(
    torch.sigmoid, lambda x, y, g: (g.bfloat16() * (1 - y.bfloat16()) * y.bfloat16()).to(g.dtype),
    "HalfPrecisionBackward")
_NotEven = custom_function(torch.sigmoid,
                        lambda x, y, g: g * (1 - y) * y * torch.where(x > 0, 1.0, 0.97),
                        "NotEven")
_StraightThrough = custom_function(lambda x: torch.heaviside(x, torch.zeros((), dtype=x.dtype)),
                                lambda x, y, g: g, "StraightThrough")
_DetachedBackward = custom_function(torch.sigmoid,
                                 lambda x, y, g: g * (1 - y.detach()) * y.detach(),
                                 "DetachedBackward")


_SoftmaxNoProjection = _softmax_with(lambda s, g, dim: s * g, "SoftmaxNoProjection")
# Uses <g, s> with s shifted by one along dim: a Jacobian that is no longer symmetric.
_SoftmaxAsymmetric = _softmax_with(
    lambda s, g, dim: s * (g - (g * torch.roll(s, 1, dim)).sum(dim, keepdim=True)),
    "SoftmaxAsymmetric")


def _unary(fn_class):
    return lambda x: fn_class.apply(x)


def _with_slope(fn_class):
    return lambda x, negative_slope=0.01: fn_class.apply(x, negative_slope)


def _with_dim(fn_class):
    return lambda x, dim=-1: fn_class.apply(x, dim)


# name -> (kernel, activation, dtype, the property that must catch it, why)
PLANTED = {
    "ignores_upstream": (_unary(_IgnoresUpstream), "sigmoid", "float32", "gradient_linearity",
                         "the backward drops g (as if it were ones)"),
    "ignores_upstream_accuracy": (_unary(_IgnoresUpstream), "sigmoid", "float32",
                                  "gradient_accuracy", "the same bug, seen as a wrong value"),
    "wrong_formula": (_unary(_WrongFormula), "sigmoid", "float64", "gradient_accuracy",
                      "sigmoid' taken as y instead of y (1 - y)"),
    "tanh_from_input": (_unary(_TanhFromInput), "tanh", "float32", "gradient_accuracy",
                        "1 - x^2 instead of 1 - tanh(x)^2"),
    "dead_negative_side": (_with_slope(_DeadNegative), "leaky_relu", "float32",
                           "derivative_pieces", "leaky ReLU's negative side has no gradient"),
    "wrong_kink": (_unary(_KinkOne), "relu", "float32", "derivative_pieces",
                   "relu'(0) = 1 instead of PyTorch's 0"),
    "softmax_no_projection": (_with_dim(_SoftmaxNoProjection), "softmax", "float32",
                              "gradient_accuracy", "s * g without the - <g, s> term"),
    "softmax_no_projection_sum": (_with_dim(_SoftmaxNoProjection), "softmax", "float64",
                                  "softmax_vjp_sums_to_zero", "the same bug: VJP rows do not "
                                  "sum to zero"),
    "softmax_asymmetric": (_with_dim(_SoftmaxAsymmetric), "softmax", "float64",
                           "softmax_jacobian", "a Jacobian that is not symmetric"),
    "tanh_doubled": (_unary(_DoubledTanh), "tanh", "float32", "derivative_range",
                     "tanh' above 1"),
    "half_precision_backward": (_unary(_HalfPrecisionBackward), "sigmoid", "float32",
                                "gradient_accuracy", "the backward computed in bfloat16"),
    "not_even": (_unary(_NotEven), "sigmoid", "float32", "derivative_shape",
                 "sigmoid' 3% low for x <= 0: no longer even"),
    "straight_through_step": (_unary(_StraightThrough), "step", "float32", "no_gradient",
                              "a straight-through gradient of 1 for the binary step"),
    "no_second_derivative": (_unary(_DetachedBackward), "sigmoid", "float32",
                             "second_derivative", "a backward that detaches y: f'' is wrong"),
    "gradcheck_wrong_formula": (_unary(_WrongFormula), "sigmoid", "float64", "gradcheck",
                                "finite differences disagree with the backward"),
}


# ------------------------------------------------------- gated activations at infinity

def _builtin_gradient(fn, x, g):
    """PyTorch's own gradient of fn at x for upstream g (NaN at +-inf for SiLU and GELU)."""
    with torch.enable_grad():
        t = x.detach().requires_grad_()
        return torch.autograd.grad(fn(t), t, g)[0]


def at_infinity(fn, *, plus: float, name: str):
    """fn with PyTorch's backward except at +-inf, where the gradient is g * plus (x = +inf)
    and 0 (x = -inf): the limits (plus = 1) or a wrong value there."""
    def backward(x, y, g):
        inside = _builtin_gradient(fn, x, g)
        return torch.where(x == torch.inf, g * plus,
                           torch.where(x == -torch.inf, torch.zeros_like(g), inside))

    return _unary(custom_function(fn, backward, name))
