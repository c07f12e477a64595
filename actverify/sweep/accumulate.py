"""Accumulators that build PassStats and CheckStats chunk by chunk, and the state a sweep
carries from chunk to chunk (shared by both engines)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from actverify.accuracy import reference_uncertainty
from actverify.dtypes import FloatFormat
from actverify.properties.base import Subject
from actverify.sweep.histogram import N_BINS, histogram
from actverify.sweep.results import CheckStats, PassStats
from actverify.sweep.plan import MAX_EXAMPLES, N_WORST, _hex


class _PassAcc:
    """Accumulates one pass's statistics chunk by chunk."""

    def __init__(self, name: str, fmt: FloatFormat) -> None:
        self.stats = PassStats(name)
        self.fmt = fmt
        self.hist = np.zeros(N_BINS, dtype=np.int64)
        self._examples: list[tuple[float, int, dict]] = []  # min-heap on score
        self._worst: list[tuple[float, int, dict]] = []
        self._tick = 0

    def _push(self, heap: list, score: float, item: dict, limit: int) -> None:
        self._tick += 1
        entry = (score, self._tick, item)
        if len(heap) < limit:
            heapq.heappush(heap, entry)
        elif score > heap[0][0]:
            heapq.heapreplace(heap, entry)

    def _threshold(self, heap: list, limit: int) -> float:
        return heap[0][0] if len(heap) >= limit else -math.inf

    def example(self, score: float, item: dict) -> None:
        self._push(self._examples, score, item, MAX_EXAMPLES)

    def candidate_worst(self, err: float, item: dict) -> None:
        self._push(self._worst, err, item, N_WORST)
        s = self.stats
        if s.max_ulp is None or err > s.max_ulp:
            s.max_ulp, s.max_at = float(err), item

    def add_exact(self, *, x: torch.Tensor, y: torch.Tensor, ref: np.ndarray, cmp,
                  bad: np.ndarray, accepted: np.ndarray, g: np.ndarray | None = None,
                  judged: np.ndarray | None = None,
                  context: Callable[[int], dict] | None = None) -> np.ndarray:
        """One chunk judged by the library's `compare`; returns the per-input error array."""
        fmt, s = self.fmt, self.stats
        err = np.asarray(cmp.error, dtype=np.float64).ravel()
        judged = np.ones(err.shape, dtype=bool) if judged is None else judged
        bad = np.asarray(bad).ravel() & judged
        accepted = np.asarray(accepted).ravel() & judged
        bound = np.asarray(cmp.bound, dtype=np.float64).ravel()
        bound = bound if bound.size == err.size else np.full(err.shape, bound[0])
        over = ~(err <= bound)
        excused_all = np.asarray(cmp.excused).ravel()
        s.n += int(judged.sum())
        s.not_judged += int((~judged).sum())
        self.hist += histogram(err[judged], fmt)
        unc = reference_uncertainty(fmt)
        with np.errstate(invalid="ignore"):
            s.not_correctly_rounded += int((judged & (err - unc > 0.5)).sum())
        s.policy_violations += int(bad.sum())
        s.excused += int((excused_all & over & judged).sum())
        s.accepted += int((accepted & np.asarray(cmp.bad).ravel()).sum())
        # NaN inputs are judged, but never shown as "the worst input" (NaN in, NaN out is 0);
        # a NaN result for a number counts, as an infinite error.
        x_nan = np.isnan(x.detach().reshape(-1).cpu().double().numpy())
        counted = judged & ~excused_all & ~accepted & ~np.isnan(err) & ~x_nan
        if counted.any():
            cerr = np.where(counted, err, -1.0)
            top = np.argpartition(cerr, -min(N_WORST, cerr.size))[-N_WORST:]
            for i in top:
                if cerr[i] >= 0 and cerr[i] >= self._threshold(self._worst, N_WORST):
                    item = self._describe(x, y, ref, err, i, g)
                    item["bound"] = float(bound[i])
                    self.candidate_worst(float(cerr[i]), item)
        if bad.any():
            score = np.where(bad, np.nan_to_num(err, posinf=1e300), -1.0)
            top = np.argpartition(score, -min(MAX_EXAMPLES, score.size))[-MAX_EXAMPLES:]
            reasons = np.asarray(cmp.reason, dtype=object).ravel()
            for i in top:
                if bad[i]:
                    item = self._describe(x, y, ref, err, i, g)
                    item["bound"] = float(bound[i])
                    item["reason"] = reasons[i] or "ulp error above bound"
                    if context is not None:
                        item.update(context(int(i)))
                    self.example(float(score[i]), item)
        return err

    def _describe(self, x, y, ref, err, i, g) -> dict:
        fmt = self.fmt
        xf, yf = x.reshape(-1), y.reshape(-1)
        xb = int(fmt.bits_of(xf[i:i + 1].cpu())[0])
        yb = int(fmt.bits_of(yf[i:i + 1].detach().cpu())[0])
        item = {"x": float(xf[i]), "bits": _hex(xb, fmt), "y": float(yf[i]),
                "y_bits": _hex(yb, fmt), "expected": float(np.asarray(ref).ravel()[i]),
                "ulp_error": float(err[i])}
        if g is not None:
            item["g"] = float(np.asarray(g).ravel()[i])
        return item

    def finish(self) -> PassStats:
        s = self.stats
        s.histogram = [int(c) for c in self.hist]
        s.examples = [e[2] for e in sorted(self._examples, key=lambda e: -e[0])]
        s.worst = [e[2] for e in sorted(self._worst, key=lambda e: -e[0])]
        return s


