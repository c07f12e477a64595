"""The declarative description of an activation: what it is, never how it is tested.

One `ActivationSpec` per activation lives in `actverify/activations/<name>.py`; properties read
its fields to decide whether they apply and what to expect.  Adding an activation means
writing one such file: the registry below discovers it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from hypothesis import strategies as st

from actverify.dtypes import FloatFormat
from actverify.errors import UsageError

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Param:
    """A parameter of the activation (leaky ReLU's slope, softmax's dim)."""

    name: str
    default: Any
    doc: str


@dataclass(frozen=True)
class EntryPoint:
    """One way PyTorch exposes the activation, wrapped to the functional signature."""

    name: str
    fn: Callable[..., torch.Tensor]
    inplace: bool = False  # writes its result into the input tensor and returns it
    # Parameters for which the backward is supported; others are reported as not checked.
    backward_supports: Callable[[Params], bool] | None = None
    limits: str | None = None  # what it does not support, in words


@dataclass(frozen=True)
class Bound:
    """Allowed error in ulps under the default policy, with the reason for the number.

    `ulps` is a number, or a function (x_ref, params, fmt) -> per-element ulps for activations
    whose error grows with the input (softmax's sum over the row).
    """

    ulps: float | Callable[[np.ndarray, Params, FloatFormat], np.ndarray]
    reason: str
    formula: str | None = None  # how a callable bound reads in docs/accuracy.md

    def describe(self) -> str:
        return self.formula if callable(self.ulps) else f"{self.ulps:g}"

    def evaluate(self, x_ref: np.ndarray, params: Params, fmt: FloatFormat) -> np.ndarray | float:
        return self.ulps(x_ref, params, fmt) if callable(self.ulps) else float(self.ulps)


@dataclass(frozen=True)
class Kink:
    """A point where the derivative jumps: PyTorch's value there, and the subdifferential."""

    at: float
    pytorch: float
    subdifferential: tuple[float, float]


@dataclass(frozen=True)
class Derivative:
    """What the spec states about the activation's derivative.

    Autograd backwards are usually computed from the saved forward output y (sigmoid's
    g * y * (1 - y)), so they inherit the forward's error through |d f'/d y|: the tolerance adds
    that first-order term (`output_sensitivity`, in units of the true output's error) to the
    backward's own ulp bound.  See docs/accuracy.md.
    """

    # vjp(x, g, params) -> the true vector-Jacobian product, in the arrays' precision.
    vjp: Callable[..., np.ndarray]
    bounds: Mapping[str, Bound]  # ulps of the true vjp, default policy
    # |d f'(x) / d y| at the true output y (elementwise activations whose backward uses y).
    output_sensitivity: Callable[[np.ndarray], np.ndarray] | None = None
    # Absolute error allowed on top of the ulp bound, from the activation's own error analysis
    # (softmax): extra(x, g, y_true, forward_error_abs, params, fmt) -> array.
    extra: Callable[..., np.ndarray] | None = None
    first: Callable[..., np.ndarray] | None = None  # f'(x, **params), elementwise only
    second: Callable[..., np.ndarray] | None = None  # f''(x, **params)
    second_sensitivity: Callable[[np.ndarray], np.ndarray] | None = None
    range: Callable[[Params], tuple[float, float]] | None = None  # of f'
    peak: tuple[float, float] | None = None  # (x, f'(x)): the maximum, exactly
    even: bool = False  # f' is even and non-increasing in |x|
    piecewise_constant: bool = False  # f' is 1 for x > 0 and a constant for x < 0
    kinks: Callable[[Params], tuple[Kink, ...]] = lambda params: ()
    # The vjp computed exactly from the saved forward output y, as such backwards compute it:
    # from_output(y, g, **params).  A backward's error against this at its own y is its own
    # quality, apart from the error carried from the forward (reported side by side).
    from_output: Callable[..., np.ndarray] | None = None
    # Gradients a documented convention also accepts under the default policy, as `accepted`
    # does for outputs: accepted(x_ref, grad, params, fmt) -> bool mask (findings).
    accepted: Callable[..., np.ndarray] | None = None


@dataclass(frozen=True)
class Relation:
    """An identity with a related activation: f(x) = outer(x, g(inner(x))).

    `partner` names the activation g (PyTorch's own kernel for it is called), or None for the
    kernel under test itself (f(x) - f(-x) = x is `inner=-x, outer=x + g`).  `inner` is written
    with arithmetic that works on torch tensors (evaluated in the checked format, rounding
    included) and on numpy arrays (evaluated in the reference precision, the exact argument).
    `outer` combines in the reference precision, and `gain` is |d outer / d g|, through which
    the partner's own error is carried.  The tolerance is the accuracy model's: both sides'
    bounds, plus g' times the rounding of the inner argument (identities.py).
    """

    text: str  # how the identity reads, e.g. "tanh(x) = 2 sigmoid(2x) - 1"
    partner: str | None
    inner: Callable[[Any], Any]
    outer: Callable[[np.ndarray, np.ndarray], np.ndarray]
    gain: Callable[[np.ndarray], np.ndarray]
    applies: Callable[[Params], bool] = lambda params: True


def odd_part_is_x(name: str) -> Relation:
    """f(x) - f(-x) = x: ReLU, SiLU and both GELUs (x times a CDF-like gate g with
    g(x) + g(-x) = 1)."""
    return Relation(text=f"{name}(x) - {name}(-x) = x", partner=None, inner=lambda x: -x,
                    outer=lambda x, g: x + g, gain=lambda x: np.ones_like(x))


# (x, params) -> (f(x), f(-x) or None): float64 torch tensors, for the fused float32 sweep.
FastReference = Callable[[torch.Tensor, Params], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class ActivationSpec:
    name: str
    summary: str
    signature: str  # the torch.nn.functional signature custom kernels are called with
    entry_points: tuple[EntryPoint, ...]  # the first is the canonical (functional) form
    # reference(x, **params): the true function on a numpy array of float64 or longdouble,
    # evaluated in that array's precision.
    reference: Callable[..., np.ndarray]
    bounds: Mapping[str, Bound]  # per dtype name, default policy
    params: tuple[Param, ...] = ()
    elementwise: bool = True
    # Closed range of outputs for non-NaN inputs, as a function of the parameters; None: unbounded.
    range: Callable[[Params], tuple[float, float]] | None = None
    discrete_values: frozenset[float] | None = None  # every output lies in this set (step)
    # Values at -inf and +inf (IEEE evaluation of the definition), None where not stated.
    at_infinity: Callable[[Params], tuple[float, float]] | None = None
    # Non-decreasing for these parameters (leaky ReLU with a negative slope is not); None:
    # for no parameters (SiLU and GELU have a minimum).
    monotone: Callable[[Params], bool] | None = lambda params: True
    # f(-x) = 2c - f(x) for this c (tanh: 0, odd; sigmoid: 1/2), None when no such symmetry.
    point_symmetry: float | None = None
    identity_on_positive: bool = False  # f(x) = x exactly for x > 0
    zero_sign: Literal["specified", "free"] = "free"  # does the sign of a zero result count?
    # Outputs a documented convention also accepts under the default policy, besides the IEEE
    # reference (PyTorch's step(NaN) = 0; zeros for an all -inf softmax row):
    # accepted(x_ref, y_ref, params) -> bool mask of elements whose output is accepted.
    accepted: Callable[[np.ndarray, np.ndarray, Params], np.ndarray] | None = None
    # Inputs where behaviour changes per format: saturation, overflow of a naive formula,
    # the kink.  Strategies concentrate values around these.
    thresholds: Callable[[FloatFormat], tuple[float, ...]] = lambda fmt: (0.0,)
    conventions: tuple[str, ...] = ()  # prose, shown in docs and reports
    # Results on every device must be bitwise equal to the CPU's (no rounding involved, or
    # the same single rounding everywhere); otherwise within the accuracy model.
    same_bits_on_all_devices: bool = False
    # None: no gradient (PyTorch's heaviside backward raises).
    derivative: Derivative | None = None
    # Identities with related activations (tanh through sigmoid, silu through sigmoid, the
    # odd part), checked by the `identity` property within both sides' accuracy bounds.
    relations: tuple[Relation, ...] = ()
    # The reference as float64 torch ops, fast enough for all 2^32 float32 inputs: the fused
    # sweep engine uses it (validated against `reference` first); None: the exact engine.
    fast_reference: FastReference | None = None
    # Where the true value is defined (not NaN), from x alone; None: wherever x is not NaN.
    defined: Callable[[torch.Tensor, Params], torch.Tensor] | None = None
    # Parameter values to draw; keyed by parameter name, built lazily per tensor rank.
    param_strategies: Mapping[str, Callable[[int], st.SearchStrategy[Any]]] = field(
        default_factory=dict
    )

    @property
    def canonical(self) -> EntryPoint:
        return self.entry_points[0]

    def is_monotone(self, params: Params) -> bool:
        return self.monotone is not None and self.monotone(params)

    def default_params(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def bound(self, fmt: FloatFormat) -> Bound:
        return self.bounds[fmt.name]


def every_dtype(bound: Bound) -> dict[str, Bound]:
    """The same bound for every format (exact activations, format-independent reasons)."""
    from actverify.dtypes import DTYPE_NAMES

    return {name: bound for name in DTYPE_NAMES}


def with_limits(first: Callable[..., np.ndarray], *, minus: float, plus: float
                ) -> Callable[..., np.ndarray]:
    """`first` (f' of x and the parameters) taking its limits at -inf and +inf, where the
    formula of a gated activation (x Phi(x), x sigmoid(x)) evaluates inf * 0 = NaN: the
    derivative there is defined, and a kernel that returns it must pass (findings, B10)."""
    def limited(x: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        d = first(x, *args, **kwargs)
        return np.where(x == np.inf, plus, np.where(x == -np.inf, minus, d))

    return limited


def nan_at_infinity(x: np.ndarray, gx: np.ndarray, *_: Any) -> np.ndarray:
    """Gradients a `Derivative.accepted` convention may allow: NaN at x = +-inf, what IEEE
    evaluation of a gated activation's backward formula gives (PyTorch's, findings B10)."""
    return np.isinf(x) & np.isnan(gx)


_REGISTRY: dict[str, ActivationSpec] | None = None


def registry() -> dict[str, ActivationSpec]:
    """All specs, discovered from the modules of `actverify.activations` (one SPEC each)."""
    global _REGISTRY
    if _REGISTRY is None:
        import actverify.activations as pkg

        found = {}
        for mod in pkgutil.iter_modules(pkg.__path__):
            spec = importlib.import_module(f"{pkg.__name__}.{mod.name}").SPEC
            found[spec.name] = spec
        _REGISTRY = dict(sorted(found.items()))
    return _REGISTRY


def get_spec(name: str) -> ActivationSpec:
    specs = registry()
    try:
        return specs[name]
    except KeyError:
        raise UsageError(f"unknown activation {name!r}; use one of {', '.join(specs)}") from None
