"""Conformance checking of a custom kernel: `actverify.check(fn, activation=...)`.

The kernel is called with the torch.nn.functional signature of its activation and checked
against the activation's full property set, forward and backward, plus agreement with
PyTorch's own kernel within the accuracy model, on every dtype it supports and every device
present.  What it declares it does not support is reported as not checked, never as passed.

By default a kernel given by name runs in a supervised worker process (actverify/isolation.py):
exits, crashes and calls stuck in C become findings and the run goes on.  A callable that
cannot be imported by name runs in this process (`isolate=False`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from actverify.accuracy import policy_named
from actverify.devices import available_devices, resolve_device
from actverify.dtypes import DTYPE_NAMES, float_format
from actverify.errors import UsageError
from actverify.outputs import writable_file
from actverify.plan import Plan, plan_check
from actverify.profiles import chosen_profile, profile_settings
from actverify.properties import Subject, all_properties
from actverify.report import Report
from actverify.runner import Outcome, run_property
from actverify.targets import Target, as_target, check_reference

DEFAULT_TIMEOUT = 60.0  # seconds per call of the kernel


def check_timeout(seconds: float) -> float:
    """A per-call time limit must be a finite positive number of seconds."""
    if (not isinstance(seconds, (int, float)) or isinstance(seconds, bool)
            or not math.isfinite(seconds) or seconds <= 0):
        raise UsageError(f"--timeout must be a finite positive number of seconds, "
                         f"got {seconds!r}")
    return float(seconds)


def check(kernel: Callable | str | Target, *, activation: str | None = None,
          dtypes: Iterable[str] | None = None, devices: Iterable[str] | None = None,
          policy: str = "default", kink: str = "pytorch", profile: str | None = None,
          json_path: str | Path | None = None, isolate: bool | None = None,
          call_timeout: float = DEFAULT_TIMEOUT, properties: Iterable[str] | None = None,
          console: Console | None = None) -> Report:
    """Check `kernel` (a callable, 'module:attr', 'file.py:attr' or a Target) and return the
    report; `report.verdict` and `report.exit_status` say how it went (docs/check.md).

    `isolate`: run the kernel in a supervised worker (default: when it can be imported by
    name); `call_timeout`: seconds each call of the kernel may take; `properties`: only these;
    `profile`: default $ACTVERIFY_PROFILE, else `check`.
    """
    call_timeout = check_timeout(call_timeout)
    chosen_dtypes = [float_format(d).name for d in dtypes] if dtypes else list(DTYPE_NAMES)
    chosen_devices = [resolve_device(d) for d in devices] if devices else list(available_devices())
    pol = policy_named(policy, kink=kink)
    profile = profile or chosen_profile("check")
    settings = profile_settings(profile)
    names = list(properties) if properties else None
    known = all_properties()
    for name in names or ():
        if name not in known:
            raise UsageError(f"unknown property {name!r}; use one of {', '.join(known)}")
    json_file = writable_file(json_path, option="--json") if json_path else None
    source = kernel if isinstance(kernel, str) else getattr(kernel, "source", None)
    if isolate is None:
        isolate = source is not None
    if isolate and source is None:
        raise UsageError("isolation runs the kernel in a subprocess, which must import it: "
                         "pass it as 'module:attr' or 'path/file.py:attr', or isolate=False")
    console = console or Console(stderr=True)
    if isolate:
        from actverify.isolation import Supervisor

        check_reference(source)  # what can be told without running the kernel's code
        with Supervisor(source=source, activation=activation, policy=policy,
                        kink=kink, profile=profile, call_timeout=call_timeout,
                        dtypes=chosen_dtypes, devices=chosen_devices,
                        properties=names) as supervisor:
            return _run(supervisor.plan, supervisor.run, json_file=json_file,
                        devices_given=bool(devices), console=console)
    target = as_target(kernel, activation)
    plan = plan_check(target, dtypes=chosen_dtypes, devices=chosen_devices, properties=names)
    props = all_properties()

    def run_here(dtype: str, device: str, name: str) -> Outcome:
        subject = Subject(target, float_format(dtype), device, pol)
        return run_property(props[name], subject, settings=settings, call_timeout=call_timeout)

    return _run(plan, run_here, json_file=json_file, devices_given=bool(devices),
                console=console)


def _run(plan: Plan, run: Callable[[str, str, str], Outcome], *, json_file: Path | None,
         devices_given: bool, console: Console) -> Report:
    """Run the plan property by property, keeping the report; SIGINT or SIGTERM stop it with
    what was gathered (the report says what did not run)."""
    report = Report(json_path=json_file, target=plan.target, activation=plan.activation,
                    planned=plan.size)
    if not devices_given and "cuda" not in available_devices():
        report.skip("no CUDA device present", device="cuda")
    if plan.limits:
        report.skip(f"declared by the target: {plan.limits}")
    if not plan.backward:
        report.skip("declared by the target: no backward", kind="backward")
    for s in plan.subjects:
        if s.why_not:
            report.skip(s.why_not, dtype=s.dtype, device=s.device)
    with report.running(), Progress(console=console, transient=True) as progress:
        task = progress.add_task("checking", total=plan.size)
        for s in plan.subjects:
            progress.update(task, description=f"{plan.target} {s.dtype} {s.device}")
            for name in s.to_run:
                report.add(run(s.dtype, s.device, name))
                progress.advance(task)
    return report
