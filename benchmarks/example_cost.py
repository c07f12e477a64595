"""CPU seconds per property run and per example, for a fixed derandomized plan.

What is measured
----------------
The work `actverify report` does, run in this process with one worker and one intra-op
thread: every builtin entry point of the chosen activations (default: sigmoid and GELU), every
chosen dtype (default: all four), every applicable property, under the `report` profile (20
examples per run, derandomized, so every run of this script draws the same examples from the
same code).  Each property run is timed with `time.process_time()` (CPU of this process, so
other work on a shared machine inflates it far less than wall time), from the call of
`run_property` to its return: drawing, the kernel, the references, the verdicts and
Hypothesis's own overhead; importing torch and actverify is outside it.

It prints, per activation and dtype and in total: runs, examples, CPU-s per run and CPU-ms
per example, and of those the CPU-ms per example spent in the property bodies (the check a
property makes of one drawn case: the kernel calls, the references, the verdicts; the rest is
drawing the example and Hypothesis's engine); then the properties that cost the most.  Compare a run of this script on two
commits of actverify on the same machine: the ratio of their CPU-ms per example is the
figure (the examples differ where the strategies' construction differs, but their
distribution is the same).  Every run must pass (a violation or an error is printed and
makes the exit status 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from collections import defaultdict

import hypothesis
import torch

from actverify.dtypes import DTYPE_NAMES
from actverify.plan import plan_work
from actverify.profiles import profile_settings
from actverify.runner import run_property
from actverify.targets import all_builtin_targets
from actverify.threads import limited, resolve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--activation", action="append", metavar="NAME",
                        help="activation to run (repeatable; default: sigmoid and gelu)")
    parser.add_argument("--dtype", action="append", choices=DTYPE_NAMES,
                        help="dtype to run (repeatable; default: all four)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the plan this many times; medians per run are printed")
    parser.add_argument("--top", type=int, default=12, help="costliest properties to list")
    args = parser.parse_args()
    activations = args.activation or ["sigmoid", "gelu"]
    dtypes = args.dtype or list(DTYPE_NAMES)

    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}, "
          f"hypothesis {hypothesis.__version__}, Python {platform.python_version()}")
    print(f"plan: activations {', '.join(activations)}; dtypes {', '.join(dtypes)}; "
          f"profile report; load average at start {os.getloadavg()[0]:.2f}")
    work = plan_work(all_builtin_targets(activations), dtypes=dtypes, devices=["cpu"])
    settings = profile_settings("report")
    # body[(activation, dtype, property)] -> CPU-s in the property's check, over all repeats
    body: dict[tuple[str, str, str], float] = defaultdict(float)

    def timed(prop, key):
        def test(subject, case):
            start = time.process_time()
            try:
                return prop.test(subject, case)
            finally:
                body[key] += time.process_time() - start
        return dataclasses.replace(prop, test=test)

    # seconds[(activation, dtype, property)] -> CPU-s of each repeat; examples per run
    seconds: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    examples: dict[tuple[str, str, str], int] = defaultdict(int)
    runs: dict[tuple[str, str, str], int] = defaultdict(int)
    bad = 0
    with limited(resolve(work="properties")):
        for repeat in range(args.repeats):
            per_repeat: dict[tuple[str, str, str], float] = defaultdict(float)
            for prop, subject in work:
                key = (subject.target.activation, subject.fmt.name, prop.name)
                start = time.process_time()
                outcome = run_property(timed(prop, key), subject, settings=settings)
                per_repeat[key] += time.process_time() - start
                if repeat == 0:
                    examples[key] += outcome.examples
                    runs[key] += 1
                if outcome.status not in ("passed", "not_checked") and repeat == 0:
                    bad += 1
                    print(f"  {outcome.status}: {prop.name} {subject.target.name} "
                          f"{subject.fmt.name}: {outcome.reason or outcome.failure}",
                          file=sys.stderr)
            for key, value in per_repeat.items():
                seconds[key].append(value)
    cpu = {key: statistics.median(v) for key, v in seconds.items()}

    def row(label: str, keys: list[tuple[str, str, str]]) -> None:
        n_runs, n_ex = sum(runs[k] for k in keys), sum(examples[k] for k in keys)
        total = sum(cpu[k] for k in keys)
        in_body = sum(body[k] for k in keys) / args.repeats  # a mean over the repeats
        print(f"{label:<28} {n_runs:>6} {n_ex:>8} {total:>9.2f} {total / max(n_runs, 1):>9.3f} "
              f"{1000 * total / max(n_ex, 1):>8.2f} {1000 * in_body / max(n_ex, 1):>8.2f}")

    print(f"\n{'':<28} {'runs':>6} {'examples':>8} {'CPU-s':>9} {'s/run':>9} {'ms/ex':>8} "
          f"{'body':>8}")
    for act in activations:
        for dtype in dtypes:
            row(f"{act} {dtype}", [k for k in cpu if k[:2] == (act, dtype)])
        row(f"{act} (all dtypes)", [k for k in cpu if k[0] == act])
    row("total", list(cpu))
    by_prop: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for key in cpu:
        by_prop[key[2]].append(key)
    print(f"\ncostliest properties (CPU-s summed over activations and dtypes; median of "
          f"{args.repeats} repeat(s)):")
    ranked = sorted(by_prop.items(), key=lambda kv: -sum(cpu[k] for k in kv[1]))
    for name, keys in ranked[:args.top]:
        row(f"  {name}", keys)
    total, n_ex = sum(cpu.values()), sum(examples.values())
    in_body = sum(body.values()) / args.repeats
    print(f"\nexample cost: {1000 * total / max(n_ex, 1):.2f} CPU-ms per example "
          f"({1000 * in_body / max(n_ex, 1):.2f} in the property bodies), "
          f"{total / max(sum(runs.values()), 1):.3f} CPU-s per run, {total:.1f} CPU-s in all")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
