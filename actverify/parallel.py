"""Property runs spread over worker processes, outcomes back in order.

Property checking runs one intra-op thread per process (actverify/threads.py), so a run of many
properties gets its parallelism from processes: `run_all` hands (property, subject) pairs to
forked workers and gives back the outcomes in the order of the work list, so that a report
prints and saves them as a serial run would.

Workers are forked (the work list, targets and compiled state are inherited, nothing has to be
pickled but the outcomes); where fork is unavailable, or with one worker, the runs happen here.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import signal
from collections.abc import Callable, Iterator, Sequence

from hypothesis import settings as Settings

from actverify.properties import Property, Subject
from actverify.runner import Outcome, run_property
from actverify.threads import available_cores, check_worker_count

# The work of the running `run_all`, inherited by its forked workers.
_WORK: Sequence[tuple[Property, Subject]] = ()
_SETTINGS: Settings | None = None
_RUN: Callable[..., Outcome] = run_property


def _run_one(index: int) -> Outcome:
    prop, subject = _WORK[index]
    return _RUN(prop, subject, settings=_SETTINGS)


def _ignore_signals_in_worker() -> None:
    """A worker leaves SIGINT and SIGTERM to the parent: Ctrl-C reaches the whole process
    group, and the parent's handler (report.interruptible, inherited by the fork) must not
    raise in a worker; the parent stops the pool (terminate: SIGTERM, now fatal) and keeps
    its report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def default_workers(n_items: int) -> int:
    return max(1, min(available_cores(), n_items))


@contextlib.contextmanager
def run_all(work: Sequence[tuple[Property, Subject]], *, settings: Settings | None = None,
            workers: int | None = 1, run: Callable[..., Outcome] = run_property
            ) -> Iterator[Iterator[Outcome]]:
    """A context whose value iterates over `run_property` of every (property, subject) in
    `work`, in its order, run on `workers` processes (None: one per available core).  `run`
    stands for `run_property` (the same signature).

    The workers are forked on entry: enter this before starting threads (a progress bar's
    refresh thread), so that no lock a thread holds is copied into a worker."""
    global _WORK, _SETTINGS, _RUN
    check_worker_count(workers)
    n = default_workers(len(work)) if workers is None else min(workers, max(1, len(work)))
    if n == 1 or "fork" not in mp.get_all_start_methods():
        yield (run(prop, subject, settings=settings) for prop, subject in work)
        return
    _WORK, _SETTINGS, _RUN = work, settings, run
    # What the workers inherit is frozen: their garbage collections then leave out torch's
    # and Hypothesis's objects (as the fork server of `check` does, actverify/isolation.py),
    # and this process takes them back when the pool is done.
    gc.collect()
    gc.freeze()
    try:
        with mp.get_context("fork").Pool(n, initializer=_ignore_signals_in_worker) as pool:
            # chunksize 1: runs differ in length by 100x; the order they complete in decides
            # only when an outcome can be shown
            yield pool.imap(_run_one, range(len(work)), chunksize=1)
    finally:
        gc.unfreeze()
        _WORK, _SETTINGS, _RUN = (), None, run_property
