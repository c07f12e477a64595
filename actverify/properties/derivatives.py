"""Properties of the derivative: autograd's backward against the spec's analytic derivative.

Upstream gradients are random tensors, never ones, so a backward that ignores or mis-scales
them is caught.  Tolerances come from the accuracy model: the backward's own ulp bound plus
the forward's error carried through d f'/d y for backwards computed from the saved output
(see `Derivative` in actverify/spec.py and docs/accuracy.md).
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from actverify.accuracy import compare, ulp
from actverify.judgement import (at_kink_within_subdifferential, both_conventional, conventional,
                                 judge_gradient, own_output_error, second_tolerance, tolerance)
from actverify.properties.base import Subject, TargetMisbehaved, Violation, define, observe
from actverify.properties.semantics import differ, inconsistent, not_canonical
from actverify.strategies import (LAYOUTS, Case, apply_layout, shapes,
                                  upstream_gradient)


def differentiable(target) -> bool:
    return target.spec.derivative is not None and target.backward


def gradient(s: Subject, x: torch.Tensor, g: torch.Tensor, params: dict, *, fn=None,
             inplace: bool | None = None, create_graph: bool = False,
             with_output: bool = False, layout: str = "contiguous"):
    """x.grad of sum(g * f(x)) through the target (or `fn`), as a user's training step gets it
    (with `with_output`: and the forward output the backward had saved).  The leaf holds x's
    values in `layout`, as the forward properties' inputs do: a backward that reads its saved
    tensors as if contiguous is wrong only for permuted ones."""
    leaf = apply_layout(x.detach().clone(), layout).requires_grad_(True)
    y = s.call(leaf, params, fn=fn, inplace=inplace)
    try:
        with s.running_target():
            (gx,) = torch.autograd.grad(y, leaf, grad_outputs=g, create_graph=create_graph)
    except TargetMisbehaved:
        raise
    except SystemExit as exc:
        raise TargetMisbehaved(f"the backward called sys.exit({exc.code!r})") from exc
    except Exception as exc:
        raise TargetMisbehaved(f"the backward raised {type(exc).__name__}: {exc}") from exc
    if gx is None or gx.shape != x.shape or gx.dtype != x.dtype:
        raise TargetMisbehaved(f"the backward returned {None if gx is None else gx.dtype} "
                               f"{None if gx is None else tuple(gx.shape)} for an input of "
                               f"{x.dtype} {tuple(x.shape)}")
    return (gx, y.detach()) if with_output else gx


# Built once: each draw below used to look its strategy up in Hypothesis's cache.
_SEEDS = st.integers(0, 2**32 - 1)
_UPSTREAM_EXPONENTS = st.integers(-6, 6)


@st.composite
def with_upstream(draw, s: Subject, *, allow_empty: bool = True, min_dims: int = 0) -> Case:
    """A case plus a random upstream gradient g (normal values at a drawn scale, some zeros),
    as the case's `upstream`; the input's memory layout is drawn as for the forward properties
    and kept in the case's `layout` (`gradient(..., layout=)` lays the leaf out so)."""
    case = draw(s.cases(backward=True, allow_nan=False, layout=True, inplace=s.target.inplace,
                        shape=shapes(allow_empty=allow_empty, min_dims=min_dims)))
    g = upstream_gradient(tuple(case.x.shape), seed=draw(_SEEDS),
                          scale_exponent=draw(_UPSTREAM_EXPONENTS))
    upstream = g.to(s.fmt.dtype).to(s.device)
    return Case(case.x, case.params, case.layout, upstream=upstream)


def upstream_inputs(s: Subject) -> st.SearchStrategy[Case]:
    return with_upstream(s)


@define("gradient_accuracy", summary="autograd's gradient matches the analytic derivative "
     "(times a random upstream gradient) within the accuracy bounds, on every dtype",
     applies=differentiable, inputs=upstream_inputs, kind="backward")
