"""The exact engine: every input judged by the library's `compare` through the property
suite's own verdict functions, forward and backward; and the special inputs (inf, NaN, +-0)."""

from __future__ import annotations

import math

import numpy as np
import torch

from actverify.dtypes import FloatFormat
from actverify.properties.base import Subject, TargetMisbehaved
from actverify.strategies import upstream_gradient
from actverify.targets import Target
from actverify.judgement import judge, judge_gradient, own_output_error, point_symmetry_bad
from actverify.properties.derivatives import gradient
from actverify.sweep.plan import MAX_EXAMPLES, _hex_at
from actverify.sweep.results import PassStats
from actverify.sweep.accumulate import _State
from actverify.sweep.checks import _monotone_chunk, _bitwise_diff


def _upstream(n: int, fmt: FloatFormat, device: str, seed: int) -> torch.Tensor:
    """Random upstream gradients, as the gradient properties draw them, at every scale."""
    return upstream_gradient((n,), seed=seed).to(fmt.dtype).to(device)


def _backward_applies(target: Target, params: dict) -> str | None:
    """None when the backward is checked, else why not."""
    if target.spec.derivative is None:
        return "no gradient (PyTorch's backward raises)"
    if not target.backward:
        return "the target declares no backward"
    if not target.accepts(params, 1, backward=True):
        return "the target declares no backward for these parameters"
    return None


