"""`actverify check` and `actverify report` wall time: idle against loaded, and by worker count.

    .venv/bin/python benchmarks/check_report.py                  # check + one activation's report
    .venv/bin/python benchmarks/check_report.py --full-report    # also every activation (slow)

Every figure is printed beside its baseline measured in the same run, as a ratio, so that a
run on a shared machine still says something: "loaded" is the same command while one
CPU-bound competitor the script starts itself runs (busy_machine.competitor), and stops after.

1. check: `actverify check torch.special:expit --activation sigmoid` (four dtypes, forward
   and backward, the `check` profile) with its default supervised workers (one per core, at
   most 4) and with `--workers 1`; target: at most 3 s idle on 2 cores.
2. report workers: `actverify report --activation sigmoid --dtype float32` with `--workers 1`
   and `--workers 2`, idle and loaded: the speed-up of the pool.
3. with --full-report: `actverify report` of every activation (2,432 property runs) with its
   default workers, idle and loaded; target: at most 60 s idle on 2 cores.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from busy_machine import command, competitor, fmt, measure  # noqa: E402

CHECK = ["check", "torch.special:expit", "--activation", "sigmoid"]


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
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    import torch

    from actverify.threads import available_cores

    print(f"machine: {available_cores()} cores available, {platform.machine()}, "
          f"torch {torch.__version__}; {args.repeats} repeats, medians (min-max)", flush=True)
    one = ["report", "--activation", args.activation, "--dtype", args.dtype]
    runs = {"check": CHECK, "check --workers 1": [*CHECK, "--workers", "1"],
            "report --workers 1": [*one, "--workers", "1"],
            "report --workers 2": [*one, "--workers", "2"]}
    if args.full_report:
        runs["report (all)"] = ["report"]
    t = timed(runs, args.repeats)
    print("ratios:")
    for name in runs:
        print(f"  {name:<22} loaded/idle {ratio(t[name, True], t[name, False]):5.2f}x")
    for loaded in (False, True):
        state = "loaded" if loaded else "idle"
        print(f"  check, 1 worker / default workers, {state}: "
              f"{ratio(t['check --workers 1', loaded], t['check', loaded]):5.2f}x")
        print(f"  report {args.activation}, 1 worker / 2 workers, {state}: "
              f"{ratio(t['report --workers 1', loaded], t['report --workers 2', loaded]):5.2f}x")
    print(f"  check idle against its 3 s target: {statistics.median(t['check', False]) / 3:5.2f}x")
    if args.full_report:
        print(f"  report (all) idle against its 60 s target: "
              f"{statistics.median(t['report (all)', False]) / 60:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
