"""Whole-space checks of element-wise sweeps: monotonicity across every adjacent pair
(with the carry across chunks), the point-symmetry identity, and bitwise agreement with
PyTorch's canonical kernel."""

from __future__ import annotations

import numpy as np
import torch

from actverify.accuracy import ulp
from actverify.dtypes import FloatFormat
from actverify.judgement import same_bits
from actverify.targets import Target
from actverify.sweep.accumulate import _CheckAcc, _MonoCarry
from actverify.sweep.plan import MAX_EXAMPLES, _hex, _hex_at


def _is_canonical(target: Target) -> bool:
    spec = target.spec
    return target.builtin and target.name == spec.canonical.name and not target.inplace


def _monotone_chunk(acc: _CheckAcc, carry: _MonoCarry, fmt: FloatFormat, x: torch.Tensor,
                    yv: np.ndarray, defined: np.ndarray) -> None:
    """Every adjacent pair of the chunk (inputs already in value order) plus the pair across
    the chunk boundary; pairs with an undefined true value (NaN reference) are skipped."""
    idx = np.flatnonzero(defined)
    if idx.size == 0:
        return
    xv = x.detach().cpu().double().numpy()
    bits = fmt.bits_of(x.cpu()).numpy()
    y_def = yv[idx]
    # Pairs only between neighbours in the swept order: an undefined input breaks the chain.
    consecutive = np.diff(idx) == 1
    with np.errstate(invalid="ignore"):
        bad_pairs = consecutive & ~(y_def[1:] >= y_def[:-1])
    examples = []
    first = int(idx[0])
    boundary = carry.pair(float(xv[first]), float(yv[first]), _hex(bits[first], fmt)) \
        if first == 0 else None
    n_pairs = int(consecutive.sum()) + (1 if carry.last is not None and first == 0 else 0)
    if boundary is not None:
        examples.append(boundary)
    for j in np.flatnonzero(bad_pairs)[:MAX_EXAMPLES]:
        lo, hi = int(idx[j]), int(idx[j + 1])
        examples.append({"x_lo": float(xv[lo]), "bits_lo": _hex(bits[lo], fmt),
                         "y_lo": float(yv[lo]), "x_hi": float(xv[hi]),
                         "bits_hi": _hex(bits[hi], fmt), "y_hi": float(yv[hi])})
    acc.add(n_pairs, int(bad_pairs.sum()) + (boundary is not None), examples)
    last = int(idx[-1])
    carry.last = ((float(xv[last]), float(yv[last]), _hex(bits[last], fmt))
                  if last == defined.size - 1 else None)


def _bitwise_diff(acc: _CheckAcc, fmt: FloatFormat, x: torch.Tensor, y: torch.Tensor,
                  c: torch.Tensor, ref: np.ndarray, extra: dict | None = None) -> np.ndarray:
    """Inputs where the target and PyTorch's canonical kernel give different bits (any NaN
    equals any NaN); returns the gap in ulps of the true value (0 where equal)."""
    same = same_bits(y.detach(), c.detach()).reshape(-1)
    yv = y.detach().cpu().double().numpy().reshape(-1)
    cv = c.detach().cpu().double().numpy().reshape(-1)
    with np.errstate(invalid="ignore"):
        gap = np.where(same, 0.0, np.abs(yv - cv) / ulp(np.asarray(ref).reshape(-1), fmt))
    gap = np.where(~same & np.isnan(gap), np.inf, gap)
    diff = np.flatnonzero(~same)
    xf, yf, cf = x.reshape(-1), y.reshape(-1), c.reshape(-1)
    examples = []
    for i in diff[:MAX_EXAMPLES].tolist():
        e = {"x": float(xf[i]), "bits": _hex_at(xf, i, fmt), "y": float(yv[i]),
             "y_bits": _hex_at(yf, i, fmt), "canonical": float(cv[i]),
             "canonical_bits": _hex_at(cf, i, fmt), "gap_ulp": float(gap[i])}
        if extra:
            e.update({k: float(np.asarray(v).reshape(-1)[i]) for k, v in extra.items()})
        examples.append(e)
    acc.add(same.size, diff.size, examples)
    return gap
