"""`actverify isa`: PyTorch's CPU kernels under each instruction-set capability, compared.

PyTorch compiles each CPU kernel several times (ATen's `default` scalar build, `avx2`,
`avx512` on x86) and picks one per process at start-up; `ATEN_CPU_CAPABILITY` lowers the
choice.  The builds are different implementations of the same function (vectorised
exp/tanh approximations against libm, fused multiply-adds, other reduction orders), so
they may round differently.  This module runs each activation's canonical form, forward
and backward, in one child process per capability the machine supports (the stand-in's
machinery, actverify/standin.py) on the same inputs, and reports per capability: how many
results differ in their bits from the capability PyTorch picks by default, the largest
difference in ulps of the true value, each capability's own worst error, and whether the
difference stays within the accuracy model (two bounds apart at most, as for
`cross_device`; bit for bit for ReLU, leaky ReLU and step).

Inputs: every bit pattern for float16 and bfloat16; for float32 and float64 2^20 random
bit patterns, every value within 64 ulps of the activation's thresholds, special values
and a grid over [-20, 20].  Softmax: rows of 1031 normal values at scales 2^-4 to 2^8.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from actverify.accuracy import DEFAULT, compare, ulp
from actverify.devices import check_capability, cpu_capabilities, current_capability
from actverify.dtypes import DTYPE_NAMES, FloatFormat, float_format
from actverify.judgement import same_bits
from actverify.properties.base import Subject
from actverify.spec import ActivationSpec, get_spec, registry
from actverify.strategies import neighbourhood, special_values
from actverify.targets import Target, builtin_targets

SOFTMAX_ROW = 1031  # odd: vector body and scalar tail in every row


@dataclass
class CapabilityFigures:
    """One capability's results on one pass, against the baseline capability's."""

    capability: str
    # Its own worst error against the true value (forward only: a backward's error at
    # conventions such as relu'(0) = 0 or at saturation is the property suite's business).
    max_error_ulp: float | None
    max_error_x: float | None
    differ: int = 0  # inputs whose result bits differ from the baseline's
    max_gap_ulp: float = 0.0  # largest |this - baseline| in ulps of the true value
    beyond: int = 0  # differences outside the accuracy model
    example: dict = field(default_factory=dict)  # the input of the largest gap, both results


@dataclass
class PassResult:
    activation: str
    dtype: str
    direction: str  # forward | backward
    inputs: str
    n: int
    baseline: str
    figures: list[CapabilityFigures]
    note: str = ""

    @property
    def ok(self) -> bool:
        return all(f.beyond == 0 for f in self.figures)


def _inputs(spec: ActivationSpec, fmt: FloatFormat, random_inputs: int
            ) -> tuple[torch.Tensor, str]:
    """The inputs of one (activation, dtype), and how they were chosen."""
    if not spec.elementwise:
        g = torch.Generator().manual_seed(0)
        scales = 2.0 ** torch.arange(-4, 9, dtype=torch.float64)
        rows = torch.randn(len(scales) * 8, SOFTMAX_ROW, generator=g, dtype=torch.float64)
        rows = rows * scales.repeat_interleave(8)[:, None]
        return rows.to(fmt.dtype), f"{rows.shape[0]} rows of {SOFTMAX_ROW} normal values " \
                                   f"at scales 2^-4 to 2^8"
    if fmt.bits == 16:
        return fmt.from_bits(torch.arange(1 << 16)), "all 65,536 bit patterns"
    g = torch.Generator().manual_seed(0)
    if fmt.bits == 64:
        bits = ((torch.randint(0, 1 << 32, (random_inputs,), generator=g) << 32)
                | torch.randint(0, 1 << 32, (random_inputs,), generator=g))
    else:
        bits = torch.randint(0, 1 << 32, (random_inputs,), generator=g)
    parts = [fmt.from_bits(bits),
             torch.tensor(neighbourhood(fmt, spec.thresholds(fmt), ulps=64), dtype=torch.float64),
             torch.tensor(special_values(fmt), dtype=torch.float64),
             torch.linspace(-20, 20, 1 << 16, dtype=torch.float64)]
    x = torch.cat([p.to(fmt.dtype) for p in parts])
    return x, (f"{x.numel():,} values: {random_inputs:,} random bit patterns, 64 ulps around "
               "each threshold, special values, a grid over [-20, 20]")


def _upstream(x: torch.Tensor, elementwise: bool) -> torch.Tensor:
    """g = 1 for element-wise activations (the derivative itself), else seeded normals."""
    if elementwise:
        return torch.ones_like(x)
    g = torch.Generator().manual_seed(1)
    return torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)


def _run(capability: str, target: Target, op: str, x: torch.Tensor, g: torch.Tensor | None,
         params: dict) -> torch.Tensor:
    from actverify.standin import child

    request = dict(op=op, ref=target.source, activation=target.activation, x=x, params=params,
                   private=False)
    if op == "call":
        return child(capability).request(**request, grad=False)["y"]
    return child(capability).request(**request, gy=g)["gx"]


def _figures(s: Subject, capability: str, y: torch.Tensor, base: torch.Tensor, x: torch.Tensor,
             ref: np.ndarray, bound: np.ndarray, *, own_error: bool) -> CapabilityFigures:
    fmt = s.fmt
    xv = s.values(x).ravel()
    worst = None
    if own_error:
        cmp = compare(y, ref, fmt=fmt, bound=bound, policy=s.policy, zero_sign_specified=False)
        worst = cmp.counted_max()
    figures = CapabilityFigures(capability, None if worst is None else worst[0],
                                None if worst is None else float(xv[worst[1]]))
    same = same_bits(y, base).ravel()
    figures.differ = int((~same).sum())
    if not figures.differ:
        return figures
    a, b = s.values(y).ravel(), s.values(base).ravel()
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.where(same, 0.0, np.abs(a - b) / ulp(ref.ravel(), fmt))
    gap = np.nan_to_num(gap, nan=np.inf)
    if s.spec.same_bits_on_all_devices:
        beyond = ~same
    else:
        with np.errstate(over="ignore"):  # an unbounded allowance is no limit at all
            beyond = ~same & ~(gap <= 2 * bound.ravel())
        zero = (a == 0) | (b == 0)  # a flushed subnormal on one side (the default policy)
        beyond &= ~(zero & (np.abs(ref.ravel()) < fmt.tiny))
    figures.beyond = int(beyond.sum())
    i = int(np.argmax(np.where(same, -1.0, gap)))
    figures.max_gap_ulp = float(gap[i])
    figures.example = {"x": float(xv[i]), "x_bits": fmt.hex(float(xv[i])),
                       "this": float(a[i]), "this_bits": fmt.hex(float(a[i])),
                       "baseline": float(b[i]), "baseline_bits": fmt.hex(float(b[i])),
                       "true": float(ref.ravel()[i]), "index": i}
    return figures


def _pass(s: Subject, direction: str, how: str, x: torch.Tensor, outputs: dict,
          baseline: str, ref: np.ndarray, bound: np.ndarray) -> PassResult:
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), tuple(x.shape))
    return PassResult(s.spec.name, s.fmt.name, direction, how, x.numel(), baseline,
                      [_figures(s, c, y, outputs[baseline], x, ref, bound,
                                own_error=direction == "forward")
                       for c, y in outputs.items()])


def compare_capabilities(*, activations: Iterable[str] | None = None,
                         dtypes: Iterable[str] | None = None,
                         capabilities: Iterable[str] | None = None,
                         backward: bool = True, random_inputs: int = 1 << 20
                         ) -> list[PassResult]:
    """Every (activation, dtype, direction) under every capability; see the module doc.

    The baseline, always included, is the capability PyTorch picks by default on this
    machine (the highest)."""
    from actverify.properties.derivatives import tolerance
    from actverify.standin import child

    supported = cpu_capabilities()
    baseline = supported[-1]
    caps = list(dict.fromkeys([*(check_capability(c) for c in capabilities), baseline])) \
        if capabilities else list(supported)
    for c in caps:  # start every child first: their start-ups overlap
        child(c)
    results = []
    for name in activations or registry():
        spec = get_spec(name)
        target = builtin_targets(spec)[0]
        params = spec.default_params()
        for dtype in dtypes or DTYPE_NAMES:
            s = Subject(target, float_format(dtype), "cpu", DEFAULT)
            x, how = _inputs(spec, s.fmt, random_inputs)
            outputs = {c: _run(c, target, "call", x, None, params) for c in caps}
            results.append(_pass(s, "forward", how, x, outputs, baseline,
                                 s.reference(x, params), s.bound(x, params)))
            if not backward:
                continue
            if spec.derivative is None:
                results.append(PassResult(name, s.fmt.name, "backward", how, 0, baseline, [],
                                          note="no gradient (PyTorch's backward raises)"))
                continue
            g = _upstream(x, spec.elementwise)
            grads = {c: _run(c, target, "vjp", x, g, params) for c in caps}
            ref, bound = tolerance(s, x, g, params)
            results.append(_pass(s, "backward", how + (", g = 1" if spec.elementwise else
                                                       ", g seeded normal"),
                                 x, grads, baseline, ref, bound))
    return results


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if math.isfinite(v) else str(v)


def markdown(results: list[PassResult]) -> str:
    """The comparison as a Markdown table: one row per (pass, capability other than the
    baseline), plus each capability's own worst error."""
    lines = ["| activation | dtype | pass | capability | differing results | largest gap "
             "(ulp) | beyond the model | own worst error (ulp) | baseline's | input of the "
             "largest gap |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if not r.figures:
            lines.append(f"| {r.activation} | {r.dtype} | {r.direction} | - | - | - | - | - "
                         f"| - | {r.note} |")
            continue
        base = next(f for f in r.figures if f.capability == r.baseline)
        for f in r.figures:
            if f.capability == r.baseline:
                continue
            ex = f.example
            where = (f"x = {ex['x']:.9g} [{ex['x_bits']}]: {ex['this_bits']} vs "
                     f"{ex['baseline_bits']}" if ex else "-")
            lines.append(f"| {r.activation} | {r.dtype} | {r.direction} | {f.capability} vs "
                         f"{r.baseline} | {f.differ:,} of {r.n:,} | {_num(f.max_gap_ulp)} | "
                         f"{f.beyond:,} | {_num(f.max_error_ulp)} | "
                         f"{_num(base.max_error_ulp)} | {where} |")
    return "\n".join(lines) + "\n"


def run_isa(*, activations: Iterable[str] | None = None, dtypes: Iterable[str] | None = None,
            capabilities: Iterable[str] | None = None, json_path: str | None = None,
            backward: bool = True) -> int:
    """The `actverify isa` command: print the table; exit 1 if a difference leaves the
    accuracy model."""
    results = compare_capabilities(activations=activations, dtypes=dtypes,
                                   capabilities=capabilities, backward=backward)
    print(f"ATen CPU capabilities on this machine: {', '.join(cpu_capabilities())} "
          f"(this process: {current_capability()}); baseline: "
          f"{results[0].baseline if results else '-'}")
    print(markdown(results), end="")
    if json_path:
        Path(json_path).write_text(json.dumps([{**asdict(r), "ok": r.ok} for r in results],
                                              indent=1, default=str))
    held = all(r.ok for r in results)
    print("the capabilities agree within the accuracy model" if held else
          "some capabilities differ beyond the accuracy model")
    return 0 if held else 1