def gradient_accuracy(s: Subject, case: Case) -> None:
    x, g = case.x, case.upstream
    gx, y = gradient(s, x, g, case.params, with_output=True, layout=case.layout)
    cmp, ref, bad, accepted = judge_gradient(s, x, g, gx, case.params)
    # Two figures, each with its bound: against the exact derivative at x (bounded by the
    # backward's own ulps plus the error carried from the forward), and against the exact
    # derivative of the saved output (the backward's own quality).  Gradients a convention
    # accepts are left out of them, as accepted outputs are out of the forward's.
    for metric, c in (("ulp", cmp), ("own_ulp", own_output_error(s, x, g, y, gx, case.params))):
        worst = None if c is None else c.counted_max(accepted.reshape(c.error.shape))
        if worst is not None:
            observe(metric, worst[0], float(s.values(x).flat[worst[1]]),
                    bound=float(np.broadcast_to(c.bound, c.error.shape).flat[worst[1]]))
    s.fail_where(bad, "gradient differs from the analytic derivative (expected: g * f'(x), "
                 f"g = {float(s.values(g).flat[int(np.argmax(bad))]) if bad.any() else 0!r})",
                 x=x, actual=gx, expected=ref, error=cmp.error,
                 case=case, bounds=cmp.bound)


@define("gradient_linearity", summary="the backward is linear in the upstream gradient: doubling "
     "g doubles the gradient exactly, and (element-wise) a zero g gives a zero gradient",
     applies=differentiable, inputs=upstream_inputs, kind="backward")
def gradient_linearity(s: Subject, case: Case) -> None:
    x, g = case.x, case.upstream
    once = gradient(s, x, g, case.params, layout=case.layout)
    twice = gradient(s, x, g * 2, case.params, layout=case.layout)
    a, b = s.values(once), s.values(twice)
    if s.policy.correct_rounding:
        # Doubling is exact in binary arithmetic unless something under- or overflows.
        slack = np.zeros(a.shape)
        exact = np.isfinite(2 * a) & (np.abs(a) >= 2 * s.fmt.tiny) & np.isfinite(b)
    else:
        exact = np.isfinite(2 * a) & np.isfinite(b)
        slack = np.zeros(a.shape)
        # Where grad(2g) is 2 grad(g) exactly nothing below can flag an element: the
        # tolerance and the conventions are computed only when some element differs.
        if (exact & (b != 2 * a)).any():
            # Intermediates (softmax's <g, s>) may be subnormal where the result is not, and
            # the subnormal quantum does not scale: allow what the accuracy model allows each
            # side.
            ref, bound = tolerance(s, x, g, case.params)
            # |grad(2g) - 2 grad(g)| <= tol(2g) + 2 tol(g) = 4 tol(g): tolerances scale with g.
            with np.errstate(over="ignore"):
                slack = 4 * bound * ulp(ref, s.fmt)
            # Where the true gradient is undefined, zeros (and NaN) are conventions, not errors.
            exact &= ~both_conventional(s, x, once, twice, case.params, backward=True)
    # Equal is always linear: at x = +-inf the true vjp (g Phi(x) + x phi(x) for GELU) may be
    # NaN, and so is the slack built on it.
    s.fail_where(exact & ~((b == 2 * a) | (np.abs(b - 2 * a) <= slack)),
                 "doubling the upstream gradient did "
                 "not double the gradient (expected 2 * grad(g), actual grad(2g))", x=x,
                 actual=twice, expected=2 * a, case=case)
    if s.spec.elementwise:
        # A non-zero gradient for a zero g, where the derivative is finite and no convention
        # accepts it: the derivative and the conventions only where such gradients are.
        zero = (s.values(g) == 0) & (a != 0)
        if zero.any():
            zero &= np.isfinite(s.spec.derivative.vjp(s.values(x), np.ones_like(a),
                                                      **case.params))
            zero &= ~conventional(s, x, once, case.params, backward=True)
        s.fail_where(zero, "a zero upstream gradient gave a non-zero gradient: the "
                     "backward does not scale g element by element", x=x, actual=once,
                     expected=np.zeros(a.shape), case=case)


