"""Conformance checking of a custom kernel: `actverify.check(fn, activation=...)`.

The kernel is called with the torch.nn.functional signature of its activation and checked
against the activation's full property set, forward and backward, plus agreement with
PyTorch's own kernel within the accuracy model, on every dtype it supports and every device
present.  What it declares it does not support is reported as not checked, never as passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from actverify.accuracy import policy_named
from actverify.devices import available_devices, resolve_device
from actverify.dtypes import DTYPE_NAMES, float_format
from actverify.errors import UsageError
from actverify.profiles import chosen_profile, profile_settings
from actverify.properties import Subject, properties_for
from actverify.report import Report
from actverify.runner import run_property
from actverify.targets import Target, resolve_target, target_from_callable


def as_target(kernel: Callable | str | Target, activation: str | None) -> Target:
    if isinstance(kernel, Target):
        return kernel
    if isinstance(kernel, str):
        return resolve_target(kernel, activation)
    if activation is None:
        raise UsageError("check() needs activation=NAME for a callable")
    return target_from_callable(kernel, activation)


def check(kernel: Callable | str | Target, *, activation: str | None = None,
          dtypes: Iterable[str] | None = None, devices: Iterable[str] | None = None,
          policy: str = "default", kink: str = "pytorch", profile: str | None = None,
          json_path: str | Path | None = None, isolate: bool = False,
          call_timeout: float | None = 60.0, property_timeout: float = 600.0,
          console: Console | None = None) -> Report:
    """Check `kernel` (a callable, 'module:attr', 'file.py:attr' or a Target) and return the
    report; `report.ok` is the verdict.  `profile`: default $ACTVERIFY_PROFILE, else
    `check`.  See docs/check.md."""
    target = as_target(kernel, activation)
    chosen_dtypes = [float_format(d).name for d in dtypes] if dtypes else list(DTYPE_NAMES)
    chosen_devices = [resolve_device(d) for d in devices] if devices else list(available_devices())
    pol = policy_named(policy, kink=kink)
    profile = profile or chosen_profile("check")
    settings = profile_settings(profile)
    if isolate and target.source is None:
        raise UsageError("isolation runs the kernel in a subprocess, which must import it: "
                         "pass it as 'module:attr' or 'path/file.py:attr'")
    report = Report(json_path=Path(json_path) if json_path else None, target=target.name,
                    activation=target.activation)
    if not devices and "cuda" not in chosen_devices:
        report.skip("no CUDA device present", device="cuda")
    if target.limits:
        report.skip(f"declared by the target: {target.limits}")
    if not target.backward:
        report.skip("declared by the target: no backward", kind="backward")
    work = []
    for device in chosen_devices:
        for dtype in chosen_dtypes:
            fmt = float_format(dtype)
            if not target.supports(fmt, device):
                report.skip("outside what the target declares", dtype=dtype, device=device)
                continue
            work.append((Subject(target, fmt, device, pol), properties_for(target, dtype, device)))
    console = console or Console(stderr=True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("checking", total=sum(len(props) for _, props in work))

        def keep(outcome) -> None:
            report.add(outcome)
            progress.advance(task)

        for subject, props in work:
            progress.update(task, description=f"{target.name} {subject.fmt.name} "
                                              f"{subject.device}")
            if isolate:
                from actverify.isolation import run_isolated

                run_isolated(source=target.source, activation=target.activation,
                             target_name=target.name, dtype=subject.fmt.name,
                             device=subject.device, policy=policy, kink=kink, profile=profile,
                             names=[p.name for p in props], call_timeout=call_timeout,
                             property_timeout=property_timeout, on_outcome=keep)
            else:
                for prop in props:
                    keep(run_property(prop, subject, settings=settings,
                                      call_timeout=call_timeout))
    return report
