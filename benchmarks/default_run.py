"""The default test run (`python -m pytest -n 2`, the README's command): wall time, CPU time of
every process it starts, and where the CPU goes, by file and by fixed cost.

    python benchmarks/default_run.py                 # one run
    python benchmarks/default_run.py --repeats 3     # medians of three
    python benchmarks/default_run.py -- -k accuracy  # arguments after -- go to pytest

The script is also the pytest plugin that records the figures (loaded with `-p default_run`):
each pytest process writes its own CPU time (and, in an xdist worker, the CPU time its
collection took and each test's CPU time, its own and its waited-for subprocesses') to a JSON
lines file.  CPU time is the figure to compare on a shared machine; wall time only on an idle
one, so the load average at the start of each run is printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDS_VAR = "ACTVERIFY_BENCH_RECORDS"  # where the plugin writes; unset: the plugin is idle


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process and of its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


# ------------------------------------------------------------------------- the plugin

_tests: list[tuple[str, float, float]] = []
_collected: list[float] = []


def pytest_collection_finish(session) -> None:
    _collected.append(_cpu()[0])


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # A plain hook that runs first and returns None, leaving the protocol to pytest's own: it
    # only starts the clock, which the teardown's report stops.
    item._bench_start = _cpu()


def pytest_runtest_makereport(item, call) -> None:
    if call.when != "teardown" or not hasattr(item, "_bench_start"):
        return
    own, kids = _cpu()
    own0, kids0 = item._bench_start
    _tests.append((item.nodeid, own - own0, kids - kids0))


def pytest_unconfigure(config) -> None:
    path = os.environ.get(RECORDS_VAR)
    if not path:
        return
    who = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    own, kids = _cpu()
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"process": who, "cpu": own, "children": kids,
                              "collection": _collected[0] if _collected else None}) + "\n")
        for nodeid, t_own, t_kids in _tests:
            out.write(json.dumps({"test": nodeid, "cpu": t_own + t_kids}) + "\n")


# ------------------------------------------------------------------------- the driver

def one_run(pytest_args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        records = Path(tmp) / "records.jsonl"
        env = {**os.environ, RECORDS_VAR: str(records),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                           os.environ.get("PYTHONPATH")]))}
        load = os.getloadavg()[0]
        before = _cpu()[1]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-q", "-rfE",
                               "-p", "default_run", *pytest_args], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        cpu = _cpu()[1] - before
        lines = [json.loads(line) for line in records.read_text().splitlines()] \
            if records.exists() else []
    summary = next((line for line in reversed(done.stdout.splitlines()) if " in " in line),
                   done.stdout[-300:])
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return {"status": done.returncode, "summary": summary, "failed": failed, "load": load,
            "wall": wall,
            "cpu": cpu, "processes": [r for r in lines if "process" in r],
            "tests": [r for r in lines if "test" in r]}


def report(runs: list[dict], *, top: int, slowest: int) -> None:
    for i, r in enumerate(runs, 1):
        print(f"run {i}: exit {r['status']}, {r['summary']}; load average {r['load']:.2f} at "
              f"the start; wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s (every process)")
        for line in r["failed"]:
            print(f"  {line}")
        for p in sorted(r["processes"], key=lambda p: p["process"]):
            coll = f", collection {p['collection']:.1f} s" if p["collection"] else ""
            print(f"  {p['process']}: own CPU {p['cpu']:.1f} s{coll}")
    print(f"median of {len(runs)}: wall {statistics.median(r['wall'] for r in runs):.1f} s, "
          f"CPU {statistics.median(r['cpu'] for r in runs):.1f} s")
    per_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for r in runs:
        for t in r["tests"]:
            entry = per_file[t["test"].split("::", 1)[0]]
            entry[0] += t["cpu"] / len(runs)
            entry[1] += 1 / len(runs)
    in_tests = sum(e[0] for e in per_file.values())
    print(f"CPU in tests (their own and their subprocesses'): {in_tests:.1f} s; by file:")
    for name, (cpu, n) in sorted(per_file.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"  {cpu:7.1f} s {round(n):5d} tests  {name}")
    if slowest:
        per_test: dict[str, float] = defaultdict(float)
        for r in runs:
            for t in r["tests"]:
                per_test[t["test"]] += t["cpu"] / len(runs)
        print(f"the {slowest} tests that took the most CPU:")
        for name, cpu in sorted(per_test.items(), key=lambda kv: -kv[1])[:slowest]:
            print(f"  {cpu:7.1f} s  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--top", type=int, default=20, help="files listed (default 20)")
    parser.add_argument("--slowest", type=int, default=0,
                        help="also list this many tests, the most CPU first (default none)")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    runs = [one_run(args.pytest_args) for _ in range(args.repeats)]
    report(runs, top=args.top, slowest=args.slowest)
    return max(r["status"] for r in runs)


if __name__ == "__main__":
    sys.exit(main())
