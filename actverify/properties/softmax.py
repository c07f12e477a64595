"""Softmax's own properties: rows sum to one, shift invariance, order kept, special rows."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st

from actverify.accuracy import reference_dtype, ulp
from actverify.properties.base import Subject, activation, define
from actverify.strategies import Case, shapes

softmax_only = activation("softmax")


def rows(t: np.ndarray, dim: int) -> np.ndarray:
    """View an array as (rows, n) with the softmax dim last."""
    return np.moveaxis(t.reshape(t.shape or (1,)), dim if t.ndim else 0, -1).reshape(
        -1, (t.shape or (1,))[dim if t.ndim else 0])


def finite_rows(s: Subject) -> st.SearchStrategy[Case]:
    return s.cases(allow_nan=False, allow_infinity=False)


@define("softmax_sums_to_one", summary="each row along dim sums to one within the rows' "
     "accuracy bounds (about n ulp)", applies=softmax_only, inputs=finite_rows)
def sums_to_one(s: Subject, case: Case) -> None:
    if case.x.numel() == 0:
        return
    dim = case.params["dim"]
    y = s.call(case.x, case.params)
    ref = s.reference(case.x, case.params)
    tol = rows(s.bound(case.x, case.params) * ulp(ref, s.fmt), dim).sum(axis=1)
    total = rows(s.values(y).reshape(ref.shape), dim).sum(axis=1, dtype=reference_dtype(s.fmt))
    bad_rows = np.abs(total - 1) > tol
    if bad_rows.any():
        r = int(np.argmax(bad_rows))
        s.fail_where(np.array([True]), f"row {r} along dim {dim} sums to {float(total[r])!r}",
                     x=torch.tensor([float(total[r])], dtype=torch.float64),
                     actual=torch.tensor([float(total[r])], dtype=torch.float64),
                     expected=np.array([1.0]), case=case, tolerance=float(tol[r]))


@st.composite
def shifted(draw, s: Subject) -> Case:
    """x and a shift c on a common grid k * 2^e, so that x + c is exact in the format."""
    shape = draw(shapes(min_dims=1, allow_empty=False, allow_large=False))
    e = draw(st.integers(-4, 6))
    top = 2 ** (s.fmt.precision - 2)  # |k| + |m| stays below 2^(p-1): every sum is exact
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    k = torch.randint(-top // 2, top // 2, shape, generator=g)
    m = draw(st.integers(-top // 2 + 1, top // 2 - 1))
    x = (k * 2.0**e).to(torch.float64)
    return Case(x.to(s.fmt.dtype).to(s.device), draw(s.params(len(shape))),
                other=(x + m * 2.0**e).to(s.fmt.dtype).to(s.device))


@define("softmax_shift_invariance", summary="softmax(x + c) = softmax(x) within the accuracy "
     "bounds, for exact shifts up to the format's range (naive exp overflows here)",
     applies=softmax_only, inputs=lambda s: shifted(s))
def shift_invariance(s: Subject, case: Case) -> None:
    x, xc = case.x, case.other
    dim = case.params["dim"]
    y, yc = s.call(x, case.params), s.call(xc, case.params)
    ref = s.reference(x, case.params)
    tol = (s.bound(x, case.params) + s.bound(xc, case.params)) * ulp(ref, s.fmt)
    gap = np.abs(s.values(y) - s.values(yc))
    s.fail_where(~(gap <= tol), f"softmax(x + c) differs from softmax(x) along dim {dim} "
                 "(actual: softmax(x + c), expected: softmax(x))", x=xc, actual=yc,
                 expected=s.values(y), case=case)


@define("softmax_order", summary="order within a row is kept: x_i < x_j gives s_i <= s_j "
     "(so the argmax is kept)", applies=softmax_only, inputs=finite_rows)
def order_kept(s: Subject, case: Case) -> None:
    if case.x.numel() == 0:
        return
    dim = case.params["dim"]
    y = s.call(case.x, case.params)
    xr, yr = rows(s.values(case.x), dim), rows(s.values(y).reshape(case.x.shape), dim)
    order = np.argsort(xr, axis=1, kind="stable")
    xs, ys = np.take_along_axis(xr, order, 1), np.take_along_axis(yr, order, 1)
    bad = np.zeros(xs.shape, dtype=bool)
    bad[:, 1:] = (ys[:, 1:] < ys[:, :-1]) & (xs[:, 1:] > xs[:, :-1]) | np.isnan(ys[:, 1:])
    if bad.any():
        s.fail_where(bad, f"a larger logit got a smaller probability along dim {dim} (x and "
                     "actual: the larger logit and its output; expected: the smaller one's "
                     "output)", x=torch.from_numpy(xs.astype(np.float64)),
                     actual=torch.from_numpy(ys.astype(np.float64)),
                     expected=np.concatenate([ys[:, :1], ys[:, :-1]], axis=1), case=case)


@st.composite
def special_rows(draw, s: Subject) -> Case:
    """Rows with some -inf (masking), rows of only -inf, rows holding +inf."""
    n = draw(st.sampled_from([1, 2, 3, 7, 17, 64, 129, 1025]))
    r = draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    x = torch.randn(r, n, generator=g, dtype=torch.float64) * 4
    kinds = draw(st.lists(st.sampled_from(["masked", "all_neg_inf", "pos_inf", "plain"]),
                          min_size=r, max_size=r))
    for i, kind in enumerate(kinds):
        mask = torch.rand(n, generator=g) < 0.5
        if kind == "masked":
            mask[torch.randint(0, n, (1,), generator=g)] = False  # keep one finite entry
            x[i, mask] = -math.inf
        elif kind == "all_neg_inf":
            x[i] = -math.inf
        elif kind == "pos_inf":
            x[i, torch.randint(0, n, (1,), generator=g)] = math.inf
    transpose = draw(st.booleans()) and s.supports({"dim": 0}, 2)
    x = x.to(s.fmt.dtype).to(s.device)
    return Case(x.t() if transpose else x, {"dim": 0 if transpose else -1})


@define("softmax_special_rows", summary="masked (-inf) entries give exactly 0 and the row stays "
     "finite; rows of only -inf and rows with +inf follow the documented convention",
     applies=softmax_only, inputs=lambda s: special_rows(s))
def special_rows_law(s: Subject, case: Case) -> None:
    y = s.call(case.x, case.params)
    xv, yv, ref = s.values(case.x), s.values(y), s.reference(case.x, case.params)
    masked_ok = ~((xv == -np.inf) & ~np.isnan(ref) & (yv != 0))
    s.fail_where(~masked_ok, "a masked (-inf) entry did not give exactly 0", x=case.x,
                 actual=y, expected=np.zeros(xv.shape), case=case)
    finite_row = ~np.isnan(ref)
    s.fail_where(finite_row & ~np.isfinite(yv), "a row with a finite maximum gave a non-finite "
                 "output", x=case.x, actual=y, expected=ref, case=case)
    undefined = np.isnan(ref) & ~np.isnan(yv)
    if s.policy.nan == "spec":
        undefined &= ~s.spec.accepted(xv, yv, case.params)
    s.fail_where(undefined, "a row of only -inf or holding +inf broke the convention (NaN, or "
                 "under the default policy zeros / the +inf limit)", x=case.x, actual=y,
                 expected=ref, case=case)
