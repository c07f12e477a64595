"""Throughput of exhaustive sweeps (actverify/sweep/), as one-line figures.

    python benchmarks/sweep_throughput.py                  # everything, 3 repeats
    python benchmarks/sweep_throughput.py --float32-stride 64 --repeats 5

1. 16-bit: every float16 and bfloat16 bit pattern (65,536 each) through every element-wise
   activation's canonical PyTorch kernel, with every parameter mode a sweep covers (GELU's
   tanh form too), forward and backward (g = random and g = 1), with every whole-space
   check; the median time of each sweep and the total (target: < 1 s idle).
2. float32: sigmoid, forward only, through the fused pass over every STRIDE-th bit pattern of
   the whole float32 space (2^32 / STRIDE values), once accuracy-only and once with the
   monotonicity and point-symmetry checks (whose sweep visits mirrored pairs of chunks, each
   input through the kernel once, f(-x) from the mirror half); the median values/s (targets: 200 M/s accuracy only, 250 M/s
   with the checks, on 2 cores), and the time all 2^32 inputs take at that rate (with
   `--float32-stride 1 --repeats 1` the sweeps cover all 2^32 inputs).
   The compile time of the fused pass is printed separately and not counted.  Both are also
   given as a ratio to a bare fused pass over the same inputs (the kernel, then one compiled
   function: float64 reference, ulp error, maximum; nothing else), measured in the same run:
   what the sweep's verdicts, histogram, checks and bookkeeping cost on top of the least a
   sweep must do.  The last line repeats the ratios: with `--threads 1` on a shared machine
   they are the figures to compare between runs.

Each line also gives the CPU time used per second of wall time, so that figures taken on a
busy machine can be told apart from the machine's capacity.
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from collections.abc import Callable

import torch

from actverify.spec import registry
from actverify.sweep import builtin_sweep_targets, param_sets, sweep_elementwise
from actverify.threads import limited, resolve


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(median wall seconds, median CPU seconds / wall seconds, last result).  On a shared
    machine values per CPU-second (wall x load) are the steadier figure: time the scheduler
    gives to other processes counts in the wall time only."""
    walls, loads, result = [], [], None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        wall = time.perf_counter() - w
        walls.append(wall)
        loads.append((time.process_time() - c) / wall)
    return statistics.median(walls), statistics.median(loads), result


def sixteen_bit(repeats: int) -> float:
    total = 0.0
    for dtype in ("float16", "bfloat16"):
        for target in builtin_sweep_targets(n for n, s in registry().items() if s.elementwise):
            for params in param_sets(target.spec):
                sweep_elementwise(target, fmt=dtype, params=params)  # warm-up
                wall, load, r = timed(
                    lambda: sweep_elementwise(target, fmt=dtype, params=params), repeats)
                total += wall
                print(f"16-bit {r.label:24s} {dtype:8s} fwd+bwd ({len(r.passes)} passes, "
                      f"all checks): "
                      f"{wall * 1e3:6.0f} ms = {65536 / wall / 1e6:5.2f} M inputs/s "
                      f"[{load:.1f} CPUs busy, verdict {r.verdict}]", flush=True)
    print(f"16-bit total, float16 + bfloat16, every element-wise activation and mode, forward "
          f"and backward: {total:.2f} s (target < 1 s idle)", flush=True)
    return total


def bare_fused_pass(stride: int, threads: int | None) -> Callable[[], float]:
    """The baseline: every STRIDE-th float32 pattern through torch.sigmoid (eager) and one
    compiled pass computing the float64 reference, |y - r| / ulp(r) and its maximum, in
    chunks of the sweep's size; nothing else (no verdicts, counts, histogram or checks)."""
    from actverify.dtypes import float_format
    from actverify.spec import get_spec
    from actverify.sweep.fused import _inv_ulp
    from actverify.sweep.plan import FAST_CHUNK

    ref = get_spec("sigmoid").fast_reference
    fmt = float_format("float32")
    cfg = types.SimpleNamespace(emin=fmt.emin, emax=fmt.emax, precision=fmt.precision)

    def bare(x: torch.Tensor, y: torch.Tensor, cfg) -> torch.Tensor:
        r = ref(x.double(), {})[0]
        return ((y.double() - r).abs() * _inv_ulp(r, cfg)).nan_to_num(0.0).max()

    compiled = torch.compile(lambda x, y: bare(x, y, cfg), dynamic=False)
    n_total = (1 << 32) // stride

    def run() -> None:
        with limited(resolve(threads=threads, work="sweep")):
            for i in range(0, n_total, FAST_CHUNK):
                start = i * stride - (1 << 31)  # signed bit patterns, one int32 arange
                x = torch.arange(start, start + (FAST_CHUNK - 1) * stride + 1, stride,
                                 dtype=torch.int32).view(torch.float32)
                compiled(x, torch.sigmoid(x)).item()

    run()  # compiles
    return run