@define("gradient_layout_invariance", summary="transposed, strided, offset, expanded and "
     "channels_last inputs give the gradient of the contiguous input (within two accuracy "
     "bounds); every layout that applies, in every example", applies=differentiable,
     inputs=lambda s: with_upstream(s, allow_empty=False, min_dims=2), kind="backward")
def gradient_layout_invariance(s: Subject, case: Case) -> None:
    x, g = case.x, case.upstream
    # The contiguous gradient once per distinct input: every layout but 'expanded' holds x's
    # own values.  The tolerance is computed where two gradients differ (`disagreement`).
    plain = {False: (x, gradient(s, x, g, case.params))}
    for layout in LAYOUTS[1:]:
        if (layout == "expanded" and s.target.inplace) or apply_layout(x, layout) is x:
            continue  # an in-place form cannot write into an expanded tensor; 4-d only, ...
        repeated = layout == "expanded"
        if repeated not in plain:
            values = apply_layout(x, layout).contiguous()  # the first row repeated
            plain[repeated] = (values, gradient(s, values, g, case.params))
        values, want = plain[repeated]
        inconsistent(s, case.with_input(values, layout=layout),
                     gradient(s, values, g, case.params, layout=layout), want,
                     f"the {layout} layout changes the gradient (expected: the contiguous "
                     "input's)", upstream=g, backward=True)


@define("backward_leaves_inputs", summary="the backward leaves its saved input, the forward's "
     "output and the upstream gradient untouched, bit for bit", applies=differentiable,
     inputs=upstream_inputs, kind="backward")
def backward_leaves_inputs(s: Subject, case: Case) -> None:
    x, g = case.x, case.upstream
    leaf = apply_layout(x.detach().clone(), case.layout).requires_grad_(True)
    y = s.call(leaf, case.params)
    held = {"input": leaf.detach(), "output": y.detach(), "upstream gradient": g}
    before = {name: t.clone() for name, t in held.items()}
    try:
        torch.autograd.grad(y, leaf, grad_outputs=g)
    except Exception as exc:
        raise TargetMisbehaved(f"the backward raised {type(exc).__name__}: {exc}") from exc
    for name, t in held.items():
        differ(s, case, t, before[name],
               f"the backward modified the {name} (actual: after the backward, expected: "
               "before)", x=x)


def ones_like_cases(s: Subject) -> st.SearchStrategy[Case]:
    return s.cases(backward=True, allow_nan=False,
                 )


def derivative_of(s: Subject, x: torch.Tensor, params: dict) -> torch.Tensor:
    return gradient(s, x, torch.ones_like(x), params)


