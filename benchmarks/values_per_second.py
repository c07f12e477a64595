"""Throughput of tensor-valued Hypothesis examples against one scalar per example.

What is measured
----------------
The ULP accuracy of an activation in float32 on the CPU (torch.sigmoid, whose bound is 3 ulp,
and torch.relu, which must be exact), checked two ways with the same Hypothesis settings
(`--examples` examples, database=None, derandomize=True, deadline=None, and the health checks
the suite relaxes):

* tensor: actverify's own machinery, `run_property(all_properties()["accuracy"], Subject(...))`.
  One example is a whole tensor (0-d to more than 65,536 elements) and the check is vectorised
  (reference in float64, ULP error, bound).  The figures come from the returned `Outcome`:
  `.examples`, `.values` (elements checked) and `.seconds`.
* scalar: a plain `@given(st.floats(width=32, allow_nan=False))` test that puts one value in a
  1-element tensor, calls the activation, computes the spec's reference and the ULP error with
  `actverify.accuracy.ulp_error`, and asserts it is within the bound.

Both are timed from the call of the Hypothesis test to its return, so both include
Hypothesis's own per-run and per-example overhead, which is the cost a user pays.

Why
---
actverify draws whole tensors because a Hypothesis example costs far more than checking one
more value once the example exists; this script puts a number on that claim (the target is at
least 50x more values per second).  Examples per second are printed as well: a tensor example
is slower than a scalar one, and the gain comes only from the values each example carries.

Reading the figures
-------------------
With derandomize=True every repeat draws the same examples, so the repeats measure timing
noise only, and the number of values checked is a fixed property of the (activation,
`--examples`) pair.  The shapes Hypothesis draws decide it: one example in ten is drawn from
the large shapes, and sigmoid's accuracy check steers the search (`hypothesis.target`) toward
examples with large errors, which favours large tensors, while relu's error is always 0.
Few examples can therefore check few values; compare "values/example" before comparing rates.
"""

from __future__ import annotations

import argparse
import operator
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import hypothesis
import numpy as np
import torch
from hypothesis import given, settings as Settings, strategies as st

from actverify.accuracy import (DEFAULT, reference_dtype, reference_uncertainty, to_reference,
                                ulp_error)
from actverify.dtypes import FloatFormat, float_format
from actverify.profiles import PROFILES
from actverify.properties import Subject, all_properties
from actverify.runner import run_property
from actverify.spec import get_spec
from actverify.targets import Target, builtin_targets

ACTIVATIONS = ("sigmoid", "relu")
DTYPE = "float32"
TARGET_RATIO = 50.0


@dataclass(frozen=True)
class Run:
    """One timed Hypothesis run: how many examples and values it checked, in how long."""

    examples: int
    values: int
    seconds: float

    @property
    def values_per_second(self) -> float:
        return self.values / self.seconds

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds


def hypothesis_settings(examples: int) -> Settings:
    """The settings both measurements share."""
    return Settings(max_examples=examples, database=None, derandomize=True, deadline=None,
                    suppress_health_check=PROFILES["report"]["suppress_health_check"])


def torch_target(activation: str) -> Target:
    """PyTorch's `torch.<activation>` entry point, as actverify's target."""
    name = f"torch.{activation}"
    return next(t for t in builtin_targets(get_spec(activation)) if t.name == name)


def tensor_run(activation: str, examples: int) -> Run:
    """The accuracy property through actverify's runner: one tensor per example."""
    subject = Subject(torch_target(activation), float_format(DTYPE), "cpu", DEFAULT)
    outcome = run_property(all_properties()["accuracy"], subject,
                           settings=hypothesis_settings(examples))
    if outcome.status != "passed":
        raise RuntimeError(f"tensor-valued accuracy of torch.{activation} did not pass "
                           f"({outcome.status}): {outcome.reason or outcome.failure}")
    return Run(outcome.examples, outcome.values, outcome.seconds)


