"""What the pytest processes of a fuzz session tell the orchestrator: JSON lines appended to the
file named by $ACTVERIFY_PROGRESS (set by `actverify fuzz`; unset, nothing is written).

Three kinds of record, one JSON object a line, each written with one `write` of a whole line
on a file opened with O_APPEND, so that the lines of concurrent processes never interleave:

* `{"kind": "collected", "items": N}`: the tests a worker collected (after -k, the shard and
  deselection; with --actverify-rounds, those of one round; every xdist worker collects the
  same ones);
* `{"kind": "result", "test": ID, "status": "PASSED" | "FAILED" | "ERROR" | "SKIPPED" | ...,
  "round": R, "seconds": S, "text": ...}`: a test's result, as pytest's own report words it,
  in round R of --actverify-rounds (None without), with its failure's evidence (written by the process that
  reports: the xdist controller, which also reports a worker that crashed; or the one
  process without workers);
* `{"kind": "property", "status": "running" | "passed" | "failed" | ..., "examples": N,
  "values": N, ...}`: a property's figures while it runs and when it ends
  (`actverify.runner.run_property` calls `track_progress`), then with its wall and CPU
  seconds, the failure's text and replay command.

Test ids are pytest node ids relative to the rootdir (`test_values.py::test_property[...]`).

This module is part of actverify's pytest plugin (actverify/plugin.py).  It also makes a
session whose only failures are timeouts exit 3, incomplete, as the commands do.

(PYTEST_DONT_REWRITE: no asserts here; pytest need not rewrite this module.)
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pluggy import HookimplMarker

from actverify.fuzzing.shard import ROUND_KEY
from actverify.outcomes import TIMED_OUT_MARK, Outcome, format_failure

hookimpl = HookimplMarker("pytest")

RECORDS_ENV = "ACTVERIFY_PROGRESS"
PROGRESS_INTERVAL = 0.5  # seconds between the records about a running property
EVIDENCE_LINES = 40  # at most this many lines of a failure's text per record


def _write(path: str, record: dict) -> None:
    data = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)  # one write of a whole line: O_APPEND keeps processes' lines apart
    finally:
        os.close(fd)


def read_records(path: Path, offset: int) -> tuple[list[dict], int]:
    """The whole records after byte `offset` of `path`, and the offset after the last one (a
    line still being written is left for the next call)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    records = []
    for raw in data[:end].splitlines():
        try:
            records.append(json.loads(raw))
        except ValueError:
            continue
    return records, offset + end + 1


# --------------------------------------------------------------------------- property figures

_active: dict[int, list] = {}  # id(outcome) -> [outcome, run id, test id, last examples]
_lock = threading.Lock()
_seq = itertools.count()
_sampler: threading.Thread | None = None


def _property_record(outcome: Outcome, run: str, test: str | None, status: str) -> dict:
    return {"kind": "property", "run": run, "test": test, "property": outcome.property,
            "target": outcome.target, "dtype": outcome.dtype, "device": outcome.device,
            "examples": outcome.examples, "values": outcome.values, "status": status}


def _sample(path: str) -> None:
    while True:
        time.sleep(PROGRESS_INTERVAL)
        with _lock:
            for entry in list(_active.values()):
                outcome, run, test, last = entry
                if outcome.examples != last:
                    entry[3] = outcome.examples
                    try:
                        _write(path, _property_record(outcome, run, test, "running"))
                    except OSError:
                        pass


def _nothing() -> None:
    return None


def track_progress(outcome: Outcome) -> Callable[[], None]:
    """Record `outcome`'s figures (examples, values) while its property runs, and return the
    function that writes the final record (status, failure).

    A sampler thread reads the counters twice a second, so the Hypothesis test itself is left
    untouched (its source is part of its database key and of its derandomized seed).  Without
    $ACTVERIFY_PROGRESS this does nothing; it never raises.
    """
    global _sampler
    path = os.environ.get(RECORDS_ENV)
    if not path:
        return _nothing
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    test = current.rsplit(" (", 1)[0] or None
    run = f"{os.getpid()}-{next(_seq)}"
    cpu = time.process_time()  # the worker runs one property at a time: its CPU time is this one's
    with _lock:
        _active[id(outcome)] = [outcome, run, test, -1]
        if _sampler is None or not _sampler.is_alive():
            _sampler = threading.Thread(target=_sample, args=(path,), daemon=True,
                                        name="actverify-progress")
            _sampler.start()

    def finished() -> None:
        with _lock:
            _active.pop(id(outcome), None)
            try:
                record = _property_record(outcome, run, test, outcome.status)
                record["seconds"] = round(outcome.seconds, 3)
                record["cpu_seconds"] = round(time.process_time() - cpu, 3)
                if outcome.failure is not None:
                    record["text"] = format_failure(outcome)
                    record["replay"] = outcome.failure.replay
                if outcome.reason:
                    record["reason"] = outcome.reason[:2000]
                _write(path, record)
            except Exception:  # progress is a courtesy: it must never fail a test
                pass

    return finished


# ------------------------------------------------------------------ tests collected and run

def _reports(config) -> bool:
    """Whether this process reports results: not an xdist worker (its controller reports
    what the workers send, and the crash of one)."""
    return not hasattr(config, "workerinput")


def pytest_collection_finish(session) -> None:
    path = os.environ.get(RECORDS_ENV)
    if path:  # an xdist controller collects nothing and never gets here
        items = getattr(session.config, "_actverify_round_size", len(session.items))
        _write(path, {"kind": "collected", "items": items})


def _evidence(report) -> str:
    """A failure's text without pytest's traceback: a test failed with pytest.fail(...,
    pytrace=False) (every property test) gives its message as is, any other its exception."""
    text = report.longreprtext
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and crash.message.removeprefix("Failed: ") != text:
        text = crash.message.removeprefix("AssertionError: ")
    return "\n".join(text.splitlines()[:EVIDENCE_LINES])


def result_record(report, config) -> dict | None:
    """A test's result as pytest's terminal reporter words it (PASSED, FAILED, ERROR, SKIPPED,
    XFAIL, XPASS); None for a phase that is no result (a setup that passed, ...)."""
    category, _, word = config.hook.pytest_report_teststatus(report=report, config=config)
    if not category:
        return None
    word = word[0] if isinstance(word, tuple) else word
    record = {"kind": "result", "test": report.nodeid, "status": word, "when": report.when,
              "round": dict(report.user_properties).get(ROUND_KEY),
              "seconds": round(report.duration, 3)}
    if report.failed:
        record["text"] = _evidence(report)
    return record


class _ResultWriter:
    """Writes each test's result record (registered only where results are reported)."""

    def __init__(self, path: str, config) -> None:
        self.path, self.config = path, config

    def pytest_runtest_logreport(self, report) -> None:
        record = result_record(report, self.config)
        if record is not None:
            _write(self.path, record)


def pytest_configure(config) -> None:
    path = os.environ.get(RECORDS_ENV)
    if path and _reports(config):
        config.pluginmanager.register(_ResultWriter(path, config), "actverify-results")


_FAILED = {"timed_out": 0, "other": 0}


def pytest_runtest_logreport(report) -> None:
    if report.failed:
        key = "timed_out" if TIMED_OUT_MARK in str(report.longrepr or "") else "other"
        _FAILED[key] += 1


@hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    if exitstatus == 1 and _FAILED["timed_out"] and not _FAILED["other"]:
        session.exitstatus = 3