class _CheckAcc:
    def __init__(self, name: str, *, counts_for_ok: bool = True) -> None:
        self.stats = CheckStats(name, counts_for_ok=counts_for_ok)
        self._keyed: list[tuple[int, int, dict]] = []  # max-heap (negated keys) of examples
        self._tick = 0

    def add(self, n: int, violations: int, examples: Iterable[dict] = (),
            key: Callable[[dict], int] | None = None) -> None:
        """Count n checked items and their violations.  Without `key`, examples are kept in
        the order they come (the caller visits inputs in value order); with it, the
        MAX_EXAMPLES examples of smallest key are kept, in key order, so that an engine
        visiting the inputs in another order keeps the same examples."""
        self.stats.n += int(n)
        self.stats.violations += int(violations)
        if key is not None:
            for e in examples:
                self._tick += 1
                entry = (-key(e), self._tick, e)
                if len(self._keyed) < MAX_EXAMPLES:
                    heapq.heappush(self._keyed, entry)
                elif entry[0] > self._keyed[0][0]:
                    heapq.heapreplace(self._keyed, entry)
            return
        room = MAX_EXAMPLES - len(self.stats.examples)
        if room > 0:
            for e in examples:
                self.stats.examples.append(e)
                room -= 1
                if room == 0:
                    break

    def finish(self) -> CheckStats:
        if self._keyed:
            self.stats.examples = [e for _, _, e in sorted(self._keyed, reverse=True)]
            self._keyed = []
        return self.stats


def _not_checked(name: str, why: str, *, counts_for_ok: bool = True) -> CheckStats:
    return CheckStats(name, checked=False, why_not=why, counts_for_ok=counts_for_ok)

End = tuple[float, float, str]  # an input at a chunk's end: (x, y, bits)


def mono_pair(lo: End, hi: End) -> dict | None:
    """The example of a decreasing pair of adjacent inputs lo < hi, None if in order."""
    if hi[1] >= lo[1]:
        return None
    return {"x_lo": lo[0], "bits_lo": lo[2], "y_lo": lo[1],
            "x_hi": hi[0], "bits_hi": hi[2], "y_hi": hi[1]}


class _MonoCarry:
    """Monotonicity across chunks: the last defined input of the previous chunk (chunks
    visited in ascending value order), and for chunks visited in descending order (the
    negative halves of mirrored pairs) the first input of the previous one."""

    def __init__(self) -> None:
        self.last: End | None = None
        self.upper: End | None = None

    def pair(self, x: float, y: float, bits: str) -> dict | None:
        return None if self.last is None else mono_pair(self.last, (x, y, bits))



@dataclass
class _State:
    """Everything a sweep accumulates, shared by both engines."""

    s: Subject
    params: dict
    backward: bool
    seed: int
    forward: _PassAcc
    grads: dict[str, _PassAcc]
    mono: _CheckAcc | None
    sym: _CheckAcc | None
    canon: _CheckAcc | None
    canon_grads: dict[str, _CheckAcc]
    carry: _MonoCarry = field(default_factory=_MonoCarry)
    keep: bool = True
    arrays: dict[str, list] = field(default_factory=dict)
    chunk_points: list[tuple[int, float, float]] = field(default_factory=list)
    chunk_index: int = 0

    def keep_array(self, name: str, values: np.ndarray) -> None:
        if self.keep:
            self.arrays.setdefault(name, []).append(np.asarray(values))
