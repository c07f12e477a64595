"""Properties of the values: accuracy against the reference, range, values at infinity, order,
NaN."""

from __future__ import annotations

import hypothesis
from hypothesis.control import currently_in_test_context
import numpy as np
import torch
from hypothesis import strategies as st

from actverify.properties.base import (Subject, always, elementwise, define,
                                       observe)
from actverify.judgement import judge, stated
from actverify.strategies import Case, shapes


def everything(s: Subject) -> st.SearchStrategy[Case]:
    return s.cases()


@define("accuracy", summary="every result is within the accuracy bound of the true value (ULPs)",
     applies=always, inputs=everything)
def accuracy(s: Subject, case: Case) -> None:
    y = s.call(case.x, case.params)
    judged = judge(s, case.x, y, case.params)
    cmp, ref, bad = judged.comparison, judged.reference, judged.bad
    worst = cmp.counted_max(judged.accepted)
    if worst is not None:  # steer the search toward inputs with large errors
        if currently_in_test_context():  # not when a saved case is replayed
            # Hypothesis needs a finite score: a NaN result (an infinite error) is the largest.
            hypothesis.target(min(worst[0], 1e300), label="max ulp error")
        observe("ulp", worst[0], float(s.values(case.x).flat[worst[1]]),
                bound=float(np.broadcast_to(cmp.bound, cmp.error.shape).flat[worst[1]]))
    reason = next((r for r in cmp.reason[bad].ravel() if r), "ulp error above bound")
    s.fail_where(bad, f"result differs from the true value: {reason}", x=case.x, actual=y,
                 expected=ref, error=cmp.error, case=case, bounds=cmp.bound)


@define("range", summary="finite outputs stay in the activation's range (and discrete set)",
     applies=lambda t: t.spec.range is not None, inputs=everything)
def value_range(s: Subject, case: Case) -> None:
    y = s.call(case.x, case.params)
    lo, hi = s.spec.range(case.params)
    yv, xv = s.values(y), s.values(case.x)
    outside = ~np.isnan(xv) & ((yv < lo) | (yv > hi) | np.isnan(yv))
    if s.spec.accepted is not None:
        outside &= ~s.spec.accepted(xv, yv, case.params)
    s.fail_where(outside & ~np.isnan(s.reference(case.x, case.params)),
                 f"output outside [{lo}, {hi}]", x=case.x, actual=y, case=case)
    if s.spec.discrete_values is not None:
        allowed = np.isin(yv, list(s.spec.discrete_values)) | np.isnan(xv)
        s.fail_where(~allowed, f"output not in {sorted(s.spec.discrete_values)}",
                     x=case.x, actual=y, case=case)


def infinities(s: Subject) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(draw):
        shape = draw(shapes(min_dims=1, allow_empty=False, allow_large=False))
        signs = draw(st.lists(st.booleans(), min_size=1, max_size=8))
        n = int(np.prod(shape))
        pattern = torch.tensor([np.inf if b else -np.inf for b in signs], dtype=torch.float64)
        x = pattern.repeat(n // len(signs) + 1)[:n].reshape(shape).to(s.fmt.dtype).to(s.device)
        return Case(x, draw(s.params(x.ndim)))
    return draw()


@define("at_infinity", summary="f(-inf) and f(+inf) are the activation's limits, exactly",
     applies=lambda t: t.spec.at_infinity is not None, inputs=infinities)
def at_infinity(s: Subject, case: Case) -> None:
    y = s.call(case.x, case.params)
    lo, hi = s.spec.at_infinity(case.params)
    xv, yv = s.values(case.x), s.values(y)
    expected = np.where(xv < 0, lo, hi)
    wrong = ~((yv == expected) | (np.isnan(yv) & np.isnan(expected)))
    s.fail_where(wrong, "wrong value at infinity", x=case.x, actual=y, expected=expected, case=case)


def sortable(s: Subject) -> st.SearchStrategy[Case]:
    return s.cases(monotone_only=True)


@define("monotonic", summary="non-decreasing over the whole sorted input, every adjacent pair",
     applies=lambda t: elementwise(t) and t.spec.monotone is not None, inputs=sortable)
def monotonic(s: Subject, case: Case) -> None:
    # The drawn values and, in every example, a dense probe of the seams where kernels switch
    # formulas: a jump there lies between two neighbours of the probe, whatever was drawn.
    # `joined`: the seams' true values are computed once per subject, the drawn values' once
    # per example.
    flat = s.joined([case.x, s.seams()])
    kept = torch.nonzero(~torch.isnan(flat)).flatten()
    order = kept[torch.sort(flat[kept]).indices]
    ordered = flat[order]  # the values sorted
    y = s.call(ordered, case.params)
    yv = s.values(y)
    defined = ~np.isnan(s.reference(flat, case.params).reshape(-1)[order.cpu().numpy()])
    pair_ok = (yv[1:] >= yv[:-1]) | ~(defined[1:] & defined[:-1])
    bad = np.concatenate([[False], ~pair_ok])
    s.fail_where(bad, "output decreases although the input increases (x is the larger input "
                 "of the pair; expected is the output at the smaller one)", x=ordered, actual=y,
                 expected=np.concatenate([[np.nan], yv[:-1]]), case=case.with_input(ordered))


@st.composite
def _with_nans(draw, s: Subject) -> Case:
    case = draw(s.cases(shape=shapes(min_dims=1, allow_empty=False)))
    n = case.x.numel()
    where = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=min(n, 8)))
    x = case.x.flatten().clone()
    x[torch.tensor(where, device=x.device)] = float("nan")
    return case.with_input(x.reshape(case.x.shape))


@define("nan_propagation", summary="NaN in gives NaN out (the whole row for softmax), or the "
     "activation's documented convention under the default policy",
     applies=always, inputs=lambda s: _with_nans(s))
def nan_propagation(s: Subject, case: Case) -> None:
    y = s.call(case.x, case.params)
    ref = s.reference(case.x, case.params)
    yv = s.values(y)
    wrong = np.isnan(ref) & ~np.isnan(yv)
    wrong &= ~stated(s.spec, s.policy, s.values(case.x), yv, case.params)
    s.fail_where(wrong, "NaN did not propagate", x=case.x, actual=y, expected=ref, case=case)


