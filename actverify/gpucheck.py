"""`actverify gpu-check OUT`: the CUDA checks in one short run, for a machine with a GPU.

Needs actverify's own dependencies (torch, hypothesis, numpy, mpmath, rich) and triton, no
network; matplotlib only for the sweep report's plots.  Four steps, each timed and kept even when another fails:

1. suite     every property on PyTorch's entry points, every dtype, on the device; the
             cross-device properties (results and gradients against the CPU's) included.
             Spread over worker processes, one activation each.
2. sweeps    every float16 and bfloat16 input of each activation's canonical form, forward
             and backward, on the device.
3. examples  the Triton kernels (compiled for the device) and the CUDA extension (built with
             nvcc while the suite runs), each under `actverify check`.

One report: `summary.md` (and `summary.json`), with `suite.json`, `sweep/` and `examples/`
beside it.  Exit status 0 only when every step ran to the end and everything held.

`--device cpu:1` runs the same flow on the stand-in second device (docs/cuda.md), which is how
the flow is tested on machines without a GPU.  Without a GPU and without `--device` it says
so and exits 0: nothing is claimed.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import torch

from actverify.devices import is_second_device, is_stand_in, resolve_device
from actverify.errors import UsageError

SWEEP_DTYPES = ("float16", "bfloat16")
TRITON = "examples/triton_kernels.py"
CUDA_EXTENSION = "examples/cuda_extension.py"
EXAMPLES: tuple[tuple[str, str], ...] = (
    *((f"{TRITON}:{a}", a) for a in ("sigmoid", "tanh", "relu", "leaky_relu", "step",
                                      "softmax")),
    *((f"{CUDA_EXTENSION}:{a}", a) for a in ("sigmoid", "tanh", "relu", "leaky_relu",
                                             "step")),
)


@dataclass(frozen=True)
class Plan:
    """What one gpu-check run covers."""

    device: str
    profile: str = "dev"
    activations: tuple[str, ...] | None = None  # None: all
    dtypes: tuple[str, ...] | None = None  # None: all (the sweeps: float16 and bfloat16)
    examples: tuple[tuple[str, str], ...] = EXAMPLES
    workers: int = 1
    entry_points: bool = True  # every entry point of PyTorch, or only the canonical forms


def _step(results: dict, name: str, fn: Callable[[], dict]) -> None:
    """Run one part, keep its result and time even if it fails."""
    start = time.perf_counter()
    try:
        results[name] = {"status": "ok", **fn()}
    except Exception as exc:  # keep going: the other parts still tell something
        results[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    results[name]["seconds"] = round(time.perf_counter() - start, 2)


# ------------------------------------------------------------------------------ suite


def _suite_part(activation: str, device: str, dtypes: tuple[str, ...] | None,
                profile: str, entry_points: bool) -> list:
    """One activation's share of the suite (in a worker process, or here)."""
    from rich.console import Console

    from actverify.profiles import profile_settings
    from actverify.report import Report
    from actverify.targets import all_builtin_targets

    from actverify.threads import apply as apply_threads

    # Property checking's count: --threads, as OMP_NUM_THREADS from the command (inherited by
    # a worker process), else one: parallelism is in the processes (docs/performance.md).
    apply_threads(work="properties", export=False)
    targets = all_builtin_targets([activation])
    report = Report.run(targets if entry_points else targets[:1], dtypes=dtypes,
                        devices=[device], settings=profile_settings(profile),
                        console=Console(stderr=True, quiet=True))  # one summary at the end
    return report.outcomes


def run_suite(plan: Plan, out: Path) -> dict:
    from actverify.report import Report
    from actverify.spec import registry

    activations = list(plan.activations or registry())
    report = Report(json_path=out / "suite.json")
    args = [(a, plan.device, plan.dtypes, plan.profile, plan.entry_points)
            for a in activations]
    if plan.workers <= 1 or len(args) == 1:
        parts = [_suite_part(*a) for a in args]
    else:
        with ProcessPoolExecutor(min(plan.workers, len(args)),
                                 mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(_suite_part, *zip(*args)))
    with report.running():  # every part ran to its end: the aggregate is finished
        for outcomes in parts:
            for o in outcomes:
                report.add(o)
    cross = [o for o in report.outcomes if o.property.startswith("cross_device")]
    return {"ok": report.ok, "verdict": report.verdict, "rows": report.rows(),
            "cross_device": {s: sum(o.status == s for o in cross)
                             for s in ("passed", "failed", "error", "not_checked")},
            "failures": [f"{o.property} {o.target} {o.dtype}: {o.failure.message}"
                         for o in report.outcomes if o.status == "failed"][:50],
            "errors": [f"{o.property} {o.target} {o.dtype}: {o.reason}"
                       for o in report.outcomes if o.status == "error"][:50]}


