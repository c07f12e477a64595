"""The supervising parent: the kernel runs in a worker process, the parent keeps the report.

A Supervisor's worker serves a whole run: it checks the run's names (dtypes, devices, policy,
properties), imports the target (the parent never runs the kernel's code), plans the check,
and runs the properties one at a time as the parent asks (`actverify check` may share its plan
among several supervisors, each with its own worker; actverify/check.py).  Only workers
import torch: the parent reads plain data (actverify/planned.py, actverify/outcomes.py).

Where the platform allows (Linux), workers are forked from a fork server, a process that
imports torch and actverify once and forks a worker for each Supervisor that asks, before any
torch op has run in it; so a check costs one torch import whatever its number of workers,
and a worker replacing one a fault took down starts in milliseconds.  The server (elsewhere,
a worker) can be started before the parent has parsed its command line (`prestart`), so that
the import begins at once.  When a worker dies (a segmentation fault, `os._exit`, a kernel
that kills its process), the property it was running is a finding, and a fresh worker
carries on with the next one.

Time limits.  Every call of the target's code (forward, and the backward autograd runs) gets
the caller's `call_timeout`.  Inside the worker an alarm stops a call that outlives it, as in
the in-process mode; a call stuck in C code never returns to Python to see the alarm, so the
worker also tells the parent, as each call starts, the time by which it must return, and the
parent stops the worker when that time is `grace(call_timeout)` past.

The fork server (a worker, where there is no fork) is a fresh interpreter (`python -m
actverify.isolation [--fork-server] FD`), not a multiprocessing child: multiprocessing's spawn
would run the caller's main script again in it, and its fork would copy the caller's state
(a pytest session, its threads).  The kernel's module is imported in each worker, never in
the server, so every worker starts from the same clean state.  Nothing else is
timed: a property may take as long as its calls do.  A call that outlives its limit is
"timed out" (the run is incomplete), never a violation: slow and hung look alike from outside,
and the report says how to raise the limit.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
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


def _death_signal() -> None:
    """Linux: the kernel sends this process SIGKILL when its parent goes."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _die_with_parent() -> None:
    """The worker must not outlive the parent, even while its main thread is stuck in C."""
    _death_signal()
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


def _spawn(*, fork_server: bool = False) -> tuple[subprocess.Popen, Connection]:
    """Start a worker (or, with `fork_server`, the fork server); it imports torch and
    actverify, then waits for its target (for fork requests)."""
    parent, child = Pipe()
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen([sys.executable, "-m", "actverify.isolation",
                             *(["--fork-server"] if fork_server else []), str(child.fileno())],
                            pass_fds=[child.fileno()], env=env)
    child.close()
    return proc, parent


# Workers are forked from a fork server where the platform allows (Linux: the death signal
# and passing a pipe over a socket): it imports torch and actverify once (about 1.5 s of CPU
# on a 2-core x86 machine with torch 2.13.0 CPU), and each worker it forks starts in a few
# milliseconds, the first ones of a check and those replacing a worker a fault took down
# alike.  It forks before any torch op runs in it, so no intra-op thread pool exists yet.
FORKS = sys.platform.startswith("linux") and hasattr(os, "fork")
# What a worker inherits that may differ between two workers without mattering: its thread
# count (sent with its run) and the pytest test it runs for (sent with each property).
_PER_RUN_ENV = (THREADS_ENV, "PYTEST_CURRENT_TEST")


def _environment() -> tuple[str, dict[str, str]]:
    """What a worker started now would see: its directory (relative kernel paths) and its
    environment (settings read at import), less what each run sends anyway."""
    return os.getcwd(), {k: v for k, v in os.environ.items() if k not in _PER_RUN_ENV}


# What `_worker` and `_plan` import: a fork server imports it once for all its workers.
_WORKER_MODULES = ("actverify.accuracy", "actverify.devices", "actverify.dtypes",
                   "actverify.plan", "actverify.profiles", "actverify.properties",
                   "actverify.runner", "actverify.targets")


def _serve_forks(conn: Connection) -> None:
    """The fork server's loop: import what a worker needs, then fork a worker for each pipe
    the parent passes, and tell the parent how its workers ended (they are not its
    children: it cannot wait for them itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _death_signal()  # no watch thread here: a fork copies only the forking thread
    import importlib
    from multiprocessing.reduction import recv_handle

    for module in _WORKER_MODULES:
        importlib.import_module(module)
    # Everything imported so far lives as long as the workers do: frozen, it is left out of
    # their garbage collections (each full collection walked torch's and Hypothesis's
    # objects again: about 0.2 s of CPU per worker in the first runs of a check, measured on
    # a 2-core x86 machine with torch 2.13.0 CPU) and their pages stay shared with this
    # process (Python's advice for a process that forks without exec).
    gc.collect()
    gc.freeze()

    while True:
        try:
            message = conn.recv()
        except EOFError:
            return  # the parent has gone: so do the workers (their death signal)
        if message[0] == "fork":
            fd = recv_handle(conn)
            pid = os.fork()
            if pid == 0:
                conn.close()
                os._exit(_forked_worker(fd))
            os.close(fd)
            conn.send(("pid", pid))
        elif message[0] == "status":
            try:
                done, status = os.waitpid(message[1], os.WNOHANG)
                code = os.waitstatus_to_exitcode(status) if done else None
            except ChildProcessError:  # reaped already: asked again after it ended
                code = -signal.SIGKILL
            conn.send(("status", code))


def _forked_worker(fd: int) -> int:
    """A forked worker's life; returns its exit status, as a process of its own would end."""
    code = 1
    try:
        _die_with_parent()
        _worker(Connection(fd))
        code = 0
    except SystemExit as exc:  # as the interpreter would exit on it
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return code


