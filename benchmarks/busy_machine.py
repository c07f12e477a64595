"""What a run costs on a busy machine: idle against one CPU-bound competitor, by thread count.

    .venv/bin/python benchmarks/busy_machine.py                 # probe and check, 3 repeats
    .venv/bin/python benchmarks/busy_machine.py --part report --repeats 1

Every figure is a ratio against a baseline measured in the same run, so that figures taken on
a shared machine still say something: "loaded" is the same measurement while a competitor the
script starts itself (one Python process spinning on one core, as another job on a CI runner)
runs, and stops after it.

1. probe: the torch operations of a property check on tensors of the sizes Hypothesis draws
   (1 to 65,537 elements, float32 and float64), in this process, with 1 intra-op thread (the
   default of property checking, actverify/threads.py) and with one per core (torch's own
   default).
2. check: `actverify check torch.special:expit --activation sigmoid` (one kernel, four dtypes,
   forward and backward, the `check` profile) as a command, with `--threads 1` (the default)
   and `--threads <cores>`; wall seconds from the start of the command to its exit.
   Target: at most 3 s idle; loaded about its share of the CPU, not 5-35x idle.
3. report (only with --part report or all): `actverify report` of every activation, wall
   seconds (target: 60 s idle).

It prints one line per measurement (median seconds over --repeats, min-max) and the ratios
loaded/idle for each thread count and (threads=cores)/(threads=1) idle and loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

SIZES = (1, 7, 17, 64, 257, 1025, 4097, 65537)


@contextlib.contextmanager
def competitor(enabled: bool) -> Iterator[None]:
    """One CPU-bound process for the duration of the block (none when not `enabled`)."""
    if not enabled:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it reach the scheduler's steady state
        yield
    finally:
        proc.kill()
        proc.wait()


def probe(threads: int, rounds: int) -> float:
    """Seconds for `rounds` passes of example-sized torch work with `threads` threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        xs = [torch.randn(n) for n in SIZES]
        start = time.perf_counter()
        for _ in range(rounds):
            for x in xs:  # what a value property does: kernel, float64 reference, comparison
                y = torch.sigmoid(x)
                r = torch.sigmoid(x.double())
                err = (y.double() - r).abs() / r.abs().clamp(min=1e-300)
                bool((err > 1).any())
                torch.tanh(x).sum()
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(before)


def command(argv: list[str]) -> Callable[[], float]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}

    def run() -> float:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "actverify", *argv], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        took = time.perf_counter() - start
        if done.returncode not in (0, 1):
            raise SystemExit(f"actverify {' '.join(argv)} exited {done.returncode}: "
                             f"{done.stderr.strip()[-500:]}")
        return took

    return run


def measure(fn: Callable[[], float], repeats: int) -> list[float]:
    return [fn() for _ in range(repeats)]


def fmt(values: list[float]) -> str:
    return (f"{statistics.median(values):8.2f} s ({min(values):.2f}-{max(values):.2f})")


def compare(label: str, make: Callable[[int], Callable[[], float]], counts: tuple[int, ...],
            repeats: int, target: str = "") -> None:
    results: dict[tuple[int, bool], list[float]] = {}
    for loaded in (False, True):
        with competitor(loaded):
            for n in counts:
                results[n, loaded] = measure(make(n), repeats)
    for n in counts:
        idle, busy = results[n, False], results[n, True]
        print(f"{label:<7} threads={n}  idle {fmt(idle)}  loaded {fmt(busy)}  "
              f"loaded/idle {statistics.median(busy) / statistics.median(idle):5.2f}x",
              flush=True)
    if len(counts) > 1:
        one, many = counts[0], counts[-1]
        for loaded in (False, True):
            ratio = (statistics.median(results[many, loaded])
                     / statistics.median(results[one, loaded]))
            print(f"{label:<7} threads={many} / threads={one}, "
                  f"{'loaded' if loaded else 'idle'}: {ratio:5.2f}x", flush=True)
    if target:
        print(f"{label:<7} target: {target}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part", choices=["probe", "check", "report", "default", "all"],
                        default="default", help="default: probe and check")
    parser.add_argument("--probe-rounds", type=int, default=200)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.probe_rounds < 1:
        parser.error("--repeats and --probe-rounds must be at least 1")

    import torch

    from actverify.threads import available_cores

    cores = available_cores()
    counts = (1, cores) if cores > 1 else (1,)
    print(f"machine: {cores} cores available, {platform.machine()}, torch {torch.__version__}, "
          f"Python {platform.python_version()}; load average before: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}; competitor: one spinning "
          f"Python process; {args.repeats} repeats, medians (min-max)", flush=True)
    parts = {"default": ("probe", "check"), "all": ("probe", "check", "report")}.get(
        args.part, (args.part,))
    if "probe" in parts:
        compare("probe", lambda n: lambda: probe(n, args.probe_rounds), counts, args.repeats)
    if "check" in parts:
        compare("check", lambda n: command(["check", "torch.special:expit", "--activation",
                                            "sigmoid", "--threads", str(n)]),
                counts, args.repeats, target="threads=1 idle <= 3 s")
    if "report" in parts:
        compare("report", lambda n: command(["report", "--threads", str(n)]), (1,),
                args.repeats, target="idle <= 60 s")
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