# ----------------------------------------------------------------------------- sweeps


def run_sweeps(plan: Plan, out: Path) -> dict:
    from actverify import sweep
    from actverify.spec import get_spec, registry
    from actverify.targets import builtin_targets

    targets = [builtin_targets(get_spec(a))[0] for a in (plan.activations or registry())]
    dtypes = [d for d in SWEEP_DTYPES if plan.dtypes is None or d in plan.dtypes]
    if not dtypes:  # nothing swept is no pass
        return {"ok": False, "note": "not run: no 16-bit dtype chosen", "results": []}
    try:  # the report's plots need matplotlib, which a bare GPU machine may lack
        import matplotlib  # noqa: F401

        out_dir, note = out / "sweep", "report: sweep/sweep.md"
    except ImportError:
        out_dir, note = None, "matplotlib absent: no sweep report, figures in summary.json"
    found = sweep.run_sweep(targets=targets, dtypes=dtypes, device=plan.device,
                            out_dir=out_dir, report_format="md", progress=False)
    return {"ok": all(r.ok for r in found), "note": note,
            "results": [r.summary() for r in found], "figures": [r.to_dict() for r in found]}


# --------------------------------------------------------------------------- examples


def _module_unavailable(ref: str) -> str | None:
    """Why an example cannot run here (the CUDA extension's own `unavailable()`), or None."""
    from actverify.targets import load_callable

    if not ref.startswith(CUDA_EXTENSION):
        return None
    return load_callable(f"{CUDA_EXTENSION}:unavailable")()


def prebuild(plan: Plan) -> threading.Thread | None:
    """Start building the CUDA extension (nvcc, a minute or two) while the suite runs."""
    if not any(ref.startswith(CUDA_EXTENSION) for ref, _ in plan.examples):
        return None
    if is_stand_in(plan.device) or _module_unavailable(CUDA_EXTENSION + ":sigmoid"):
        return None
    from actverify.targets import load_callable

    build = load_callable(f"{CUDA_EXTENSION}:extension")
    thread = threading.Thread(target=lambda: _quietly(build), daemon=True)
    thread.start()
    return thread


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:  # the example's own check reports the build error
        pass


def run_examples(plan: Plan, out: Path, build: threading.Thread | None = None) -> dict:
    from actverify.check import check

    if build is not None:
        build.join()
    (out / "examples").mkdir(exist_ok=True)
    checked: dict[str, dict] = {}
    for ref, activation in plan.examples:
        if not Path(ref.partition(":")[0]).exists():
            checked[ref] = {"ok": False, "verdict": "not run", "why": "file not found"}
            continue
        why = _module_unavailable(ref)
        if why is not None or (is_stand_in(plan.device) and ref.startswith(CUDA_EXTENSION)):
            checked[ref] = {"ok": False, "verdict": "not run",
                            "why": why or "CUDA kernels do not run on the stand-in"}
            continue
        name = ref.rpartition("/")[2].replace(":", "-").replace(".py", "")
        report = check(ref, activation=activation, devices=[plan.device], dtypes=plan.dtypes,
                       profile="check", json_path=out / "examples" / f"{name}.json")
        checked[ref] = {"ok": report.ok, "verdict": report.verdict,
                        "failed": sorted({f"{o.property} {o.dtype}" for o in report.outcomes
                                          if o.status in ("failed", "error")})}
    return {"ok": all(c["ok"] for c in checked.values()), "checked": checked}


# ----------------------------------------------------------------------------- report