class _Forked:
    """A worker forked by the fork server, with what a Supervisor uses of subprocess.Popen."""

    def __init__(self, server: "_ForkServer", pid: int) -> None:
        self._server, self.pid, self.returncode = server, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.status(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            time.sleep(0.01)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)  # not reaped yet: the pid is still its own
            except ProcessLookupError:
                pass


class _ForkServer:
    """The fork server, seen from the parent: one request at a time over its pipe (fork a
    worker, passing it its pipe; how did a worker end)."""

    def __init__(self) -> None:
        self.proc, self._conn = _spawn(fork_server=True)
        self.environment = _environment()
        self._lock = threading.Lock()  # one request at a time (supervisors run in threads)

    def fork(self) -> tuple[_Forked, Connection] | None:
        """A new worker and the parent's end of its pipe; None if the server is gone.  Waits
        for the server's imports the first time."""
        from multiprocessing.reduction import send_handle

        parent, child = Pipe()
        try:
            with self._lock:
                self._conn.send(("fork",))
                send_handle(self._conn, child.fileno(), self.proc.pid)
                _, pid = self._conn.recv()
        except (EOFError, OSError):
            parent.close()
            return None
        finally:
            child.close()
        return _Forked(self, pid), parent

    def status(self, pid: int) -> int | None:
        """A forked worker's exit status (None: still running)."""
        try:
            with self._lock:
                self._conn.send(("status", pid))
                return self._conn.recv()[1]
        except (EOFError, OSError):  # the server has gone, and its workers with it
            return -signal.SIGKILL

    def close(self) -> None:
        _end(self.proc, self._conn)


_SERVER: _ForkServer | None = None
# Without fork: started workers no Supervisor has taken yet, oldest first, with the
# directory and environment they were started in.
_PRESTARTED: list[tuple[subprocess.Popen, Connection, tuple]] = []


def _fork_server() -> _ForkServer:
    """The fork server, started now unless one runs that was started where this process is
    now (directory and environment: relative kernel paths and settings mean the same)."""
    global _SERVER
    if _SERVER is not None and (_SERVER.proc.poll() is not None
                                or _SERVER.environment != _environment()):
        _SERVER.close()
        _SERVER = None
    if _SERVER is None:
        _SERVER = _ForkServer()
    return _SERVER


def prestart(count: int = 1) -> None:
    """Get the next Supervisors' workers going now: the fork server (whose workers start in
    milliseconds once it has imported torch), else `count` workers.  Either spends about
    1.5 s of CPU importing torch, which then overlaps with what this process does until it
    needs them.  What no Supervisor takes is stopped by `discard_prestarted`, at the latest
    when this process exits."""
    if FORKS:
        _fork_server()
        return
    while len(_PRESTARTED) < count:
        _PRESTARTED.append((*_spawn(), _environment()))


def _new_worker() -> tuple[subprocess.Popen | _Forked, Connection]:
    """A worker for a Supervisor: forked, else the oldest prestarted one that still lives and
    was started where this process is now, else a fresh one."""
    if FORKS:
        made = _fork_server().fork()
        if made is not None:
            return made
    while _PRESTARTED:
        proc, conn, environment = _PRESTARTED.pop(0)
        if proc.poll() is None and environment == _environment():
            return proc, conn
        _end(proc, conn)
    return _spawn()


def _end(proc: subprocess.Popen | _Forked, conn: Connection) -> None:
    conn.close()  # it sees EOF and exits; kill in case it is still importing
    proc.kill()
    proc.wait()


def discard_prestarted() -> None:
    """Stop the fork server (unless a `shared_fork_server` block keeps it) and the prestarted
    workers that no Supervisor took (a usage error came first, or this process is exiting)."""
    global _SERVER
    server, _SERVER = (None, _SERVER) if _SHARED else (_SERVER, None)
    if server is not None:
        server.close()
    while _PRESTARTED:
        proc, conn, _ = _PRESTARTED.pop()
        _end(proc, conn)


atexit.register(discard_prestarted)

_SHARED = False  # inside `shared_fork_server`


@contextlib.contextmanager
def shared_fork_server() -> Iterator[None]:
    """One fork server for every check this process runs in the block: `actverify check`'s
    `main` stops its server when it is done, which in a process that runs many checks (a test
    session) costs each of them the server's torch import.  The server is still replaced
    when this process's directory or environment changes (`_fork_server`), and every worker
    is still forked from it before any torch op, one per Supervisor, dying with this process;
    the block's end stops it."""
    global _SHARED
    _SHARED = True
    try:
        yield
    finally:
        _SHARED = False
        discard_prestarted()


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
        self._proc: subprocess.Popen | _Forked | None = None
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
        self._proc, self._conn = _new_worker()
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
                from actverify.outcomes import Failure, mark_timed_out

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


if __name__ == "__main__":  # python -m actverify.isolation [--fork-server] FD
    if sys.argv[1] == "--fork-server":
        _serve_forks(Connection(int(sys.argv[2])))
    else:  # a worker for Supervisor
        _worker(Connection(int(sys.argv[1])))