def float32_sigmoid(stride: int, repeats: int, threads: int | None) -> None:
    target = builtin_sweep_targets(["sigmoid"])[0]
    warm = time.perf_counter()
    r = sweep_elementwise(target, fmt="float32", backward=False, engine="fast",
                          bit_range=(0x3F000000, 0x3F000000 + (1 << 20)), threads=threads)
    print(f"float32 fused pass: compiled and validated in {time.perf_counter() - warm:.1f} s "
          f"({r.engine}; {torch.get_num_threads() if threads is None else threads} threads)",
          flush=True)
    x = torch.rand(1 << 22)
    wall, load, _ = timed(lambda: torch.sigmoid(x), max(repeats, 5))
    print(f"float32 torch.sigmoid alone (context): {(1 << 22) / wall / 1e6:6.0f} M values/s "
          f"[{load:.1f} CPUs busy]", flush=True)
    bare = bare_fused_pass(stride, threads)
    n = (1 << 32) // stride
    wall, load, _ = timed(bare, repeats)
    bare_rate, bare_cpu_rate = n / wall / 1e6, n / (wall * load) / 1e6
    print(f"float32 sigmoid, bare fused pass (kernel + reference + ulp error + max, nothing "
          f"else): {bare_rate:6.1f} M values/s, {bare_cpu_rate:6.1f} M values per CPU-second "
          f"(the baseline) [{load:.1f} CPUs busy]", flush=True)
    ratios = []
    for label, checks in (("accuracy only", ()),
                          ("accuracy + monotonic + point_symmetry", None)):
        # warm-up over the whole space (every 2^12-th pattern), so that a sweep with the
        # symmetry check compiles its pair screen here, not in the first timed repeat
        sweep_elementwise(target, fmt="float32", backward=False, engine="fast", checks=checks,
                          stride=1 << 12, threads=threads)
        # stride 1 is the whole space (without all_float32 it would be the CI subset)
        wall, load, r = timed(lambda: sweep_elementwise(
            target, fmt="float32", backward=False, engine="fast", stride=stride,
            all_float32=stride == 1, checks=checks, threads=threads), repeats)
        fwd = r.passes["forward"]
        rate, cpu_rate = r.n_inputs / wall / 1e6, r.n_inputs / (wall * load) / 1e6
        print(f"float32 sigmoid forward, {label}: {r.n_inputs:,} values (every {stride}th "
              f"pattern) in {wall:.2f} s = {rate:6.1f} M values/s ({rate / bare_rate:.2f}x the "
              f"bare pass), {cpu_rate:6.1f} M values per CPU-second "
              f"({cpu_rate / bare_cpu_rate:.2f}x) [{load:.1f} CPUs busy, {r.engine}; max {fwd.max_ulp:.4g} ulp at x = "
              f"{fwd.max_at['x']!r}]", flush=True)
        print(f"  all 2^32 inputs at that rate: {(1 << 32) / rate / 1e6:.1f} s wall, "
              f"{(1 << 32) / cpu_rate / 1e6:.1f} CPU-seconds", flush=True)
        ratios.append(f"{label} {cpu_rate:.1f} ({cpu_rate / bare_cpu_rate:.2f}x)")
    print(f"float32 sigmoid, M values per CPU-second (ratio to the bare pass {bare_cpu_rate:.1f}):"
          f" {'; '.join(ratios)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--float32-stride", type=int, default=16,
                        help="sweep every STRIDE-th float32 bit pattern (default 16: 2^28)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all cores)")
    parser.add_argument("--skip-16", action="store_true")
    parser.add_argument("--skip-32", action="store_true")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    if not args.skip_16:
        sixteen_bit(args.repeats)
    if not args.skip_32:
        float32_sigmoid(args.float32_stride, args.repeats, args.threads)


if __name__ == "__main__":
    main()
