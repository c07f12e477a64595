"""`actverify check` and `actverify report` wall time: idle against loaded, and by worker count.

    .venv/bin/python benchmarks/check_report.py                  # check + one activation's report
    .venv/bin/python benchmarks/check_report.py --check-only     # the check's figures alone
    .venv/bin/python benchmarks/check_report.py --full-report    # also every activation (slow)

Every figure is printed beside its baseline measured in the same run, as a ratio, so that a
run on a shared machine still says something: "loaded" is the same command while one
CPU-bound competitor the script starts itself runs (busy_machine.competitor), and stops after.

1. check: `actverify check torch.special:expit --activation sigmoid` (four dtypes, forward
   and backward, the `check` profile) with its default supervised workers (one per core, at
   most 4) and with `--workers 1`; target: at most 3 s idle on 2 cores.  Each run's
   timeline (ACTVERIFY_TIMELINE, actverify/check.py) breaks the wall time down, from the
   launch of the command: parent ready (its own start-up done, its workers started), plan
   (the first worker has imported torch and the target and planned), first result, done
   (the last result), exit; with the CPU seconds of the command and its workers.
2. report workers: `actverify report --activation sigmoid --dtype float32` with `--workers 1`
   and `--workers 2`, idle and loaded: the speed-up of the pool.
3. with --full-report: `actverify report` of every activation (2,432 property runs) with its
   default workers, idle and loaded; target: at most 60 s idle on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from busy_machine import command, competitor, fmt, measure  # noqa: E402

CHECK = ["check", "torch.special:expit", "--activation", "sigmoid"]
STEPS = ("parent ready", "plan", "first result", "done", "exit", "cpu")


def timed_check(argv: list[str]) -> dict[str, float]:
    """One run of `actverify check` with its timeline: seconds from the launch to each step
    (STEPS), and the CPU seconds of the command and the workers it started."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.time()
    done = subprocess.run([sys.executable, "-m", "actverify", *argv], text=True,
                          env={**env, "ACTVERIFY_TIMELINE": repr(launched)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.time() - launched
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"actverify {' '.join(argv)} exited {done.returncode}: "
                         f"{done.stderr.strip()[-500:]}")
    line = next((x for x in done.stderr.splitlines() if x.startswith("timeline: ")), "")
    steps = {name: float(t) for name, t in re.findall(r"([a-z ]+?) ([0-9.]+) s", line[10:])}
    # The command waits for its workers, and they are its children: RUSAGE_CHILDREN has them.
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {**{k.strip(): v for k, v in steps.items()}, "exit": took, "cpu": cpu}


def check_breakdown(label: str, argv: list[str], repeats: int) -> dict[bool, dict[str, float]]:
    """Medians of each step over `repeats` runs, idle and loaded; printed as they come."""
    medians: dict[bool, dict[str, float]] = {}
    for loaded in (False, True):
        with competitor(loaded):
            runs = [timed_check(argv) for _ in range(repeats)]
        medians[loaded] = {k: statistics.median(r.get(k, float("nan")) for r in runs)
                           for k in STEPS}
        print(f"  {label:<22} "
              f"{'loaded' if loaded else 'idle  '} "
              + ", ".join(f"{k} {medians[loaded][k]:.2f} s" for k in STEPS[:-1])
              + f"; cpu {medians[loaded]['cpu']:.2f} s (exit: {fmt([r['exit'] for r in runs])})",
              flush=True)
    print(f"  {'':<22} loaded/idle: " + ", ".join(
        f"{k} {medians[True][k] / medians[False][k]:.2f}x" for k in STEPS), flush=True)
    return medians


def timed(runs: dict[str, list[str]], repeats: int) -> dict[tuple[str, bool], list[float]]:
    """Median-able wall seconds of each command, idle then loaded (same order both times)."""
    out = {}
    for loaded in (False, True):
        with competitor(loaded):
            for name, argv in runs.items():
                out[name, loaded] = measure(command(argv), repeats)
                print(f"  {name:<22} {'loaded' if loaded else 'idle  '} "
                      f"{fmt(out[name, loaded])}", flush=True)
    return out


def ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(a) / statistics.median(b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--activation", default="sigmoid",
                        help="the activation of the report-workers part (default sigmoid)")
    parser.add_argument("--dtype", default="float32",
                        help="the dtype of the report-workers part (default float32)")
    parser.add_argument("--full-report", action="store_true",
                        help="also time the whole report (minutes per run)")
    parser.add_argument("--check-only", action="store_true",
                        help="only the check's breakdown (default workers and --workers 1)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    import torch

    from actverify.threads import available_cores

    print(f"machine: {available_cores()} cores available, {platform.machine()}, "
          f"torch {torch.__version__}; load average before: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}; {args.repeats} repeats, "
          f"medians (min-max)", flush=True)
    print("check breakdown (seconds from the launch of the command):")
    default = check_breakdown("check", CHECK, args.repeats)
    one = check_breakdown("check --workers 1", [*CHECK, "--workers", "1"], args.repeats)
    for loaded in (False, True):
        print(f"  check exit, 1 worker / default workers, {'loaded' if loaded else 'idle'}: "
              f"{one[loaded]['exit'] / default[loaded]['exit']:5.2f}x")
    print(f"  check idle against its 3 s target: {default[False]['exit'] / 3:5.2f}x", flush=True)
    if args.check_only:
        return 0
    one = ["report", "--activation", args.activation, "--dtype", args.dtype]
    runs = {"report --workers 1": [*one, "--workers", "1"],
            "report --workers 2": [*one, "--workers", "2"]}
    if args.full_report:
        runs["report (all)"] = ["report"]
    t = timed(runs, args.repeats)
    print("ratios:")
    for name in runs:
        print(f"  {name:<22} loaded/idle {ratio(t[name, True], t[name, False]):5.2f}x")
    for loaded in (False, True):
        state = "loaded" if loaded else "idle"
        print(f"  report {args.activation}, 1 worker / 2 workers, {state}: "
              f"{ratio(t['report --workers 1', loaded], t['report --workers 2', loaded]):5.2f}x")
    if args.full_report:
        print(f"  report (all) idle against its 60 s target: "
              f"{statistics.median(t['report (all)', False]) / 60:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
