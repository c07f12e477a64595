"""The supervising parent: the kernel runs in a worker process, the parent keeps the report.

A Supervisor's worker serves a whole run: it checks the run's names (dtypes, devices, policy,
properties), imports the target (the parent never runs the kernel's code), plans the check,
and runs the properties one at a time as the parent asks (`actverify check` may share its plan
among several supervisors, each with its own worker; actverify/check.py).  Only workers
import torch: the parent reads plain data (actverify/planned.py, actverify/outcomes.py), so a
check costs one torch import per worker and none in the parent.  Workers can be started
before the parent has parsed its command line (`prestart`), so that their imports begin at
once.  When a worker dies (a segmentation fault, `os._exit`, a kernel that kills its
process), the property it was running is a finding, and a fresh worker carries on with the
next one.

Time limits.  Every call of the target's code (forward, and the backward autograd runs) gets
the caller's `call_timeout`.  Inside the worker an alarm stops a call that outlives it, as in
the in-process mode; a call stuck in C code never returns to Python to see the alarm, so the
worker also tells the parent, as each call starts, the time by which it must return, and the
parent stops the worker when that time is `grace(call_timeout)` past.

The worker is a fresh interpreter (`python -m actverify.isolation FD`), not a multiprocessing
child: multiprocessing's spawn would run the caller's main script again in the worker.  Nothing else is
timed: a property may take as long as its calls do.  A call that outlives its limit is
"timed out" (the run is incomplete), never a violation: slow and hung look alike from outside,
and the report says how to raise the limit.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from actverify.errors import UsageError
from actverify.planned import Plan, Ready

if TYPE_CHECKING:  # imported where used: the parent imports no torch
    from actverify.outcomes import Outcome

THREADS_ENV = "OMP_NUM_THREADS"  # the parent's thread count, resolved after a prestart

POLL_SECONDS = 0.05  # how often the parent looks at the worker while it runs a property


def grace(call_timeout: float) -> float:
    """How long past a call's limit the parent waits before it stops the worker: time for the
    worker's own alarm to end a call that is in Python (it then reports the timeout itself)."""
    return 1.0 + 0.25 * call_timeout


def _die_with_parent() -> None:
    """The worker must not outlive the parent, even while its main thread is stuck in C."""
    try:  # Linux: the kernel sends SIGKILL when the parent goes
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    parent = os.getppid()

    def watch() -> None:  # elsewhere (and as a second line): notice the parent has gone
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="actverify-parent-watch").start()


def _plan(a: dict) -> tuple[Ready, object]:
    """Check the run's names, import the target and plan it: (what the parent is told, the
    target); UsageError for anything the parent would have refused before any work."""
    from actverify.accuracy import policy_named
    from actverify.devices import available_devices, resolve_device
    from actverify.dtypes import DTYPE_NAMES, float_format
    from actverify.plan import plan_check
    from actverify.properties import all_properties
    from actverify.targets import resolve_target

    pol = policy_named(a["policy"], kink=a["kink"])
    dtypes = [float_format(d).name for d in a["dtypes"]] if a["dtypes"] is not None \
        else list(DTYPE_NAMES)
    devices = [resolve_device(d) for d in a["devices"]] if a["devices"] is not None \
        else list(available_devices())
    known = all_properties()
    for name in a["properties"] or ():
        if name not in known:
            raise UsageError(f"unknown property {name!r}; use one of {', '.join(known)}")
    target = resolve_target(a["source"], a["activation"])
    plan = plan_check(target, dtypes=dtypes, devices=devices, properties=a["properties"])
    kinds = {name: known[name].kind for s in plan.subjects for name in s.properties}
    return Ready(plan, pol.name, kinds, tuple(available_devices())), target


