"""`actverify gpu-check OUT`: the CUDA checks in one short run, for a machine with a GPU.

Needs only what such a machine has (torch, triton, hypothesis, pytest, pytest-xdist), no
network.  Runs the property suite on CUDA (cross-device agreement included), the 16-bit
sweeps on CUDA, and the example CUDA and Triton kernels, and writes `summary.json` and
`summary.md` to OUT.  On a machine without a GPU it says so and exits 0: nothing is claimed.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch


def _step(results: dict, name: str, fn: Callable[[], dict]) -> None:
    """Run one part, keep its result and time even if it fails."""
    start = time.perf_counter()
    try:
        results[name] = {"status": "ok", **fn()}
    except Exception as exc:  # keep going: the other parts still tell something
        results[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    results[name]["seconds"] = round(time.perf_counter() - start, 2)


def gpu_check(out: Path, *, profile: str = "dev") -> int:
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"torch": torch.__version__, "python": platform.python_version()}
    if not torch.cuda.is_available():
        results["gpu"] = None
        results["result"] = "no GPU: nothing was checked on CUDA"
        (out / "summary.json").write_text(json.dumps(results, indent=1))
        (out / "summary.md").write_text("# GPU check\n\nNo GPU present: nothing was checked "
                                        "on CUDA.\n")
        print("no GPU: nothing was checked on CUDA (the GPU run is still owed)")
        return 0
    results["gpu"] = torch.cuda.get_device_name(0)
    results["cuda"] = torch.version.cuda

    def suite() -> dict:
        from actverify.profiles import profile_settings
        from actverify.report import Report
        from actverify.targets import all_builtin_targets

        report = Report.run(all_builtin_targets(), devices=["cuda"],
                            settings=profile_settings(profile), json_path=out / "suite.json")
        return {"ok": report.ok, "rows": report.rows()}

    def sweeps() -> dict:
        from actverify import sweep

        found = sweep.run_sweep(targets=None, dtypes=["float16", "bfloat16"], device="cuda",
                                bit_range=None, out_dir=out / "sweep", all_float32=False,
                                policy="default")
        return {"ok": all(r.ok for r in found), "results": [r.to_json() for r in found]}

    def examples() -> dict:
        from actverify.check import check

        checked = {}
        for ref, act in (("examples/triton_kernels.py:sigmoid", "sigmoid"),
                         ("examples/triton_kernels.py:softmax", "softmax"),
                         ("examples/cuda_extension.py:sigmoid", "sigmoid")):
            if Path(ref.split(":")[0]).exists():
                report = check(ref, activation=act, devices=["cuda"], profile=profile)
                checked[ref] = {"ok": report.ok, "rows": report.rows()}
        return checked

    _step(results, "suite", suite)
    _step(results, "sweeps", sweeps)
    _step(results, "examples", examples)
    (out / "summary.json").write_text(json.dumps(results, indent=1, default=str))
    lines = [f"# GPU check: {results['gpu']}", "", f"torch {results['torch']}, CUDA "
             f"{results['cuda']}", ""]
    for part in ("suite", "sweeps", "examples"):
        r = results[part]
        lines.append(f"- {part}: {r['status']}, {r['seconds']} s"
                     + (f", {r['error']}" if r["status"] == "error" else ""))
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(results[p]["status"] == "ok" and results[p].get("ok", True)
                    for p in ("suite", "sweeps")) else 1
