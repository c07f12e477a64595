"""How many intra-op threads torch uses, decided in one place.

Property checking calls kernels on the small tensors Hypothesis draws (a few to a few
thousand elements, rarely 10^5): there, torch's intra-op thread pool costs more than it
gives, and on a busy machine it costs far more (a thread that spins at a barrier while its
core runs someone else's work).  Measured on a 2-core x86 machine with torch 2.13.0 CPU, one
other CPU-bound process running: a probe of example-sized torch ops took 20 s with torch's
default of 2 threads and 0.58 s with 1 (docs/performance.md).  So property checking runs one
intra-op thread per process, and parallelism comes from processes: pytest-xdist workers,
`actverify fuzz --workers`, the worker process of `actverify check`.

Sweeps evaluate chunks of 2^18 to 2^22 elements, where threads do pay: they use every core
the process may run on (its CPU affinity, which a container or `taskset` narrows), unless
told otherwise.

The choice, highest first: `--threads N` of every command; else OMP_NUM_THREADS when it is
set (torch reads it too, at import); else the default of the kind of work above.  The chosen
count is exported as OMP_NUM_THREADS so that the processes a command starts inherit it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, MutableMapping
from typing import Literal

from actverify.errors import UsageError

ENV_VAR = "OMP_NUM_THREADS"
#: Intra-op threads of property checking (see the module docstring for the measurement).
PROPERTY_THREADS = 1

Work = Literal["properties", "sweep"]


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _from_env(environ: MutableMapping[str, str]) -> int | None:
    text = environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    try:
        n = int(text.split(",")[0])  # OpenMP allows a list (nested levels): the first counts
    except ValueError:
        raise UsageError(f"{ENV_VAR}={text!r} is not a positive integer; unset it or set e.g. "
                         f"{ENV_VAR}=1") from None
    if n < 1:
        raise UsageError(f"{ENV_VAR}={text!r} must be at least 1")
    return n


def check_threads(threads: int | None) -> int | None:
    """Validate a `--threads` value (None: not given)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {threads!r}")
    return threads


def check_worker_count(workers: int | None) -> None:
    """A `--workers` value must be a positive integer (None: the command's default)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise UsageError(f"--workers must be a positive integer, got {workers!r}")


def resolve(*, threads: int | None = None, work: Work = "properties",
            environ: MutableMapping[str, str] | None = None) -> int:
    """The intra-op thread count for `work`: `threads` if given, else OMP_NUM_THREADS if set,
    else one for property checking and every available core for sweeps."""
    if work not in ("properties", "sweep"):
        raise UsageError(f"work must be 'properties' or 'sweep', got {work!r}")
    explicit = check_threads(threads)
    if explicit is not None:
        return explicit
    env = _from_env(os.environ if environ is None else environ)
    if env is not None:
        return env
    return PROPERTY_THREADS if work == "properties" else available_cores()


def apply(*, threads: int | None = None, work: Work = "properties",
          export: bool = True) -> int:
    """Resolve the count for `work`, give it to torch, and (with `export`) to OMP_NUM_THREADS
    for the processes started from here on; returns it."""
    import torch

    n = resolve(threads=threads, work=work)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if export:
        os.environ[ENV_VAR] = str(n)
    return n


def export(*, threads: int | None = None, work: Work = "properties") -> int:
    """Resolve the count for `work` and export it as OMP_NUM_THREADS, without importing torch:
    for a process that leaves torch to the processes it starts (`actverify check`'s supervising
    parent); torch reads the variable when it is imported.  Returns it."""
    n = resolve(threads=threads, work=work)
    os.environ[ENV_VAR] = str(n)
    return n


@contextlib.contextmanager
def limited(n: int | None) -> Iterator[None]:
    """torch uses `n` intra-op threads inside the block (None: leave it as it is)."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(check_threads(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def child_env(env: MutableMapping[str, str], *, threads: int | None = None) -> int:
    """Give the worker processes of property checking their thread count in `env` (a copy of
    os.environ about to start them): `threads` if given, else what is already there, else one;
    returns it."""
    n = resolve(threads=threads, work="properties", environ=env)
    env[ENV_VAR] = str(n)
    return n


def configure_pytest(config) -> None:
    """For pytest_configure: every pytest process (the controller and each xdist worker)
    checks properties with `resolve()` threads; a bad OMP_NUM_THREADS stops the run with
    status 2 and one line.  An xdist controller runs no test: it only exports the count its
    workers inherit, since importing torch there (about 2 s of CPU) would delay the start of
    every worker and check nothing."""
    import pytest

    controller = (bool(config.getoption("numprocesses", None))
                  and not hasattr(config, "workerinput"))
    try:
        if controller:
            export(work="properties")
        else:
            apply(work="properties")
    except UsageError as exc:
        pytest.exit(f"actverify: {exc}", returncode=2)


def add_argument(parser, *, work: Work = "properties") -> None:
    """The `--threads N` option of a command doing `work`."""
    default = (f"{PROPERTY_THREADS} (processes give the parallelism)" if work == "properties"
               else "every core this process may use")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help=f"torch intra-op threads (default: ${ENV_VAR} if set, else "
                             f"{default})")
