"""Parallel fuzzing: throughput with 1 and 2 workers, and time to find a planted bug.

What is measured
----------------
1. Throughput.  `actverify.fuzzing.orchestrator.fuzz` runs the property suite (by default
   PyTorch's sigmoid entry points in float32: `--actverify-activation sigmoid
   --actverify-dtype float32`) for `--minutes` with 1 and with 2 pytest-xdist workers,
   alternately (1, 2, 1, 2, ...: a change in the machine's load hits both alike), `--repeats`
   times each, every run on a fresh, empty example database and with the same test order
   (`seed`).  The figures come from the workers' records
   (actverify.fuzzing.records.track_progress): Hypothesis examples and
   input values (tensor elements) checked per second, over the wall time of the run
   ("wall", which includes starting pytest and the workers) and over the time from the
   first example to the end ("busy"), and examples per CPU-second of the workers (what a
   worker makes of the processor it gets: on a machine others use, a ratio near 1 says the
   workers do not slow each other down, and the wall ratio is bounded by the cores free).
   The scaling ratio is 2-worker / 1-worker; the load average is printed before and after.
2. Time to find a planted bug.  A kernel written to a temporary directory is sigmoid except
   that it is 2^-12 too large (about 2^11 ulp in float32) on [3, 3 + 2^-12), 2,048 of the
   2^32 float32 bit patterns.  `fuzz` runs the sigmoid properties against it in float32
   with `--workers` workers for at most `--find-minutes`: from a cold (empty) database, and,
   when that run found the bug, again from the warm database it left.  The time is from the
   start of `fuzz` to the first failure it reports, so it includes pytest's start (printed
   separately as "first result"); runs that found nothing are counted, not timed.

Medians over the repeats are printed, with min-max.

    .venv/bin/python benchmarks/fuzz_scaling.py                  # ~15 minutes on 2 cores
    .venv/bin/python benchmarks/fuzz_scaling.py --part find --repeats 5
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

PLANTED = """
import torch

def sigmoid(x):  # planted: 2**-12 too large on [3, 3 + 2**-12)
    y = torch.sigmoid(x)
    band = (x >= 3.0) & (x < 3.0 + 2.0 ** -12)
    return torch.where(band, y * (1 + 2.0 ** -12), y)
