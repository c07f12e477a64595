"""Entry points: `sweep_elementwise`, `sweep_softmax`, `run_sweep`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from actverify.accuracy import DEFAULT, Policy, policy_named
from actverify.devices import resolve_device
from actverify.dtypes import FloatFormat, float_format
from actverify.errors import UsageError
from actverify.progress import progress as progress_display  # `progress` is an argument
from actverify.properties.base import Subject, TargetMisbehaved
from actverify.spec import get_spec, registry
from actverify.targets import Target, builtin_targets
from actverify.threads import limited as limited_threads
from actverify.threads import resolve as resolve_threads
from actverify.sweep.report import write_report
from actverify.sweep.plan import (CHECKS, EXACT_CHUNK, FAST_CHUNK, KEEP_ARRAYS, _keys_to_x,
                                  param_sets, plan_inputs)
from actverify.sweep.results import SweepResult
from actverify.sweep.accumulate import _PassAcc, _CheckAcc, _not_checked, _State
from actverify.sweep.checks import _is_canonical
from actverify.sweep.exact import _backward_applies, _exact_backward, _exact_chunk, _specials
from actverify.sweep.fused import _VALIDATED, _FastEngine, _validate_fast
from actverify.sweep.softmax import (SOFTMAX_PATTERNS, softmax_rows, _softmax_case,
                                     _softmax_specials)


def _format(fmt: FloatFormat | str | torch.dtype) -> FloatFormat:
    return fmt if isinstance(fmt, FloatFormat) else float_format(fmt)


def _subject(target: Target, fmt: FloatFormat, device: str, policy: Policy | str) -> Subject:
    return Subject(target, fmt, resolve_device(device), policy_named(policy))


def sweep_elementwise(target: Target, *, fmt: FloatFormat | str, device: str = "cpu",
                      policy: Policy | str = DEFAULT, params: dict | None = None,
                      backward: bool = True, bit_range: tuple[int, int] | None = None,
                      stride: int = 1, all_float32: bool = False,
                      engine: Literal["auto", "exact", "fast"] = "auto",
                      use_compile: bool = True, progress: bool | None = None,
                      threads: int | None = None, seed: int = 0,
                      checks: Iterable[str] | None = None) -> SweepResult:
    """Evaluate an element-wise target on every bit pattern of a 16-bit format (or on a range,
    a stride, the CI subset or all of float32) and judge it under `policy`.

    float16/bfloat16: every one of the 65,536 patterns unless `bit_range` / `stride` say
    otherwise.  float32: `bit_range` = (lo, hi) half-open bit patterns with `stride`; with
    neither, the CI subset (every 2^12-th pattern plus +-2^12 around each threshold); with
    `all_float32=True`, all 2^32 (forward only is what that mode is meant for; the backward
    uses the exact engine, about 20x slower).  `engine="auto"` uses the exact engine (the
    library's `compare` on every input) for up to 2^24 inputs, the fused pass above.
    `checks`: which whole-space checks run besides the accuracy passes, a subset of
    ("monotonic", "point_symmetry", "canonical"); None: all that apply.
    """
    t0 = time.perf_counter()
    fmt = _format(fmt)
    spec = target.spec
    if not spec.elementwise:
        raise UsageError(f"{spec.name} is not element-wise; use sweep_softmax")
    params = {**spec.default_params(), **(params or {})}
    s = _subject(target, fmt, device, policy)
    keyset = plan_inputs(fmt, spec=spec, bit_range=bit_range, stride=stride,
                         all_float32=all_float32)
    result = SweepResult(target=target.name, activation=spec.name, dtype=fmt.name,
                         device=s.device, policy=s.policy.name, params=dict(params),
                         coverage=keyset.description, n_inputs=keyset.count)
    if not target.supports(fmt, s.device):
        result.skipped = f"the target declares no support for {fmt.name} on {s.device}"
        return result
    if not target.accepts(params, 1):
        result.skipped = f"the target declares no support for parameters {params}"
        return result
    why_no_backward = _backward_applies(target, params) if backward else "not requested"
    grads = {}
    if why_no_backward is None:
        grads = {"backward g=random": _PassAcc("backward g=random", fmt),
                 "backward g=1": _PassAcc("backward g=1", fmt)}
    wanted = set(CHECKS if checks is None else checks)
    if wanted - set(CHECKS):
        raise UsageError(f"unknown checks {sorted(wanted - set(CHECKS))}; use {CHECKS}")
    canonical = not _is_canonical(target) and "canonical" in wanted
    state = _State(
        s=s, params=params, backward=bool(grads), seed=seed,
        forward=_PassAcc("forward", fmt), grads=grads,
        mono=_CheckAcc("monotonic") if spec.is_monotone(params) and "monotonic" in wanted
        else None,
        sym=_CheckAcc("point_symmetry") if spec.point_symmetry is not None
        and "point_symmetry" in wanted else None,
        canon=_CheckAcc("differs_from_canonical", counts_for_ok=False) if canonical else None,
        canon_grads={name: _CheckAcc(f"{name} differs_from_canonical", counts_for_ok=False)
                     for name in grads} if canonical else {},
        keep=keyset.count <= KEEP_ARRAYS)
    n = keyset.count
    if engine == "auto":
        engine = "fast" if (fmt.name == "float32" and n > (1 << 24)) else "exact"
    fast = None
    if engine == "fast":
        if fmt.name != "float32" or spec.fast_reference is None or callable(
                spec.bound(fmt).ulps):
            result.notes.append("fused pass not available here; exact engine used")
        else:
            state.keep = False
            # a mirrored input set with the symmetry check: pairs of chunks, each input
            # through the kernel once (its f(-x) is the mirror input's own f(x))
            fast = _FastEngine(state, chunk=FAST_CHUNK, use_compile=use_compile,
                               paired=keyset.mirrored())
            if fast.key not in _VALIDATED or not fast.compiled:
                _VALIDATED[fast.key] = _validate_fast(fast, state)
            problem = _VALIDATED[fast.key]
            if problem:
                result.notes.append(f"fused pass disagreed with the exact engine on the "
                                    f"validation inputs ({problem}); exact engine used")
                state.keep = keyset.count <= KEEP_ARRAYS
                fast = None
    result.engine = fast.engine if fast is not None else "exact"
    chunk = FAST_CHUNK if fast is not None else EXACT_CHUNK
    show = all_float32 if progress is None else progress
    try:
        with limited_threads(resolve_threads(threads=threads, work="sweep")), \
                progress_display(total=n, label=f"{target.name} {fmt.name}", enabled=show,
                                 unit="values", transient=False) as bar:
            paired = fast is not None and fast.paired
            for neg, pos in (keyset.mirror_chunks(chunk) if paired else ()):
                x = fast.run_pair(neg, pos)
                if state.grads:
                    _exact_backward(state, x)
                state.chunk_index += 1
                bar(2 * pos[2])
            for start, step, count, keys in (() if paired else keyset.chunks(chunk)):
                if fast is not None:
                    x = fast.run_chunk(start, step, count, keys)[:count]
                    if state.grads:
                        _exact_backward(state, x)
                else:
                    if keys is None:
                        keys = start + step * torch.arange(count, dtype=torch.int64)
                    x = _keys_to_x(keys, fmt, s.device)
                    if state.keep:
                        state.keep_array("key", keys.numpy())
                        state.keep_array("x", s.values(x))
                    _exact_chunk(state, x)
                state.chunk_index += 1
                bar(count)
            if fast is not None:
                fast.finish()
    except TargetMisbehaved as exc:
        result.error = exc.message
    result.passes["forward"] = state.forward.finish()
    for name, acc in state.grads.items():
        result.passes[name] = acc.finish()
    if why_no_backward is not None and backward:
        result.notes.append(f"backward not checked: {why_no_backward}")
    result.checks["monotonic"] = state.mono.finish() if state.mono else _not_checked(
        "monotonic", f"{spec.name} is not monotone for {params}" if not spec.is_monotone(params)
        else "not requested")
    result.checks["point_symmetry"] = state.sym.finish() if state.sym else _not_checked(
        "point_symmetry", f"{spec.name} states no point symmetry"
        if spec.point_symmetry is None else "not requested")
    result.checks["differs_from_canonical"] = state.canon.finish() if state.canon else _not_checked(
        "differs_from_canonical", "the target is PyTorch's canonical kernel itself"
        if _is_canonical(target) else "not requested", counts_for_ok=False)
    for name, acc in state.canon_grads.items():
        result.checks[f"{name} differs_from_canonical"] = acc.finish()
    if result.error is None:
        try:
            result.specials = _specials(s, params, backward=bool(state.grads))
        except TargetMisbehaved as exc:
            result.error = exc.message
    if state.keep and state.arrays:
        result.arrays = {k: np.concatenate(v) for k, v in state.arrays.items()}
    if state.chunk_points:
        pts = np.asarray(sorted(state.chunk_points), dtype=np.float64)  # in value order
        result.arrays.update({"chunk_key": pts[:, 0].astype(np.int64), "chunk_x": pts[:, 1],
                              "chunk_max": pts[:, 2]})
    result.elapsed_s = time.perf_counter() - t0
    return result


def sweep_softmax(target: Target, *, fmt: FloatFormat | str, device: str = "cpu",
                  policy: Policy | str = DEFAULT, row_length: int = 16,
                  patterns: Sequence[str] = tuple(SOFTMAX_PATTERNS),
                  dims: Sequence[int] = (-1, 0), backward: bool = True,
                  seed: int = 0) -> SweepResult:
    """Softmax over rows built from every value of a 16-bit format (see SOFTMAX_PATTERNS),
    along the last dim (rows of a (R, n) tensor) and along dim 0 (the transposed (n, R)
    tensor, PyTorch's other code path).  Every element is judged by the library's `compare`
    with the spec's per-element bound; the backward with a random upstream gradient by
    `tolerance`; within each row a larger logit must not get a smaller probability; and each
    row must sum to one within the sum of its elements' bounds."""
    t0 = time.perf_counter()
    fmt = _format(fmt)
    spec = target.spec
    if spec.elementwise:
        raise UsageError(f"{spec.name} is element-wise; sweep_softmax sweeps rows of an "
                         "activation over a dim (use sweep_elementwise)")
    s = _subject(target, fmt, device, policy)
    n_total = (1 << fmt.bits) * row_length
    result = SweepResult(
        target=target.name, activation=spec.name, dtype=fmt.name, device=s.device,
        policy=s.policy.name, params={"row_length": row_length, "dims": list(dims)},
        coverage=(f"rows of {row_length} built from all {1 << fmt.bits:,} bit patterns, "
                  f"patterns {', '.join(patterns)}, dims {', '.join(map(str, dims))}"),
        n_inputs=n_total * len(patterns) * len(dims))
    if fmt.bits != 16:
        result.skipped = "softmax sweeps cover the 16-bit formats"
        return result
    if not target.supports(fmt, s.device):
        result.skipped = f"the target declares no support for {fmt.name} on {s.device}"
        return result
    canonical = not _is_canonical(target)
    try:
        for pattern in patterns:
            rows, v, col = softmax_rows(fmt, pattern, row_length, seed=seed)
            for dim in dims:
                params = {"dim": dim}
                if not target.accepts(params, 2):
                    result.notes.append(f"{pattern} dim {dim}: the target declares no "
                                        "support for this dim")
                    continue
                _softmax_case(result, s, rows, v, col, pattern, dim, canonical=canonical,
                              backward=backward and _backward_applies(target, params) is None,
                              seed=seed)
    except TargetMisbehaved as exc:
        result.error = exc.message
    if result.error is None:
        result.specials = _softmax_specials(s)
    result.elapsed_s = time.perf_counter() - t0
    return result


def builtin_sweep_targets(activations: Iterable[str] | None = None) -> list[Target]:
    """PyTorch's canonical entry point of each activation (all of them by default)."""
    names = list(activations) if activations else list(registry())
    return [builtin_targets(get_spec(name))[0] for name in names]


def run_sweep(*, targets: Sequence[Target], dtypes: Sequence[str] = ("float16", "bfloat16"),
              device: str = "cpu", bit_range: tuple[int, int] | None = None,
              out_dir: str | Path | None = None, all_float32: bool = False,
              policy: Policy | str = DEFAULT, backward: bool | None = None, stride: int = 1,
              params: dict | None = None, report_format: Literal["html", "md"] = "html",
              progress: bool | None = None, echo: Callable[[str], None] | None = None
              ) -> list[SweepResult]:
    """Sweep every target on every dtype; write the report (HTML or Markdown + JSON) when
    `out_dir` is given; return the results (the CLI exits 0 when all are `.ok`).

    `backward=None`: checked, except in the all-float32 mode (forward only there).  Softmax
    targets get `sweep_softmax` on 16-bit formats; float32 softmax is reported as not checked.
    """
    policy = policy_named(policy)
    results = []
    for target in targets:
        for dtype in dtypes:
            fmt = _format(dtype)
            bw = (not (all_float32 and fmt.name == "float32")) if backward is None else backward
            if target.spec.elementwise and fmt.bits == 64:
                found = [SweepResult(target=target.name, activation=target.activation,
                                     dtype=fmt.name, device=device, policy=policy.name,
                                     params=dict(params or {}), coverage="", n_inputs=0,
                                     skipped="float64 cannot be swept; use the property suite")]
            elif target.spec.elementwise:
                names = {p.name for p in target.spec.params}  # each activation its own
                own = {k: v for k, v in (params or {}).items() if k in names}
                # 16-bit sweeps cost little: every mode a parameter names (param_sets);
                # float32 sweeps keep the defaults
                sets = (param_sets(target.spec, given=own) if fmt.bits == 16
                        else [{**target.spec.default_params(), **own}])
                found = [sweep_elementwise(target, fmt=fmt, device=device, policy=policy,
                                           params=ps, backward=bw, bit_range=bit_range,
                                           stride=stride, all_float32=all_float32,
                                           progress=progress)
                         for ps in sets if ps == sets[0] or target.accepts(ps, 1)]
            else:
                found = [sweep_softmax(target, fmt=fmt, device=device, policy=policy,
                                       backward=bw)]
            for r in found:
                if echo is not None:
                    echo(r.summary())
                results.append(r)
    if out_dir is not None:
        write_report(results, out_dir, fmt=report_format)
    return results