def _markdown(results: dict) -> str:
    lines = [f"# GPU check on {results['device']}: {results['gpu']}", "",
             f"torch {results['torch']}, CUDA {results['cuda']}, Python {results['python']}",
             ""]
    for part in ("suite", "sweeps", "examples"):
        r = results.get(part)
        if r is None:
            continue
        verdict = r["status"] if r["status"] != "ok" else ("held" if r.get("ok") else
                                                           "violations or not run")
        why = r["error"] if r["status"] == "error" else r.get("note", "")
        shown = r["status"] == "error" or why.startswith("not run")
        lines.append(f"- {part}: {verdict}, {r['seconds']} s" + (f": {why}" if shown else ""))
    suite = results.get("suite", {})
    if suite.get("rows"):
        lines += ["", "## Suite", "", f"cross-device properties: {suite['cross_device']}", "",
                  "| activation | dtype | forward | backward | worst ulp | violated |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['activation']} | {r['dtype']} | {r['forward']} | {r['backward']} | "
                  f"{r['worst_ulp'] if r['worst_ulp'] is not None else '-'} | "
                  f"{', '.join(r['failed_properties']) or '-'} |" for r in suite["rows"]]
        lines += [f"- {f}" for f in suite.get("failures", []) + suite.get("errors", [])]
    if results.get("sweeps", {}).get("results"):
        lines += ["", f"## Sweeps ({results['sweeps']['note']})", ""]
        lines += [f"- {s}" for s in results["sweeps"]["results"]]
    if results.get("examples", {}).get("checked"):
        lines += ["", "## Examples", ""]
        for ref, c in results["examples"]["checked"].items():
            detail = c.get("why") or ", ".join(c.get("failed", [])) or ""
            lines.append(f"- {ref}: {c['verdict']}" + (f" ({detail})" if detail else ""))
    lines += ["", f"verdict: {results['result']}"]
    return "\n".join(lines) + "\n"


def _write(out: Path, results: dict) -> None:
    (out / "summary.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "summary.md").write_text(_markdown(results))


def gpu_check(out: Path, *, device: str | None = None, profile: str = "dev",
              activations: Sequence[str] | None = None, dtypes: Sequence[str] | None = None,
              examples: Sequence[tuple[str, str]] = EXAMPLES, workers: int | None = None,
              entry_points: bool = True) -> int:
    """Run the GPU check into `out`; the exit status (0: everything ran and held).

    `activations`, `dtypes`, `examples` and `entry_points=False` (canonical forms only)
    narrow the run; `workers` processes share the suite (default: up to 6)."""
    from actverify.dtypes import float_format
    from actverify.spec import get_spec

    if device is None and not torch.cuda.is_available():
        out.mkdir(parents=True, exist_ok=True)
        results = {"torch": torch.__version__, "python": platform.python_version(),
                   "gpu": None, "result": "no GPU: nothing was checked on CUDA"}
        (out / "summary.json").write_text(json.dumps(results, indent=1))
        (out / "summary.md").write_text("# GPU check\n\nNo GPU present: nothing was checked "
                                        "on CUDA.\n")
        print("no GPU: nothing was checked on CUDA (the GPU run is still owed)")
        return 0
    if workers is not None and workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    chosen = resolve_device(device or "cuda")
    if not is_second_device(chosen):
        raise UsageError(f"gpu-check needs a second device, not {chosen!r}: 'cuda', or "
                         "'cpu:1' for the stand-in (docs/cuda.md)")
    plan = Plan(device=chosen, profile=profile,
                activations=tuple(get_spec(a).name for a in activations) if activations
                else None,
                dtypes=tuple(float_format(d).name for d in dtypes) if dtypes else None,
                examples=tuple(examples), entry_points=entry_points,
                workers=workers if workers is not None else min(6, os.cpu_count() or 1))
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"device": chosen, "torch": torch.__version__,
                     "python": platform.python_version(), "cuda": torch.version.cuda,
                     "gpu": torch.cuda.get_device_name(0) if chosen.startswith("cuda")
                     else "none (stand-in second device: CPU kernels in a child process "
                          "under ATEN_CPU_CAPABILITY=default)",
                     "plan": {"activations": plan.activations, "dtypes": plan.dtypes,
                              "profile": plan.profile, "workers": plan.workers}}
    build = prebuild(plan)
    _step(results, "suite", lambda: run_suite(plan, out))
    _step(results, "sweeps", lambda: run_sweeps(plan, out))
    _step(results, "examples", lambda: run_examples(plan, out, build))
    held = all(results[p]["status"] == "ok" and results[p]["ok"]
               for p in ("suite", "sweeps", "examples"))
    results["result"] = ("conforms: every step ran to the end and held" if held else
                         "does not conform: a step failed, found violations or did not run")
    _write(out, results)
    print(_markdown(results), end="")
    return 0 if held else 1