def slope_tolerance(s: Subject, x: torch.Tensor, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """`tolerance` with an upstream gradient of ones (the true derivative and its allowed
    ulps), once per tensor, and for an element-wise activation joined from the parts of a
    `joined` tensor."""
    return s.derived(x, ("slope tolerance", repr(sorted(params.items()))),
                     lambda t: tolerance(s, t, torch.ones_like(t), params),
                     elementwise=s.spec.elementwise)


@define("derivative_range", summary="f' stays in the range its spec states (sigmoid': "
        "[0, 1/4]), with the stated maximum exactly at its point",
     applies=lambda t: differentiable(t) and t.spec.derivative.range is not None,
     inputs=ones_like_cases, kind="backward")
def derivative_range(s: Subject, case: Case) -> None:
    d = s.spec.derivative
    lo, hi = d.range(case.params)
    dx = derivative_of(s, case.x, case.params)
    v = s.values(dx)
    s.fail_where(~((v >= lo) & (v <= hi)), f"derivative outside [{lo}, {hi}]", x=case.x,
                 actual=dx, case=case)
    if d.peak is not None:
        at = torch.full((1,), d.peak[0], dtype=s.fmt.dtype, device=s.device)
        top = derivative_of(s, at, case.params)
        s.fail_where(s.values(top) != d.peak[1], f"derivative at {d.peak[0]} is not the maximum "
                     f"{d.peak[1]}", x=at, actual=top, expected=np.array([d.peak[1]]), case=case)


@define("derivative_shape", summary="f' is even and non-increasing in |x| where the spec "
        "says so (sigmoid', tanh'), within the accuracy bounds",
     applies=lambda t: differentiable(t) and t.spec.derivative.even,
     inputs=ones_like_cases, kind="backward")
def derivative_shape(s: Subject, case: Case) -> None:
    # As `monotonic`: the seams where kernels switch formulas are probed in every example.
    # x and -x joined from the drawn values and the subject's seams: the seams' tolerances
    # are computed once per subject, the drawn values' once per example.
    x = s.joined([case.x, s.seams()])
    neg = s.joined([-case.x, s.seams(negated=True)])  # -x
    dx, dneg = derivative_of(s, x, case.params), derivative_of(s, neg, case.params)
    ref, bound = slope_tolerance(s, x, case.params)
    ref_neg, bound_neg = slope_tolerance(s, neg, case.params)
    tol = bound * ulp(ref, s.fmt)
    a, b = s.values(dx), s.values(dneg)
    s.fail_where(~(np.abs(a - b) <= tol + bound_neg * ulp(ref_neg, s.fmt)), "f'(-x) differs from f'(x): the derivative is "
                 "not even (actual f'(-x), expected f'(x))", x=x, actual=dneg, expected=a,
                 case=case)
    order = np.argsort(np.abs(s.values(x)), kind="stable")
    ranked, slack = a[order], tol[order]
    rising = np.concatenate([[False], ranked[1:] > ranked[:-1] + slack[1:] + slack[:-1]])
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    s.fail_where(rising[back], "the derivative increases with |x| (actual: at the larger |x|; "
                 "expected: at the next smaller |x|)", x=x, actual=dx,
                 expected=np.concatenate([[np.nan], ranked[:-1]])[back], case=case)


@define("derivative_pieces", summary="a piecewise-constant f' is 1 for x > 0 and the "
        "spec's slope for x < 0; at a kink, PyTorch's convention (or any subgradient with "
        "kink='math')",
     applies=lambda t: differentiable(t) and t.spec.derivative.piecewise_constant,
     inputs=ones_like_cases, kind="backward")
def derivative_pieces(s: Subject, case: Case) -> None:
    d = s.spec.derivative
    x = case.x
    dx = derivative_of(s, x, case.params)
    xv, v = s.values(x), s.values(dx)
    s.fail_where((xv > 0) & (v != 1), "derivative is not 1 for x > 0", x=x, actual=dx,
                 expected=np.ones(v.shape), case=case)
    slope = d.first(np.array([-1.0]), **case.params)[0]
    neg = torch.full((1,), -1.0, dtype=s.fmt.dtype, device=s.device)
    _, bound = tolerance(s, neg, torch.ones_like(neg), case.params)
    err = np.abs(v - slope) / ulp(np.full(v.shape, slope), s.fmt)
    s.fail_where((xv < 0) & ~(err <= bound[0]), f"derivative is not the negative-side slope "
                 f"{slope!r} for x < 0", x=x, actual=dx, expected=np.full(v.shape, slope),
                 error=err, case=case)
    for kink in d.kinks(case.params):
        at = torch.full((2,), kink.at, dtype=s.fmt.dtype, device=s.device)
        at[1] = -at[1]  # both zeros
        got = s.values(derivative_of(s, at, case.params))
        if s.policy.kink == "math":
            lo, hi = kink.subdifferential
            wrong = (got < lo) | (got > hi) | np.isnan(got)
            what = f"outside the subdifferential [{lo}, {hi}]"
        else:
            wanted = s.values(torch.tensor([kink.pytorch], dtype=torch.float64).to(s.fmt.dtype))
            wrong = got != wanted[0]
            what = f"not PyTorch's convention {kink.pytorch!r}"
        s.fail_where(wrong, f"derivative at the kink x = {kink.at:+g} is {what}",
                     x=at, actual=torch.from_numpy(got.astype(np.float64)).to(s.fmt.dtype),
                     expected=np.full(2, kink.pytorch), case=case)


@define("second_derivative", summary="the second derivative (double backward) matches the "
        "spec's analytic one within the accuracy bounds",
     applies=lambda t: differentiable(t) and t.spec.derivative.second is not None,
     inputs=ones_like_cases, kind="backward")
def second_derivative(s: Subject, case: Case) -> None:
    leaf = case.x.detach().clone().requires_grad_(True)
    y = s.call(leaf, case.params)
    try:
        (gx,) = torch.autograd.grad(y, leaf, torch.ones_like(y), create_graph=True)
        (gxx,) = torch.autograd.grad(gx, leaf, torch.ones_like(gx))
    except Exception as exc:
        raise TargetMisbehaved(f"double backward raised {type(exc).__name__}: {exc}") from exc
    ref, bound = second_tolerance(s, case.x, case.params)
    cmp = compare(gxx.detach(), ref, fmt=s.fmt, bound=bound, policy=s.policy,
                  zero_sign_specified=False)
    s.fail_where(cmp.bad, "second derivative differs from the analytic one", x=case.x,
                 actual=gxx.detach(), expected=ref, error=cmp.error, case=case)


@st.composite
def smooth_points(draw, s: Subject) -> Case:
    """Small float64 inputs away from kinks, for finite differences."""
    n = draw(st.integers(1, 6))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 3
    x = torch.where(x.abs() < 1e-2, x + 0.5, x).to(s.device)
    params = draw(s.cases(backward=True, shape=st.just((n,)),
                        )).params
    return Case(x, params)


@define("gradcheck", summary="torch.autograd.gradcheck and gradgradcheck pass in float64",
     applies=differentiable, inputs=lambda s: smooth_points(s), kind="backward",
     formats=("float64",))
def gradcheck(s: Subject, case: Case) -> None:
    fn = lambda t: s.call(t, case.params)  # noqa: E731
    leaf = case.x.detach().clone().requires_grad_(True)
    for check in (torch.autograd.gradcheck, torch.autograd.gradgradcheck):
        try:
            ok = check(fn, (leaf,), raise_exception=True)
        except Exception as exc:
            raise Violation(f"{check.__name__} failed: {str(exc).splitlines()[0][:300]}",
                            case=case) from exc
        if not ok:
            raise Violation(f"{check.__name__} returned False", case=case)


@define("gradient_entry_points_agree", summary="the nn module, torch.*, in-place forms and custom "
     "kernels give the gradient of PyTorch's functional form", applies=lambda t:
     differentiable(t) and not_canonical(t), inputs=upstream_inputs, kind="backward")
def gradient_entry_points_agree(s: Subject, case: Case) -> None:
    x, g = case.x, case.upstream
    ours = gradient(s, x, g, case.params, layout=case.layout)
    theirs = gradient(s, x, g, case.params, fn=s.spec.canonical.fn, inplace=False)
    chosen = torch.from_numpy(at_kink_within_subdifferential(s, x, g, ours, case.params))
    theirs = torch.where(chosen.to(ours.device), ours, theirs)  # another valid subgradient
    inconsistent(s, case, ours, theirs,
                 f"{s.target.name}'s gradient differs from {s.spec.canonical.name}'s",
                 upstream=g, backward=True)


@define("no_gradient", summary="an activation without a derivative (step) has a backward that "
     "raises, as PyTorch's heaviside does; the default policy also accepts zeros (the "
     "derivative almost everywhere)", applies=lambda t: t.spec.derivative is None,
     inputs=ones_like_cases, kind="backward")
def no_gradient(s: Subject, case: Case) -> None:
    leaf = case.x.detach().clone().requires_grad_(True)
    try:
        y = s.call(leaf, case.params)
        if not y.requires_grad:
            return  # not differentiable at all: the same as raising
        (gx,) = torch.autograd.grad(y, leaf, torch.ones_like(y), allow_unused=True)
    except (TargetMisbehaved, RuntimeError):
        return
    if gx is None:
        return
    v = s.values(gx)
    if s.policy.correct_rounding or (v != 0).any():
        s.fail_where((v != 0) | np.full(v.shape, s.policy.correct_rounding),
                     "the backward of a function without a derivative returned a gradient",
                     x=case.x, actual=gx, expected=np.zeros(v.shape), case=case)


@define("softmax_vjp_sums_to_zero", summary="softmax's vector-Jacobian product sums to zero along "
     "dim (within the rows' accuracy bounds, about n ulp ||g||)",
     applies=lambda t: t.activation == "softmax" and differentiable(t),
     inputs=lambda s: with_upstream(s, allow_empty=False),
     kind="backward")
def softmax_vjp_sums_to_zero(s: Subject, case: Case) -> None:
    from actverify.properties.softmax import rows

    x, g = case.x, case.upstream
    dim = case.params["dim"]
    gx = gradient(s, x, g, case.params, layout=case.layout)
    ref, bound = tolerance(s, x, g, case.params)
    tol = rows(bound * ulp(ref, s.fmt), dim).sum(axis=1)
    total = rows(s.values(gx).reshape(ref.shape), dim).sum(axis=1, dtype=ref.dtype)
    bad = ~(np.abs(total) <= tol) & np.isfinite(rows(ref, dim)).all(axis=1)
    if bad.any():
        r = int(np.argmax(bad))
        value = torch.tensor([float(total[r])], dtype=torch.float64)
        s.fail_where(np.array([True]), f"row {r} of the gradient sums to {float(total[r])!r}",
                     x=value, actual=value, expected=np.array([0.0]),
                     case=case, tolerance=float(tol[r]))


@st.composite
def small_rows(draw, s: Subject) -> Case:
    n = draw(st.integers(2, 12))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    x = (torch.randn(n, generator=gen, dtype=torch.float64) * 2.0 ** draw(st.integers(-2, 3)))
    return Case(x.to(s.fmt.dtype).to(s.device), {"dim": 0})


@define("softmax_jacobian", summary="softmax's Jacobian (built from one-hot VJPs) is symmetric and "
     "each row sums to zero, within the accuracy bounds",
     applies=lambda t: t.activation == "softmax" and differentiable(t),
     inputs=lambda s: small_rows(s), kind="backward")
def softmax_jacobian(s: Subject, case: Case) -> None:
    x = case.x
    n = x.numel()
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    jac = np.stack([s.values(gradient(s, x, eye[i], case.params)) for i in range(n)])
    tol = np.stack([bound * ulp(ref, s.fmt) for ref, bound in
                    (tolerance(s, x, eye[i], case.params) for i in range(n))])
    asym = np.abs(jac - jac.T) > tol + tol.T
    flat = torch.from_numpy(np.broadcast_to(s.values(x), (n, n)).astype(np.float64))
    s.fail_where(asym, "the Jacobian is not symmetric (actual J[i, j], expected J[j, i]; "
                 "input x_j)", x=flat, actual=torch.from_numpy(jac.astype(np.float64)),
                 expected=jac.T, case=case)
    sums = jac.sum(axis=1)
    bad = ~(np.abs(sums) <= tol.sum(axis=1))
    value = torch.from_numpy(sums.astype(np.float64))
    s.fail_where(bad, "a row of the Jacobian does not sum to zero", x=value, actual=value,
                 expected=np.zeros(n), case=case)