def scalar_test(activation: str, examples: int, counter: list[int]) -> Callable[[], None]:
    """A plain one-value-per-example Hypothesis test of the same property.

    The verdict is the default policy's for one element: ULP error within the spec's bound
    plus the reference's own uncertainty, and a result flushed to zero accepted where the true
    value is subnormal (as `actverify.accuracy.compare` does).
    """
    fmt: FloatFormat = float_format(DTYPE)
    spec = get_spec(activation)
    fn: Callable[[torch.Tensor], torch.Tensor] = getattr(torch, activation)

    @hypothesis_settings(examples)
    @given(st.floats(width=32, allow_nan=False))
    def test(value: float) -> None:
        counter[0] += 1
        x = torch.tensor([value], dtype=fmt.dtype)
        y = fn(x)
        x_ref = to_reference(x, fmt)
        reference = np.asarray(spec.reference(x_ref), dtype=reference_dtype(fmt))
        error = float(ulp_error(y, reference, fmt)[0])
        bound = float(spec.bound(fmt).evaluate(x_ref, {}, fmt)) + reference_uncertainty(fmt)
        flushed = DEFAULT.allow_flush and y.item() == 0.0 and abs(reference[0]) < fmt.tiny
        assert error <= bound or flushed, (
            f"{activation}({value!r}) = {y.item()!r}, true value {reference[0]!r}: "
            f"{error:.3g} ulp > {bound:.3g}")

    return test


def scalar_run(activation: str, examples: int) -> Run:
    counter = [0]
    test = scalar_test(activation, examples, counter)
    start = time.perf_counter()
    test()
    seconds = time.perf_counter() - start
    return Run(counter[0], counter[0], seconds)


VALUES_PER_SECOND: Callable[[Run], float] = operator.attrgetter("values_per_second")
EXAMPLES_PER_SECOND: Callable[[Run], float] = operator.attrgetter("examples_per_second")


def median(runs: list[Run], rate: Callable[[Run], float]) -> float:
    return statistics.median(rate(r) for r in runs)


HEADER = (f"  {'':<7}{'examples':>8} {'values':>10} {'values/ex':>10} {'median s':>9} "
          f"{'values/s':>11} {'(min-max)':<21} {'examples/s':>10}")


def row(label: str, runs: list[Run]) -> str:
    """One table row: examples and values per run, median time and rates, spread of values/s."""
    examples = {r.examples for r in runs}
    values = {r.values for r in runs}
    if len(examples) > 1 or len(values) > 1:  # derandomize=True should make every run alike
        raise RuntimeError(f"{label} runs drew different examples: {examples}, {values}")
    n, v = examples.pop(), values.pop()
    vps = [r.values_per_second for r in runs]
    spread = f"({min(vps):,.0f}-{max(vps):,.0f})"
    return (f"  {label:<7}{n:>8} {v:>10,} {v / n:>10,.1f} "
            f"{statistics.median(r.seconds for r in runs):>9.3f} "
            f"{median(runs, VALUES_PER_SECOND):>11,.0f} {spread:<21} "
            f"{median(runs, EXAMPLES_PER_SECOND):>10,.1f}")


def machine_facts() -> str:
    return (f"cores (os.cpu_count): {os.cpu_count()}  torch {torch.__version__}  "
            f"torch.get_num_threads: {torch.get_num_threads()}  "
            f"hypothesis {hypothesis.__version__}  python {platform.python_version()}  "
            f"{platform.machine()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100,
                        help="Hypothesis max_examples for every run (default 100, "
                             "Hypothesis's own default)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs of each measurement; medians are reported (default 5)")
    args = parser.parse_args(argv)
    if args.examples < 1 or args.repeats < 1:
        parser.error("--examples and --repeats must be at least 1")

    print(machine_facts())
    print(f"accuracy of torch.<activation>, {DTYPE}, cpu, default policy; "
          f"{args.examples} examples per run, {args.repeats} repeats, database=None, "
          "derandomize=True, deadline=None")
    below_target = []
    for activation in ACTIVATIONS:
        tensor_runs: list[Run] = []
        scalar_runs: list[Run] = []
        for _ in range(args.repeats):  # interleaved, so drift affects both alike
            tensor_runs.append(tensor_run(activation, args.examples))
            scalar_runs.append(scalar_run(activation, args.examples))
        ratio = (median(tensor_runs, VALUES_PER_SECOND)
                 / median(scalar_runs, VALUES_PER_SECOND))
        example_ratio = (median(tensor_runs, EXAMPLES_PER_SECOND)
                         / median(scalar_runs, EXAMPLES_PER_SECOND))
        verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
        print(f"torch.{activation}")
        print(HEADER)
        print(row("tensor", tensor_runs))
        print(row("scalar", scalar_runs))
        print(f"  tensor/scalar: values/s {ratio:,.1f}x ({verdict} the {TARGET_RATIO:g}x "
              f"target), examples/s {example_ratio:.3f}x")
        if ratio < TARGET_RATIO:
            below_target.append(activation)
    if below_target:
        print(f"below the {TARGET_RATIO:g}x target: {', '.join(below_target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
