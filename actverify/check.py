"""Conformance checking of a custom kernel: `actverify.check(fn, activation=...)`.

The kernel is called with the torch.nn.functional signature of its activation and checked
against the activation's full property set, forward and backward, plus agreement with
PyTorch's own kernel within the accuracy model, on every dtype it supports and every device
present.  What it declares it does not support is reported as not checked, never as passed.

By default a kernel given by name runs in a supervised worker process (actverify/isolation.py):
exits, crashes and calls stuck in C become findings and the run goes on.  A callable that
cannot be imported by name runs in this process (`isolate=False`).

The supervised mode imports no torch in this process: its workers check the names, plan and
run (they are forked from one process that imports torch once, about 1.5 s of CPU on a
2-core x86 machine with torch 2.13.0 CPU: actverify/isolation.py), and this process keeps
the report from plain data.  The fork server starts before the command line is parsed, and
all workers before this process waits for the first plan.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from rich.console import Console

from actverify.errors import UsageError
from actverify.names import dtype_name
from actverify.outcomes import Outcome
from actverify.outputs import writable_file
from actverify.planned import Plan
from actverify.progress import progress
from actverify.profiles import chosen_profile, profile_settings
from actverify.report import Report
from actverify.targets import Target, check_reference
from actverify.threads import available_cores, check_worker_count

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
          workers: int | None = None, console: Console | None = None) -> Report:
    """Check `kernel` (a callable, 'module:attr', 'file.py:attr' or a Target) and return the
    report; `report.verdict` and `report.exit_status` say how it went (docs/check.md).

    `isolate`: run the kernel in a supervised worker (default: when it can be imported by
    name); `call_timeout`: seconds each call of the kernel may take; `properties`: only these;
    `profile`: default $ACTVERIFY_PROFILE, else `check`; `workers`: supervised worker
    processes sharing the properties (default: one per core, at most MAX_CHECK_WORKERS and
    one per RUNS_PER_WORKER planned runs).
    """
    timeline = Timeline.from_env()
    call_timeout = check_timeout(call_timeout)
    check_worker_count(workers)
    # Spellings checked here, torch-free: a misspelt dtype costs no worker's torch import.
    dtypes = [dtype_name(d) if isinstance(d, str) else d for d in dtypes] if dtypes else None
    devices = list(devices) if devices else None
    profile = profile or chosen_profile("check")
    settings = profile_settings(profile)
    names = list(properties) if properties else None
    json_file = writable_file(json_path, option="--json") if json_path else None
    source = kernel if isinstance(kernel, str) else getattr(kernel, "source", None)
    if isolate is None:
        isolate = source is not None
    if isolate and source is None:
        raise UsageError("isolation runs the kernel in a subprocess, which must import it: "
                         "pass it as 'module:attr' or 'path/file.py:attr', or isolate=False")
    console = console or Console(stderr=True)
    if isolate:
        check_reference(source)  # what can be told without running the kernel's code
        return _supervised(source, activation=activation, dtypes=dtypes, devices=devices,
                           policy=policy, kink=kink, profile=profile, names=names,
                           call_timeout=call_timeout, workers=workers, json_file=json_file,
                           console=console, timeline=timeline)
    # In this process: the names are checked here, before any work.
    from actverify.accuracy import policy_named
    from actverify.devices import available_devices, resolve_device
    from actverify.dtypes import DTYPE_NAMES, float_format
    from actverify.plan import plan_check, subject_for
    from actverify.properties import all_properties
    from actverify.runner import run_property
    from actverify.targets import as_target

    chosen_dtypes = [float_format(d).name for d in dtypes] if dtypes else list(DTYPE_NAMES)
    chosen_devices = [resolve_device(d) for d in devices] if devices else list(available_devices())
    pol = policy_named(policy, kink=kink)
    props = all_properties()
    for name in names or ():
        if name not in props:
            raise UsageError(f"unknown property {name!r}; use one of {', '.join(props)}")
    target = as_target(kernel, activation)
    plan = plan_check(target, dtypes=chosen_dtypes, devices=chosen_devices, properties=names)

    def run_here(dtype: str, device: str, name: str) -> Outcome:
        return run_property(props[name], subject_for(target, dtype, device, pol),
                            settings=settings, call_timeout=call_timeout)

    timeline.mark("parent ready")
    return _run(plan, [run_here], json_file=json_file, devices_given=devices is not None,
                devices_present=available_devices(), console=console, timeline=timeline)


def _supervised(source: str, *, activation: str | None, dtypes: list[str] | None,
                devices: list[str] | None, policy: str, kink: str, profile: str,
                names: list[str] | None, call_timeout: float, workers: int | None,
                json_file: Path | None, console: Console, timeline: Timeline) -> Report:
    """The check in supervised workers: all of them are launched now (forked from the server
    that imports torch once, elsewhere spawned side by side); the first to plan gives the
    plan, which says how many are kept."""
    from actverify.isolation import Supervisor, prestart

    started = workers_to_start(workers, properties=names, dtypes=dtypes, devices=devices)
    prestart(started)
    timeline.mark("parent ready")  # what follows waits for the workers
    with contextlib.ExitStack() as stack:
        supervisors = []
        for _ in range(started):
            made = Supervisor(source=source, activation=activation, policy=policy, kink=kink,
                              profile=profile, call_timeout=call_timeout, dtypes=dtypes,
                              devices=devices, properties=names)
            stack.callback(made.close)
            made.launch()
            supervisors.append(made)
        ready = supervisors[0].await_ready()  # names checked, the target imported, planned
        plan = ready.plan
        timeline.mark("plan")
        kept = supervisors[:check_workers(workers, plan)]
        for extra in supervisors[len(kept):]:  # a small plan: their warm-up would not pay
            extra.close()
        return _run(plan, [s.run for s in kept], json_file=json_file,
                    devices_given=devices is not None, devices_present=ready.devices,
                    console=console, timeline=timeline)


MAX_CHECK_WORKERS = 4
# Property runs a worker must take over to pay for itself.  A forked worker imports nothing,
# but warms up on its own (first calls, caches): the second worker of the 93-run check cost up
# to about 1 s of CPU more than one worker did, measured under load on a 2-core x86 machine
# with torch 2.13.0 CPU, where the 93 runs cost 3.6 s: about 25 runs' worth.  (A spawned
# worker, where there is no fork, also imports torch: about 40 runs' worth.)  A check of a
# few properties keeps one worker.
RUNS_PER_WORKER = 40


def _default_workers(runs: int | None) -> int:
    """One worker per available core, at most MAX_CHECK_WORKERS and one per RUNS_PER_WORKER
    of `runs` planned runs (None: not known yet)."""
    most = min(available_cores(), MAX_CHECK_WORKERS)
    return max(1, most if runs is None else min(most, runs // RUNS_PER_WORKER))


def check_workers(workers: int | None, plan: Plan) -> int:
    """How many supervised workers share a check: `workers`, else `_default_workers` of the
    plan (docs/performance.md); never more than the plan has runs."""
    return max(1, min(_default_workers(plan.size) if workers is None else workers, plan.size))


# Per property, dtype and device, the most runs a plan can hold; the devices of a check that
# names none: the CPU and at most one more (a GPU), as `available_devices` finds them.
_MOST_DTYPES, _MOST_DEVICES = 4, 2


def workers_to_start(workers: int | None, *, properties: list[str] | None,
                     dtypes: list[str] | None, devices: list[str] | None) -> int:
    """How many workers to start before the plan is known (check_workers says how many are
    kept once it is): `workers`, else as many as check_workers can keep; a check of named
    properties whose plan cannot reach RUNS_PER_WORKER runs per worker starts fewer."""
    if workers is not None:
        return workers
    most_runs = (len(properties) * (len(dtypes) if dtypes else _MOST_DTYPES)
                 * (len(devices) if devices else _MOST_DEVICES)) if properties else None
    return _default_workers(most_runs)


class Timeline:
    """When a check reached its steps, printed on stderr when ACTVERIFY_TIMELINE holds the
    Unix time its command was launched at (benchmarks/check_report.py sets it): seconds from
    the launch, interpreter start-up included, to the parent being ready (its own start-up
    done: from there it waits for its workers), the plan, the first result and the end."""

    ENV = "ACTVERIFY_TIMELINE"

    def __init__(self, launched: float | None) -> None:
        self.launched = launched
        self.marks: dict[str, float] = {}

    @classmethod
    def from_env(cls) -> "Timeline":
        text = os.environ.get(cls.ENV, "").strip()
        try:
            return cls(float(text) if text else None)
        except ValueError:
            raise UsageError(f"{cls.ENV}={text!r} must be a Unix time in seconds "
                             "(time.time() when the command was launched)") from None

    def mark(self, step: str) -> None:
        if self.launched is not None and step not in self.marks:
            self.marks[step] = time.time() - self.launched

    def print(self) -> None:
        if self.launched is not None:
            print("timeline: " + ", ".join(f"{k} {v:.3f} s" for k, v in self.marks.items()),
                  file=sys.stderr, flush=True)


Run = Callable[[str, str, str], Outcome]  # (dtype, device, property) -> its outcome


@contextlib.contextmanager
def _outcomes(items: list[tuple[str, str, str]], runs: list[Run]
              ) -> Iterator[Iterator[tuple[int, Outcome]]]:
    """(index in `items`, outcome) of every item, each run by one of `runs` (one thread each:
    a supervised worker's runs wait on its pipe, not on the GIL), as they complete.  Several
    runs take the items from the end of the plan back: a plan lists float64 last (its runs
    cost the most: an extended-precision reference) and each dtype's semantic checks
    (signature, input left unmodified, ...) first, the cheapest; so the longest runs start
    first and cheap ones fill in at the end, instead of one worker finishing float64 alone
    while the other idles.  The report keeps plan order (`Report.add`'s place).  Leaving the
    block stops handing out items; what is running then is left to the caller's clean-up
    (closing the workers)."""
    if len(runs) == 1:
        yield ((i, runs[0](*item)) for i, item in enumerate(items))
        return
    finished: queue.Queue[tuple[int, Outcome | BaseException]] = queue.Queue()
    order = iter(range(len(items) - 1, -1, -1))
    hand_out = threading.Lock()
    stop = threading.Event()

    def serve(run: Run) -> None:
        while not stop.is_set():
            with hand_out:
                i = next(order, None)
            if i is None:
                return
            try:
                result: Outcome | BaseException = run(*items[i])
            except BaseException as exc:  # handed to the main thread, which raises it
                result = exc
            finished.put((i, result))

    def as_completed() -> Iterator[tuple[int, Outcome]]:
        for _ in items:
            i, result = finished.get()  # SIGINT/SIGTERM interrupt it in the main thread
            if isinstance(result, BaseException):
                raise result
            yield i, result

    for run in runs:
        threading.Thread(target=serve, args=(run,), daemon=True,
                         name="actverify-check-worker").start()
    try:
        yield as_completed()
    finally:
        stop.set()


def _run(plan: Plan, runs: list[Run], *, json_file: Path | None, devices_given: bool,
         devices_present: Iterable[str], console: Console, timeline: Timeline) -> Report:
    """Run the plan on `runs` (each gives the outcome of one property; several run side by
    side), keeping the report in plan order; SIGINT or SIGTERM stop it with what was gathered
    (the report says what did not run)."""
    report = Report(json_path=json_file, target=plan.target, activation=plan.activation,
                    planned=plan.size)
    if not devices_given and "cuda" not in devices_present:
        report.skip("no CUDA device present", device="cuda")
    if plan.limits:
        report.skip(f"declared by the target: {plan.limits}")
    if not plan.backward:
        report.skip("declared by the target: no backward", kind="backward")
    for s in plan.subjects:
        if s.why_not:
            report.skip(s.why_not, dtype=s.dtype, device=s.device)
    items = [(s.dtype, s.device, name) for s in plan.subjects for name in s.to_run]
    with report.running(), _outcomes(items, runs) as outcomes, \
            progress(total=plan.size, label="checking", console=console) as bar:
        for place, outcome in outcomes:
            timeline.mark("first result")
            bar.describe(f"{plan.target} {outcome.dtype} {outcome.device}")
            report.add(outcome, place=place)
            bar()
    timeline.mark("done")
    timeline.print()
    return report