"""


def _run(work: Path, name: str, **kwargs) -> dict:
    from actverify.fuzzing.orchestrator import fuzz

    path = work / f"{name}.json"
    fuzz(json_path=str(path), out=io.StringIO(), **kwargs)
    return json.loads(path.read_text())


def _median(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "n/a"
    med = statistics.median(got)
    return f"{med:,.1f} ({min(got):,.1f}-{max(got):,.1f})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=1.0, help="budget of each throughput run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="workers of the bug-finding runs")
    p.add_argument("--find-minutes", type=float, default=2.0,
                   help="budget of each bug-finding run")
    p.add_argument("--part", choices=["all", "throughput", "find"], default="all")
    p.add_argument("--select", default="--actverify-activation sigmoid --actverify-dtype "
                   "float32", help="pytest arguments choosing the throughput suite")
    args = p.parse_args()

    import hypothesis
    import torch

    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, torch "
          f"{torch.__version__}, Hypothesis {hypothesis.__version__}, load average "
          f"{os.getloadavg()[0]:.1f}")
    select = args.select.split()
    with tempfile.TemporaryDirectory(prefix="fuzz-scaling-") as tmp:
        work = Path(tmp)
        os.chdir(work)  # replay files and the local database stay out of the checkout
        if args.part in ("all", "throughput"):
            status = _throughput(args, work, select)
            if status:
                return status
        if args.part in ("all", "find"):
            _find(args, work)
    return 0


def _throughput(args: argparse.Namespace, work: Path, select: list[str]) -> int:
    by_workers: dict[int, list[dict]] = {1: [], 2: []}
    for r in range(args.repeats):
        for workers in by_workers:
            by_workers[workers].append(
                _run(work, f"w{workers}-{r}", minutes=args.minutes, workers=workers,
                     db=f"dir:{work / f'db-w{workers}-{r}'}", seed=r, pytest_args=select))
    rows = {}
    for workers, runs in by_workers.items():
        if not all(run["examples_counted"] for run in runs):
            print("examples are not counted: actverify.runner.run_property does not call "
                  "actverify.fuzzing.records.track_progress")
            return 1
        busy = [r["busy_seconds"] for r in runs]
        rows[workers] = {
            "ex_wall": [r["examples_per_second"] for r in runs],
            "val_wall": [r["values_per_second"] for r in runs],
            "ex_busy": [r["examples"] / b if b else None for r, b in zip(runs, busy)],
            "val_busy": [r["values"] / b if b else None for r, b in zip(runs, busy)],
            "props": [r["properties_run"] for r in runs],
            "ex_cpu": [r["examples_per_cpu_second"] for r in runs],
            "rounds": [len(r["rounds"]) for r in runs],
            "fail": sum(len(r["failures"]) for r in runs),
        }
    print(f"\nthroughput: {args.minutes:g} min per run, {args.repeats} runs per row, "
          f"suite: {' '.join(select)}; load average now {os.getloadavg()[0]:.1f}")
    print(f"{'workers':>7}  {'rounds':>6}  {'properties':>10}  {'examples/s wall':>22}  "
          f"{'examples/s busy':>22}  {'values/s wall':>28}  {'values/s busy':>28}")
    for w, row in rows.items():
        print(f"{w:>7}  {statistics.median(row['rounds']):>6g}  "
              f"{statistics.median(row['props']):>10g}  {_median(row['ex_wall']):>22}"
              f"  {_median(row['ex_busy']):>22}  {_median(row['val_wall']):>28}  "
              f"{_median(row['val_busy']):>28}")
        if row["fail"]:
            print(f"         ({row['fail']} failures: see docs/findings.md)")
    for w, row in rows.items():
        # examples/s over examples per CPU-second: the processors the workers got, on average
        got = [e / c for e, c in zip(row["ex_busy"], row["ex_cpu"]) if e and c]
        print(f"{w} worker{'s' * (w != 1)}: examples per worker CPU-second "
              f"{_median(row['ex_cpu'])}; CPUs the workers got {_median(got)}")
    for key, label in (("ex_wall", "examples/s wall"), ("ex_busy", "examples/s busy"),
                       ("ex_cpu", "examples per worker CPU-second"),
                       ("val_wall", "values/s wall"), ("val_busy", "values/s busy")):
        one = statistics.median([v for v in rows[1][key] if v])
        two = statistics.median([v for v in rows[2][key] if v])
        print(f"scaling 2/1 workers, {label}: {two / one:.2f}x")
    return 0


def _find(args: argparse.Namespace, work: Path) -> None:
    kernel = work / "planted.py"
    kernel.write_text(PLANTED)
    target = [f"{kernel}:sigmoid=sigmoid"]
    found = {"cold": [], "warm": []}
    startup = {"cold": [], "warm": []}
    runs = {"cold": 0, "warm": 0}
    for r in range(args.repeats):
        db = f"dir:{work / f'bug-db-{r}'}"
        for kind in ("cold", "warm"):  # the warm run reuses the cold run's database
            if kind == "warm" and found["cold"][-1:] == [None]:
                break  # the cold run found nothing: there is nothing to be warm with
            s = _run(work, f"bug-{kind}-{r}", minutes=args.find_minutes,
                     workers=args.workers, db=db, targets=target, seed=r,
                     pytest_args=["--actverify-dtype", "float32"])
            runs[kind] += 1
            found[kind].append(s["first_failure_seconds"])
            startup[kind].append(s["first_result_seconds"])
    print(f"\ntime to find the planted bug ({args.workers} workers, at most "
          f"{args.find_minutes:g} min a run; seconds from the start of fuzz)")
    for kind in ("cold", "warm"):
        hits = [v for v in found[kind] if v is not None]
        print(f"  {kind} database: found in {len(hits)}/{runs[kind]} runs; first failure "
              f"{_median(hits)} s, first result {_median(startup[kind])} s")


if __name__ == "__main__":
    sys.exit(main())