def _exact_forward(state: _State, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    s, params = state.s, state.params
    y = s.call(x, params)
    cmp, ref, bad, accepted = judge(s, x, y, params)
    err = state.forward.add_exact(x=x, y=y, ref=ref, cmp=cmp, bad=bad, accepted=accepted)
    state.keep_array("forward", err)
    yv = s.values(y).reshape(-1)
    if state.mono is not None:
        _monotone_chunk(state.mono, state.carry, s.fmt, x, yv, ~np.isnan(ref))
    if state.sym is not None:
        y_neg = s.call(-x, params)
        ref_neg = s.reference(-x, params)
        bad_sym = point_symmetry_bad(s, x, yv, s.values(y_neg), ref, ref_neg, params)
        idx = np.flatnonzero(bad_sym)[:MAX_EXAMPLES]
        xv = s.values(x)
        state.sym.add(int(np.isfinite(xv).sum()), int(bad_sym.sum()), [
            {"x": float(xv[i]), "bits": _hex_at(x, i, s.fmt),
             "f(x)": float(yv[i]), "f(-x)": float(s.values(y_neg)[i]),
             "expected f(-x)": float(2 * s.spec.point_symmetry - yv[i])} for i in idx])
    if state.canon is not None:
        c = s.canonical(x, params)
        state.keep_array("canonical_gap", _bitwise_diff(state.canon, s.fmt, x, y, c, ref))
    elif state.keep:
        state.keep_array("canonical_gap", np.zeros(x.numel()))
    return y, ref, err


def _own_figure(stats: PassStats, s, x, g, y, gx, params, judged) -> None:
    """Keep the backward's worst error against the derivative of its own saved output."""
    own = own_output_error(s, x, g, y, gx, params)
    if own is None:
        return
    err = np.where(judged.reshape(own.error.shape), own.error, -1.0)
    err = np.where(np.isnan(err), -1.0, err)
    if err.size and err.max() >= 0 and (stats.own_max_ulp is None
                                        or err.max() > stats.own_max_ulp):
        i = int(np.argmax(err))
        stats.own_max_ulp = float(err.flat[i])
        stats.own_max_at = {"x": float(s.values(x).flat[i]),
                            "bound": float(np.broadcast_to(own.bound, err.shape).flat[i])}


def _exact_backward(state: _State, x: torch.Tensor) -> None:
    s, params, fmt = state.s, state.params, state.s.fmt
    xv = s.values(x)
    judged = ~np.isnan(xv)  # a NaN input has no derivative to compare with
    for name, acc in state.grads.items():
        if name.endswith("g=1"):
            g = torch.ones_like(x)
        else:
            seed = hash((state.seed, state.chunk_index)) & 0xFFFFFFFF
            g = _upstream(x.numel(), fmt, s.device, seed)
        gx, y = gradient(s, x, g, params, with_output=True)
        cmp, ref, bad, accepted = judge_gradient(s, x, g, gx, params)
        # gradients a convention accepts are out of the own-output figure, as in the property
        _own_figure(acc.stats, s, x, g, y, gx.detach(), params,
                    judged & ~accepted.reshape(judged.shape))
        err = acc.add_exact(x=x, y=gx, ref=ref, cmp=cmp, bad=bad, accepted=accepted,
                            g=s.values(g), judged=judged)
        state.keep_array(name, np.where(judged, err, np.nan))
        canon = state.canon_grads.get(name)
        if canon is not None:
            gc = gradient(s, x, g, params, fn=s.spec.canonical.fn, inplace=False)
            _bitwise_diff(canon, fmt, x, gx, gc, ref, extra={"g": s.values(g)})


def _exact_chunk(state: _State, x: torch.Tensor) -> None:
    _exact_forward(state, x)
    if state.grads:
        _exact_backward(state, x)


def _specials(s: Subject, params: dict, *, backward: bool) -> list[dict]:
    """inf, -inf, NaN, +0 and -0: the result against the reference, the activation's limits
    and its conventions (under the policy), and the gradient with g = 1."""
    fmt, spec = s.fmt, s.spec
    names = ("+inf", "-inf", "NaN", "+0", "-0")
    x = torch.tensor([math.inf, -math.inf, math.nan, 0.0, -0.0], dtype=torch.float64
                     ).to(fmt.dtype).to(s.device)
    out = []
    try:
        y = s.call(x, params)
    except TargetMisbehaved as exc:
        return [{"name": "all", "ok": False, "reason": str(exc)}]
    cmp, ref, bad, accepted = judge(s, x, y, params)
    yv = s.values(y)
    limits = spec.at_infinity(params) if spec.at_infinity is not None else None
    grad = None
    if backward:
        g = torch.ones_like(x)
        try:
            gx = gradient(s, x, g, params)
            gcmp, gref, gbad, _ = judge_gradient(s, x, g, gx, params)
            grad = (s.values(gx), gref, gbad, gcmp.error)
        except TargetMisbehaved as exc:
            grad = exc
    for i, name in enumerate(names):
        item = {"name": name, "bits": _hex_at(x, i, fmt),
                "y": float(yv[i]), "y_bits": _hex_at(y, i, fmt),
                "expected": float(ref[i]), "ok": not bool(bad[i])}
        notes = []
        if bad[i]:
            notes.append(cmp.reason[i] or "ulp error above bound")
        if accepted[i]:
            notes.append("accepted convention")
        if cmp.excused[i] and not cmp.error[i] <= np.asarray(cmp.bound).reshape(-1)[i]:
            notes.append("flushed subnormal, accepted")
        if limits is not None and name in ("+inf", "-inf"):
            want = limits[1] if name == "+inf" else limits[0]
            item["limit"] = float(want)
            same = (yv[i] == want) or (np.isnan(yv[i]) and np.isnan(want))
            if not same and not accepted[i]:
                item["ok"] = False
                notes.append(f"limit is {want}")
        if grad is not None and name != "NaN":
            if isinstance(grad, Exception):
                item["grad_ok"] = False
                notes.append(str(grad))
            else:
                gxv, gref, gbad, gerr = grad
                item.update({"grad": float(gxv[i]), "grad_expected": float(gref[i]),
                             "grad_ok": not bool(gbad[i])})
                if gbad[i]:
                    notes.append(f"gradient {float(gxv[i])!r}, expected {float(gref[i])!r} "
                                 f"({float(gerr[i]):.3g} ulp)")
            item["ok"] = item["ok"] and item["grad_ok"]
        item["note"] = "; ".join(notes)
        out.append(item)
    return out