def _worker(conn: Connection) -> None:
    """The worker's main loop: check the names, import the target, send the plan, run what
    the parent asks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    # Everything a run needs, imported before the parent hands over the run: the imports
    # (torch's above all) overlap with the parent's own start-up.
    from actverify.accuracy import policy_named
    from actverify.plan import subject_for
    from actverify.profiles import profile_settings
    from actverify.properties import all_properties, base
    from actverify.runner import Outcome, run_property

    a = conn.recv()
    if a["threads"] is not None:  # the parent's --threads / OMP_NUM_THREADS (threads.py)
        os.environ[THREADS_ENV] = a["threads"]
    base.CALL_WATCH = lambda due: conn.send(("due", due))
    try:
        ready, target = _plan(a)
    except UsageError as exc:
        conn.send(("usage", str(exc)))
        return
    conn.send(("ready", ready))
    pol, settings = policy_named(a["policy"], kink=a["kink"]), profile_settings(a["profile"])
    if a["max_examples"] is not None:
        from hypothesis import settings as Settings

        settings = Settings(settings, max_examples=a["max_examples"])
    props = all_properties()
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] != "run":
            return
        _, dtype, device, name, env = message
        os.environ.update(env)  # e.g. the pytest test it runs for (fuzz's progress lines)
        try:
            outcome = run_property(props[name], subject_for(target, dtype, device, pol),
                                   settings=settings, call_timeout=a["call_timeout"])
        except Exception as exc:  # ours, not the kernel's: the property could not run
            outcome = Outcome(name, target.activation, target.name, dtype, device, pol.name,
                              "error", kind=props[name].kind,
                              reason=f"{type(exc).__name__}: {exc}"[:2000])
        conn.send(("done", outcome))


def _exit_words(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"ended the process with exit status {code} (sys.exit or os._exit in the kernel?)"


def _spawn() -> tuple[subprocess.Popen, Connection]:
    """Start a worker; it imports torch and actverify, then waits for its target."""
    parent, child = Pipe()
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen([sys.executable, "-m", "actverify.isolation",
                             str(child.fileno())], pass_fds=[child.fileno()], env=env)
    child.close()
    return proc, parent


# Started workers no Supervisor has taken yet, oldest first: (process, pipe, the directory
# and environment they were started in).
_PRESTARTED: list[tuple[subprocess.Popen, Connection, str, dict[str, str]]] = []


def prestart(count: int = 1) -> None:
    """Have `count` workers started for the next Supervisors (start the missing ones now):
    each spends about 1.5 s of CPU importing torch, which then overlaps with what this
    process does until it needs them.  A worker no Supervisor takes is stopped by
    `discard_prestarted`, at the latest when this process exits."""
    if not _PRESTARTED:
        atexit.register(discard_prestarted)
    while len(_PRESTARTED) < count:
        _PRESTARTED.append((*_spawn(), os.getcwd(), dict(os.environ)))


def _take_prestarted() -> tuple[subprocess.Popen, Connection] | None:
    """The oldest prestarted worker, if it still lives and was started where this process is
    now (its directory and environment: relative kernel paths and settings mean the same to
    both); one that does not is stopped."""
    while _PRESTARTED:
        proc, conn, cwd, env = _PRESTARTED.pop(0)
        # OMP_NUM_THREADS may be set since (threads.export): the worker is told it (THREADS_ENV)
        same = {k: v for k, v in env.items() if k != THREADS_ENV} == {
            k: v for k, v in os.environ.items() if k != THREADS_ENV}
        if proc.poll() is None and cwd == os.getcwd() and same:
            return proc, conn
        _end(proc, conn)
    return None


def _end(proc: subprocess.Popen, conn: Connection) -> None:
    conn.close()  # it sees EOF and exits; kill in case it is still importing
    proc.kill()
    proc.wait()


def discard_prestarted() -> None:
    """Stop the prestarted workers that no Supervisor took (a usage error came first)."""
    while _PRESTARTED:
        proc, conn, _, _ = _PRESTARTED.pop()
        _end(proc, conn)


class Supervisor:
    """A worker for `source`, watched; `run` gives the outcome of one property on one
    (dtype, device), whatever the kernel does.  Use as a context manager: the worker never
    outlives the block."""

    def __init__(self, *, source: str, activation: str | None, policy: str, kink: str,
                 profile: str | None, call_timeout: float, dtypes: Sequence[str] | None,
                 devices: Sequence[str] | None, properties: Sequence[str] | None = None,
                 max_examples: int | None = None) -> None:
        """`dtypes`, `devices`: names as given (None: every dtype, every device present);
        the worker checks them, and `policy`, `kink` and `properties`, before it plans."""
        self._args = dict(source=source, activation=activation, policy=policy, kink=kink,
                          profile=profile, max_examples=max_examples, call_timeout=call_timeout,
                          threads=os.environ.get(THREADS_ENV),
                          dtypes=None if dtypes is None else list(dtypes),
                          devices=None if devices is None else list(devices),
                          properties=list(properties) if properties else None)
        self.call_timeout = call_timeout
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._launched = False  # a worker was handed the run and has not answered yet
        self._due = 0.0  # when the running call must return (0: no call running)
        self.ready: Ready | None = None  # what the first worker said once it had planned
        self.restarts = 0
        self._closed = False

    @property
    def plan(self) -> Plan | None:
        return None if self.ready is None else self.ready.plan

    def __enter__(self) -> "Supervisor":
        self.launch()
        self.await_ready()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def launch(self) -> None:
        """Start the worker (or take a prestarted one) and hand it the run; returns at once:
        it checks, imports and plans while this process goes on (see `await_ready`)."""
        self._proc, self._conn = _take_prestarted() or _spawn()
        self._launched = True
        try:
            self._conn.send(self._args)
        except OSError:
            pass  # it died already: `await_ready` says so

    def await_ready(self) -> Ready:
        """Wait for the launched worker's plan; UsageError if it refused the run or died."""
        self._launched = False
        try:
            kind, payload = self._conn.recv()  # the kernel's import: not timed (it may compile)
        except (EOFError, OSError):
            code = self._stop()
            raise UsageError(f"cannot import {self._args['source']!r}: the worker importing "
                             f"it {_exit_words(code)}") from None
        if kind == "usage":
            self._stop()
            raise UsageError(payload)
        if self.ready is None:
            self.ready = payload
        else:  # a fresh worker after one died
            self.restarts += 1
        return payload

    def _stop(self, *, kill: bool = False) -> int | None:
        """End the worker (at once with `kill`, else after a moment to exit by itself) and
        return its exit status; None when it had to be killed."""
        proc, self._proc = self._proc, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if proc is None:
            return None
        try:
            if not kill:
                return proc.wait(timeout=2)  # on its way out (it died, or saw EOF)
        except subprocess.TimeoutExpired:
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            return None
        return proc.returncode

    def close(self) -> None:
        self._closed = True  # a run still going in another thread starts no fresh worker
        self._stop(kill=True)  # idle between properties, or interrupted: nothing to wait for

    def run(self, dtype: str, device: str, name: str, *, env: dict[str, str] | None = None
            ) -> Outcome:
        """Run property `name` on (dtype, device) in the worker; a death or a call stuck past
        its limit is turned into the outcome, and the next call gets a fresh worker."""
        if self._proc is None:
            if self._closed:
                raise RuntimeError("the supervisor is closed")
            self.launch()
        if self._launched:  # its first worker may still be planning
            self.await_ready()
        started = time.perf_counter()
        self._due = 0.0
        try:
            self._conn.send(("run", dtype, device, name, dict(env or {})))
        except OSError:
            return self._died(dtype, device, name, started)
        while True:
            try:
                while self._conn.poll(POLL_SECONDS):
                    kind, payload = self._conn.recv()
                    if kind == "done":
                        return payload
                    self._due = payload  # a call started (its deadline) or ended (0.0)
            except (EOFError, OSError):
                return self._died(dtype, device, name, started)
            if self._proc.poll() is not None:
                return self._died(dtype, device, name, started)
            due = self._due
            if due and time.monotonic() > due + grace(self.call_timeout):
                from actverify.outcomes import Failure
                from actverify.runner import mark_timed_out  # (imports torch: a rare path)

                self._stop(kill=True)
                outcome = self._outcome(dtype, device, name, "timed_out", started)
                what = (f"the target did not return within {self.call_timeout:g} s (call "
                        "timeout; stuck outside Python, so its worker process was stopped)")
                mark_timed_out(outcome, what, limit=self.call_timeout,
                               failure=Failure(message=what))
                return outcome

    def _outcome(self, dtype: str, device: str, name: str, status: str, started: float
                 ) -> Outcome:
        from actverify.outcomes import Outcome

        ready = self.ready
        return Outcome(name, ready.plan.activation, ready.plan.target, dtype, device,
                       ready.policy, status, kind=ready.kinds.get(name, "forward"),
                       seconds=time.perf_counter() - started)

    def _died(self, dtype: str, device: str, name: str, started: float) -> Outcome:
        from actverify.outcomes import Failure

        code = self._stop()
        outcome = self._outcome(dtype, device, name, "failed", started)
        outcome.failure = Failure(message=f"the target {_exit_words(code)} while {name} ran; "
                                          "the run went on in a fresh worker process")
        return outcome


if __name__ == "__main__":  # python -m actverify.isolation FD: a worker for Supervisor
    _worker(Connection(int(sys.argv[1])))
