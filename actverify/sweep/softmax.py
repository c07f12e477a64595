"""Softmax-like (not element-wise) sweeps: rows built from every value of a 16-bit format."""

from __future__ import annotations

import math

import numpy as np
import torch

from actverify.accuracy import ulp
from actverify.dtypes import FloatFormat
from actverify.errors import UsageError
from actverify.properties.base import Subject
from actverify.sweep.results import SweepResult
from actverify.sweep.accumulate import _PassAcc, _CheckAcc
from actverify.sweep.checks import _bitwise_diff
from actverify.judgement import judge, judge_gradient
from actverify.properties.derivatives import gradient
from actverify.sweep.exact import _upstream


SOFTMAX_PATTERNS: dict[str, str] = {
    "spike": "each value v as one logit in a row of n - 1 zeros, at column i mod n",
    "background": "each value v at column i mod n of a fixed background row (n seeded normal "
                  "values with standard deviation 3, rounded to the format)",
    "consecutive": "all bit patterns in order, cut into rows of n consecutive patterns",
}


def softmax_rows(fmt: FloatFormat, pattern: str, n: int, *, seed: int = 0
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows (R, n) in float64, the value v each row is about, the column where v sits)."""
    v = fmt.from_bits(torch.arange(1 << fmt.bits, dtype=torch.int64)).double()
    col = torch.arange(v.numel()) % n
    if pattern == "spike":
        rows = torch.zeros(v.numel(), n, dtype=torch.float64)
    elif pattern == "background":
        gen = torch.Generator().manual_seed(seed)
        bg = (torch.randn(n, generator=gen, dtype=torch.float64) * 3).to(fmt.dtype).double()
        rows = bg.repeat(v.numel(), 1)
    elif pattern == "consecutive":
        if v.numel() % n:
            raise UsageError(f"row length {n} does not divide {v.numel()}")
        rows = v.reshape(-1, n).clone()
        return rows, v, col
    else:
        raise UsageError(f"unknown softmax pattern {pattern!r}; use one of "
                         f"{', '.join(SOFTMAX_PATTERNS)}")
    rows[torch.arange(v.numel()), col] = v
    return rows, v, col


def _softmax_case(result: SweepResult, s: Subject, rows: torch.Tensor, v: torch.Tensor,
                  col: torch.Tensor, pattern: str, dim: int, *, canonical: bool,
                  backward: bool, seed: int) -> None:
    fmt = s.fmt
    label = f"{pattern} dim={dim}"
    x = rows.to(fmt.dtype)
    if dim == 0:
        x = x.t().contiguous()
    x = x.to(s.device)
    params = {"dim": dim}
    y = s.call(x, params)
    cmp, ref, bad, accepted = judge(s, x, y, params)

    def as_rows(a):
        a = np.asarray(a)
        return a.T if dim == 0 else a

    xr = as_rows(s.values(x).reshape(x.shape))
    n_rows, n_cols = xr.shape

    def context(i: int) -> dict:
        row, column = (i % n_rows, i // n_rows) if dim == 0 else divmod(i, n_cols)
        return {"row_index": row, "column": column, "row": [float(a) for a in xr[row]]}

    acc = _PassAcc(f"forward {label}", fmt)
    err = acc.add_exact(x=x.reshape(-1), y=y.reshape(-1), ref=np.asarray(ref).reshape(-1),
                        cmp=_Flat(cmp), bad=np.asarray(bad).reshape(-1),
                        accepted=np.asarray(accepted).reshape(-1), context=context)
    err_rows = as_rows(err.reshape(x.shape))
    result.passes[acc.stats.name] = acc.finish()
    r_idx = torch.arange(rows.shape[0]).numpy()
    if pattern == "consecutive":
        result.arrays[f"{label}/x"] = v.numpy()
        result.arrays[f"{label}/err"] = err_rows.reshape(-1)
    else:
        result.arrays[f"{label}/x"] = v.numpy()
        result.arrays[f"{label}/err"] = err_rows[r_idx, col.numpy()]
        result.arrays[f"{label}/row_max"] = np.max(np.where(np.isfinite(err_rows), err_rows, 0),
                                                   axis=1)
    # order kept within each row; rows sum to one
    yr = as_rows(s.values(y).reshape(x.shape))
    refr = as_rows(np.asarray(ref).reshape(x.shape))
    defined = ~np.isnan(refr).any(axis=1)
    order = np.argsort(xr, axis=1, kind="stable")
    xs, ys = np.take_along_axis(xr, order, 1), np.take_along_axis(yr, order, 1)
    with np.errstate(invalid="ignore"):
        bad_pair = ((xs[:, 1:] > xs[:, :-1]) & ~(ys[:, 1:] >= ys[:, :-1])) & defined[:, None]
    bad_rows = np.flatnonzero(bad_pair.any(axis=1))
    order_acc = _CheckAcc(f"order {label}")
    order_acc.add(int(defined.sum()), bad_rows.size, [
        {"row": [float(a) for a in xr[r]], "output": [float(a) for a in yr[r]]}
        for r in bad_rows[:5]])
    result.checks[order_acc.stats.name] = order_acc.finish()
    bound = as_rows(np.broadcast_to(s.bound(x, params), x.shape))
    tol = (bound * ulp(refr, fmt)).sum(axis=1)
    total = yr.sum(axis=1, dtype=np.float64)
    finite_rows = np.isfinite(xr).all(axis=1)
    with np.errstate(invalid="ignore"):
        bad_sum = finite_rows & ~(np.abs(total - 1) <= tol)
    sum_acc = _CheckAcc(f"sums_to_one {label}")
    sum_acc.add(int(finite_rows.sum()), int(bad_sum.sum()), [
        {"row": [float(a) for a in xr[r]], "sum": float(total[r]), "tolerance": float(tol[r])}
        for r in np.flatnonzero(bad_sum)[:5]])
    result.checks[sum_acc.stats.name] = sum_acc.finish()
    if canonical:
        c = s.canonical(x, params)
        cacc = _CheckAcc(f"differs_from_canonical {label}", counts_for_ok=False)
        _bitwise_diff(cacc, fmt, x.reshape(-1), y.reshape(-1), c.reshape(-1),
                      np.asarray(ref).reshape(-1))
        result.checks[cacc.stats.name] = cacc.finish()
    if backward:
        g = _upstream(x.numel(), fmt, s.device, seed + 1).reshape(x.shape)
        judged = np.isfinite(s.values(x)).reshape(x.shape)
        judged = np.broadcast_to(judged.all(axis=dim, keepdims=True), x.shape)
        gx = gradient(s, x, g, params)
        gcmp, gref, gbad, gaccepted = judge_gradient(s, x, g, gx, params)
        gacc = _PassAcc(f"backward g=random {label}", fmt)
        gacc.add_exact(x=x.reshape(-1), y=gx.reshape(-1), ref=np.asarray(gref).reshape(-1),
                       cmp=_Flat(gcmp), bad=np.asarray(gbad).reshape(-1),
                       accepted=np.asarray(gaccepted).reshape(-1), g=s.values(g).reshape(-1),
                       judged=judged.reshape(-1), context=context)
        result.passes[gacc.stats.name] = gacc.finish()


class _Flat:
    """A Comparison seen as flat arrays."""

    def __init__(self, cmp) -> None:
        self.error = np.asarray(cmp.error).reshape(-1)
        self.excused = np.asarray(cmp.excused).reshape(-1)
        self.bad = np.asarray(cmp.bad).reshape(-1)
        self.reason = np.asarray(cmp.reason, dtype=object).reshape(-1)
        b = np.asarray(cmp.bound)
        self.bound = b.reshape(-1) if b.size > 1 else b.reshape(-1)[:1]


def _softmax_specials(s: Subject) -> list[dict]:
    """Rows of only -inf, a row holding +inf, a row holding NaN, a masked row, zeros."""
    fmt, inf, nan = s.fmt, math.inf, math.nan
    cases = {"all -inf": [-inf] * 4, "one +inf": [1.0, inf, 0.0, -2.0],
             "one NaN": [1.0, nan, 0.0, -2.0], "masked (-inf) entries": [1.0, -inf, 0.0, -inf],
             "+0 and -0": [0.0, -0.0, 0.0, -0.0]}
    out = []
    for name, row in cases.items():
        x = torch.tensor([row], dtype=torch.float64).to(fmt.dtype).to(s.device)
        y = s.call(x, {"dim": -1})
        cmp, ref, bad, accepted = judge(s, x, y, {"dim": -1})
        out.append({"name": name, "row": row, "y": s.values(y).reshape(-1).tolist(),
                    "expected": np.asarray(ref).reshape(-1).tolist(),
                    "ok": not bool(np.asarray(bad).any()),
                    "note": "accepted convention" if np.asarray(accepted).any() else ""})
    return out
