"""Fuzz the property suite for a time budget, in parallel, and shard it across CI jobs.

    actverify fuzz --minutes 30 --workers 4 --shard 2/4 --db redis://ci-cache:6379/0
    python -m actverify.fuzz --minutes 5 --target kernels.py:sigmoid=sigmoid -- -k accuracy

`fuzz` runs `pytest --pyargs actverify.testsuite` (the suite installed with the package; from
the current directory, where targets, replay files and the example database are) in a
subprocess, under pytest-xdist (`-n WORKERS`) and the `actverify-fuzz` Hypothesis profile,
in rounds: each round runs every selected property once, in an order shuffled by the round's
seed, with at most 5, 20, 80, ... examples per property (up to the profile's max_examples):
coverage before depth, every planned test gets its first examples before any gets more.
No round starts when the budget is nearly spent; the running round's process
group gets SIGINT 15 s before the deadline (at most a tenth of the budget; pytest writes its
report and JUnit XML) and SIGKILL at the deadline.  A round in which a property fails is
finished, and no round follows it.
Hypothesis draws fresh random seeds in every round: `--hypothesis-seed` is never passed,
because Hypothesis turns the example database off for tests run under a fixed seed.

Live progress (examples per second, values checked, failures) comes from JSON lines that
`track_progress` appends, in every worker, to the file named by ACTVERIFY_PROGRESS;
pass/fail counts also come from pytest's own output.  Each failure is printed with the
commands that reproduce it: the exact case (a replay file) and the run that replays it from
the example database.

Exit status (the table in README.md): 0 every planned test ran at least once and none failed,
1 a property failed, 2 a usage error (output paths are checked before the budget is spent),
3 incomplete: the budget ran out before every planned test ran once, SIGINT or SIGTERM
stopped the run (the round's whole process group is killed; the summary, JSON and JUnit XML
are written from what was found), or every test was skipped (nothing checked).

This module is also part of actverify's pytest plugin (actverify/plugin.py: `pytest_plugins =
["actverify.fuzz"]`); it adds

    --actverify-shard K/N         run only the tests whose id hashes to shard K of N
    --actverify-order SEED        shuffle the tests with this seed (the same in every worker)
    --actverify-max-examples N    cap max_examples of the loaded Hypothesis profile

(PYTEST_DONT_REWRITE: this module may be imported before pytest loads it as a plugin, and
it has no asserts to rewrite, so pytest need not warn about it.)
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import queue
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pluggy import HookimplMarker

from actverify.errors import UsageError
from actverify.threads import add_argument as add_threads_argument, child_env
from actverify.threads import resolve as resolve_threads

hookimpl = HookimplMarker("pytest")

PROGRESS_ENV = "ACTVERIFY_PROGRESS"
FIRST_ROUND_EXAMPLES = 5  # examples per property in round 1 (coverage first); x4 each round after
MIN_ROUND_SECONDS = 10.0  # never start a round with less budget left than this
# pytest-xdist needs ~13 s after SIGINT to write its report (it waits up to 10 s for the
# workers): the round gets SIGINT this long before the deadline (at most a tenth of the
# budget) and SIGKILL at the deadline, so the run never outlasts its budget.
GRACE_SECONDS = 15.0

# ---------------------------------------------------------------------------------------------
# Progress lines, written by the workers: actverify.runner.run_property calls
# `track_progress(outcome)` before its search and the function it returns after.

PROGRESS_INTERVAL = 0.5  # seconds between the lines about a running property

_active: dict[int, list] = {}  # id(outcome) -> [outcome, run id, test id, last examples]
_lock = threading.Lock()
_seq = itertools.count()
_sampler: threading.Thread | None = None


def _write(path: str, record: dict) -> None:
    data = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)  # one write of a whole line: O_APPEND keeps workers' lines apart
    finally:
        os.close(fd)


def _record(outcome, run: str, test: str | None, status: str) -> dict:
    return {"run": run, "test": test, "property": outcome.property, "target": outcome.target,
            "dtype": outcome.dtype, "device": outcome.device, "examples": outcome.examples,
            "values": outcome.values, "status": status}


def _sample(path: str) -> None:
    while True:
        time.sleep(PROGRESS_INTERVAL)
        with _lock:
            for entry in list(_active.values()):
                outcome, run, test, last = entry
                if outcome.examples != last:
                    entry[3] = outcome.examples
                    try:
                        _write(path, _record(outcome, run, test, "running"))
                    except OSError:
                        pass


def _nothing() -> None:
    return None


def track_progress(outcome):
    """Report `outcome`'s figures (examples, values) as JSON lines to $ACTVERIFY_PROGRESS while
    its property runs, and return the function that writes the final line (status, failure).

    A sampler thread reads the counters twice a second, so the Hypothesis test itself is left
    untouched (its source is part of its database key and of its derandomized seed).  Without
    ACTVERIFY_PROGRESS this does nothing; it never raises.
    """
    global _sampler
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return _nothing
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    test = current.rsplit(" (", 1)[0] or None
    run = f"{os.getpid()}-{next(_seq)}"
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
                record = _record(outcome, run, test, outcome.status)
                record["seconds"] = round(outcome.seconds, 3)
                if outcome.failure is not None:
                    from actverify.runner import format_failure

                    record["text"] = format_failure(outcome)
                    record["replay"] = outcome.failure.replay
                if outcome.reason:
                    record["reason"] = outcome.reason[:2000]
                _write(path, record)
            except Exception:  # progress is a courtesy: it must never fail a test
                pass

    return finished


# ---------------------------------------------------------------------------------------------
# Sharding.

def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; UsageError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise UsageError(f"shard {text!r} must be K/N, e.g. 2/4 for the second of four shards")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"shard {text!r}: K must be between 1 and N (N >= 1), e.g. 1/{max(n, 1)}")
    return k, n


def shard_of(test_id: str, n: int) -> int:
    """The shard (1..n) of a test: a stable hash of its id, the same on every machine and in
    every process (Python's hash() is salted; this is not), and untouched when other tests
    are added or removed."""
    digest = hashlib.sha256(test_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def select_shard(test_ids: Sequence[str], k: int, n: int) -> list[str]:
    return [t for t in test_ids if shard_of(t, n) == k]


# ---------------------------------------------------------------------------------------------
# pytest plugin.

def pytest_addoption(parser) -> None:
    group = parser.getgroup("actverify")
    group.addoption("--actverify-shard", metavar="K/N", default=None,
                    help="run only shard K of N: the tests whose id hashes to K (N CI jobs "
                         "cover the suite without overlap)")
    group.addoption("--actverify-order", metavar="SEED", type=int, default=None,
                    help="shuffle the tests with this seed (every xdist worker alike)")
    group.addoption("--actverify-max-examples", metavar="N", type=int, default=None,
                    help="cap max_examples of the loaded Hypothesis profile (fuzz rounds)")


@hookimpl(trylast=True)  # after Hypothesis's plugin has loaded --hypothesis-profile
def pytest_configure(config) -> None:
    import pytest

    shard = config.getoption("actverify_shard", None)
    n = config.getoption("actverify_max_examples", None)
    try:
        if shard is not None:
            parse_shard(shard)
        if n is not None and n < 1:
            raise UsageError(f"--actverify-max-examples must be at least 1, got {n}")
    except UsageError as exc:
        pytest.exit(f"actverify: {exc}", returncode=2)
    if n is not None:
        _cap_examples(n)



# A suite test whose kernel timed out fails with this mark (actverify/suite.py); a session
# whose only failures are timeouts exits 3, incomplete, as the commands do (README.md).
TIMED_OUT_MARK = "timed out (incomplete)"
_FAILED = {"timed_out": 0, "other": 0}


def pytest_runtest_logreport(report) -> None:
    if report.failed:
        key = "timed_out" if TIMED_OUT_MARK in str(report.longrepr or "") else "other"
        _FAILED[key] += 1


@hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    if exitstatus == 1 and _FAILED["timed_out"] and not _FAILED["other"]:
        session.exitstatus = 3


def _cap_examples(n: int) -> None:
    from hypothesis import settings

    name = settings.get_current_profile_name()
    current = settings.get_profile(name)
    if current.max_examples > n:
        # Re-registering the active profile makes it take effect at once (the database and
        # every other setting are inherited from `current`).
        settings.register_profile(name, parent=current, max_examples=n)


def pytest_collection_modifyitems(session, config, items) -> None:
    shard = config.getoption("actverify_shard", None)
    if shard is not None:
        k, n = parse_shard(shard)
        kept, dropped = [], []
        for item in items:
            (kept if shard_of(item.nodeid, n) == k else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    seed = config.getoption("actverify_order", None)
    if seed is not None:
        items.sort(key=lambda item: item.nodeid)  # a canonical order first, then the shuffle
        random.Random(seed).shuffle(items)


# ---------------------------------------------------------------------------------------------
# The fuzz command.

_STATUS = r"(?P<st>PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)"
_XDIST_LINE = re.compile(r"^\[gw\d+\] \[\s*\d+%\] " + _STATUS + r" (?P<id>\S.*?::\S.*?)\s*$")
_PLAIN_LINE = re.compile(r"^(?P<id>\S+?::\S.*?) " + _STATUS + r"(?:\s+\[\s*\d+%\])?\s*$")
_SUMMARY_LINE = re.compile(r"^(?P<st>FAILED|ERROR) (?P<id>\S+?::\S.*?)(?: - .*)?$")
_ITEMS_XDIST = re.compile(r"\b\d+ workers? \[(\d+) items?\]")
_ITEMS_PLAIN = re.compile(r"(?:^|\.\.\. )collected (\d+) items?(?: / (\d+) deselected)?"
                          r"(?: / \d+ skipped)?(?: / (\d+) selected)?")
_SECTION = re.compile(r"^_+ (?P<name>\S.*?) _+$")


@dataclass
class _Failure:
    nodeid: str
    found_after: float
    round: int
    text: str | None = None
    replay: str | None = None


@dataclass
class _State:
    start: float
    root: Path
    examples_done: int = 0  # from finished property runs
    values_done: int = 0
    running: dict[str, tuple[int, int]] = field(default_factory=dict)  # run -> (examples, values)
    records: int = 0
    first_record: float | None = None
    first_result: float | None = None  # seconds from the start to the first property's result
    results: dict[str, int] = field(default_factory=dict)  # PASSED/FAILED/... -> count (all rounds)
    round_done: int = 0
    round_items: int | None = None
    failures: dict[str, _Failure] = field(default_factory=dict)

    @property
    def examples(self) -> int:
        return self.examples_done + sum(e for e, _ in self.running.values())

    @property
    def values(self) -> int:
        return self.values_done + sum(v for _, v in self.running.values())


def _human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}" if float(n).is_integer() or abs(n) >= 10 else f"{n:.1f}"


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


SUITE_PACKAGE = "actverify.testsuite"


def _suite_root() -> Path:
    """The installed property suite's directory: pytest's rootdir for the rounds, so that test
    ids read `test_values.py::test_property[...]` wherever actverify is installed."""
    import actverify.testsuite

    return Path(actverify.testsuite.__file__).resolve().parent


def _pyargs_id(nodeid: str) -> str:
    """'test_values.py::test_property[x]' -> 'actverify.testsuite.test_values::test_property[x]':
    the form `pytest --pyargs` takes, the same on every machine."""
    path, sep, rest = nodeid.partition("::")
    if not sep or "/" in path or not path.endswith(".py"):
        return nodeid
    return f"{SUITE_PACKAGE}.{path.removesuffix('.py')}{sep}{rest}"


def _shown_db(url: str) -> str:
    """A dir: database under the current directory as a relative path (pasteable from the
    project root on another machine); other URLs as they are."""
    if url.startswith("dir:"):
        path = Path(url[4:])
        try:
            return "dir:" + path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            pass
    return url


def _check_targets(targets: Sequence[str]) -> list[str]:
    from actverify.targets import resolve_target

    checked = []
    for text in targets:
        ref, sep, act = text.rpartition("=")
        if not sep or not ref or not act:
            raise UsageError(f"target {text!r} must be TARGET=ACTIVATION, e.g. "
                             "mypkg.kernels:sigmoid=sigmoid or kernels.py:relu=relu")
        resolve_target(ref, act)  # UsageError for a missing file, module or attribute
        checked.append(text)
    return checked


def _actverify_options(pytest_args: Sequence[str]) -> list[str]:
    """The --actverify-* options among the user's pytest arguments (for reproduce commands)."""
    out, args = [], list(pytest_args)
    for i, a in enumerate(args):
        if a.startswith("--actverify-") and not a.startswith(("--actverify-shard",
                                                             "--actverify-order",
                                                             "--actverify-max-examples")):
            out.append(a)
            if "=" not in a and i + 1 < len(args) and not args[i + 1].startswith("-"):
                out.append(args[i + 1])
    return out


class _Display:
    def __init__(self, out: TextIO, deadline: float, state: _State) -> None:
        self.out, self.deadline, self.state = out, deadline, state
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.last = 0.0
        self.round, self.max_examples = 0, 0
        self.hook_seen = False

    def line(self) -> str:
        s, now = self.state, time.monotonic()
        elapsed = now - s.start
        rate = f"{_human(s.examples / elapsed)}/s" if elapsed > 0 else "-"
        vrate = f"{_human(s.values / elapsed)}/s" if elapsed > 0 else "-"
        total = f"/{s.round_items}" if s.round_items else ""
        budget = self.deadline - s.start
        text = (f"[{_clock(elapsed)}/{_clock(budget)}] round {self.round} "
                f"(<= {self.max_examples} examples) | properties {s.round_done}{total} | ")
        if s.records:
            text += f"examples {_human(s.examples)} ({rate}) | values {_human(s.values)} ({vrate}) | "
        return text + f"failures {len(s.failures)}"

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if force or now - self.last >= 0.5:
                self.out.write("\r\x1b[K" + self.line())
                self.out.flush()
                self.last = now
        elif force or now - self.last >= 15.0:
            self.out.write(self.line() + "\n")
            self.out.flush()
            self.last = now

    def say(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[K")
        self.out.write(text + "\n")
        self.out.flush()
        if self.tty:
            self.tick(force=True)


def _read_progress(path: Path, offset: int, state: _State, display: _Display, rnd: int
                   ) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    end = data.rfind(b"\n")
    if end < 0:
        return offset
    for raw in data[:end].splitlines():
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        state.records += 1
        if state.first_record is None:
            state.first_record = time.monotonic()
        run = rec.get("run")
        if rec.get("status") == "running":
            state.running[run] = (rec.get("examples", 0), rec.get("values", 0))
            continue
        state.running.pop(run, None)
        state.examples_done += rec.get("examples", 0)
        state.values_done += rec.get("values", 0)
        test = rec.get("test")
        if rec.get("status") in ("failed", "error") and test:
            _note_failure(state, display, test, rnd, rec)
    return offset + end + 1


def _canonical(nodeid: str, root: Path) -> str:
    """A node id relative to the suite's root: pytest prints ids relative to the current
    directory when it is not the root (../../actverify/properties/...), PYTEST_CURRENT_TEST
    gives them relative to the root."""
    path, sep, rest = nodeid.partition("::")
    if not sep or not path or os.path.isabs(path) and not path.startswith(str(root)):
        return nodeid
    full = os.path.normpath(os.path.join(os.getcwd(), path))
    rel = os.path.relpath(full, root)
    return nodeid if rel.startswith("..") else rel.replace(os.sep, "/") + sep + rest


def _note_failure(state: _State, display: _Display, nodeid: str, rnd: int,
                  rec: dict | None = None) -> None:
    nodeid = _canonical(nodeid, state.root)
    f = state.failures.get(nodeid)
    if f is None:
        f = state.failures[nodeid] = _Failure(nodeid, time.monotonic() - state.start, rnd)
        display.say(f"FAILURE after {_clock(f.found_after)} in round {rnd}: {nodeid}")
    if rec is not None:
        f.text = rec.get("text") or rec.get("reason") or f.text
        f.replay = rec.get("replay") or f.replay


def _failure_sections(log: str) -> dict[str, str]:
    """pytest's FAILURES section, split by test: name -> the E lines (the evidence)."""
    out: dict[str, str] = {}
    if "= FAILURES =" not in log:
        return out
    body = log.split("= FAILURES =", 1)[1]
    name, lines, raw = None, [], []

    def keep() -> None:
        # A test failed with pytest.fail(..., pytrace=False) prints its message as is.
        out[name] = "\n".join(lines or [r for r in raw if r.strip()])

    for line in body.splitlines():
        if line.startswith("=") and line.endswith("=") and " " in line:
            break  # the next section (short test summary, warnings, ...)
        m = _SECTION.match(line)
        if m:
            if name:
                keep()
            name, lines, raw = m.group("name"), [], []
        elif name and line.startswith("E "):
            text = line[2:]
            if text.lstrip().startswith("assert ") or text.strip().startswith(("+", "-  ")):
                continue  # pytest's own rewriting of `assert status == "passed"`
            lines.append(text)
        elif name and not line.startswith("[gw"):
            raw.append(line)
    if name:
        keep()
    return {k: _dedent(v) for k, v in out.items()}


def _dedent(text: str) -> str:
    lines = text.splitlines()
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    lines = [x[indent:] for x in lines]
    if lines and lines[0].startswith("AssertionError: "):
        lines[0] = lines[0][len("AssertionError: "):]
    return "\n".join(lines[:40])


def _junit_of_round(rnd: int, results: Sequence[tuple[str, str]], texts: dict[str, str],
                    path: Path) -> None:
    """A JUnit file for a round that was killed before pytest wrote its own: the properties
    that finished, with their outcome and the failure evidence."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name=f"fuzz-round-{rnd}", tests=str(len(results)),
                       failures=str(sum(st == "FAILED" for _, st in results)),
                       errors=str(sum(st == "ERROR" for _, st in results)),
                       skipped=str(sum(st == "SKIPPED" for _, st in results)))
    for nodeid, st in results:
        module, _, name = nodeid.partition("::")
        case = ET.SubElement(suite, "testcase", classname=module.removesuffix(".py")
                             .replace("/", "."), name=name)
        if st in ("FAILED", "ERROR"):
            tag = "failure" if st == "FAILED" else "error"
            text = texts.get(nodeid, "")
            ET.SubElement(case, tag, message=text.split("\n", 1)[0][:200]).text = text
        elif st == "SKIPPED":
            ET.SubElement(case, "skipped")
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _merge_junit(paths: Sequence[Path], dest: Path, *, planned: int | None = None,
                 covered: dict[str, int] | None = None) -> None:
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="actverify fuzz")
    if planned is not None:  # what was planned and what ran, for CI dashboards
        root.set("planned", str(planned))
        root.set("run", str(len(covered or {})))
        root.set("not_run", str(max(planned - len(covered or {}), 0)))
    for p in paths:
        try:
            tree = ET.parse(p)
        except (ET.ParseError, OSError):
            continue
        top = tree.getroot()
        for suite in ([top] if top.tag == "testsuite" else top.findall("testsuite")):
            root.append(suite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(dest, encoding="utf-8", xml_declaration=True)


class _StopFlag:
    """Set by SIGINT/SIGTERM: the fuzz loop stops the running round's process group and
    reports what it found so far."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = self.reason or reason

    def clear(self) -> None:
        self.reason = None

    def is_set(self) -> bool:
        return self.reason is not None


_STOP = _StopFlag()


def _stop_requested(signum, frame) -> None:
    _STOP.set(signal.Signals(signum).name)


def _round_examples(rnd: int, cap: int) -> int:
    return min(cap, FIRST_ROUND_EXAMPLES * 4 ** (rnd - 1))


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def fuzz(*, targets: Sequence[str] = (), minutes: float, workers: int, db: str | None = None,
         shard: str | None = None, read_only_db: bool = False,
         pytest_args: Sequence[str] = (), seed: int | None = None,
         junitxml: str | None = None, json_path: str | None = None,
         out: TextIO | None = None, threads: int | None = None) -> int:
    """Fuzz the property suite for `minutes` with `workers` xdist workers; see the module doc.

    `targets`: TARGET=ACTIVATION strings (empty: PyTorch's own entry points); `db`: an
    example database URL (actverify.database; None: ACTVERIFY_DB, else .hypothesis/examples);
    `shard`: 'K/N'; `pytest_args`: more pytest arguments (e.g. ['-k', 'accuracy',
    '--actverify-dtype', 'float32']); `threads`: intra-op threads of each worker (None:
    OMP_NUM_THREADS, else one).  Returns the exit status of the module doc (a usage error is
    raised as UsageError before anything runs).
    """
    out = out or sys.stdout
    from actverify.database import ENV_VAR, READ_ONLY_ENV_VAR, describe, open_database
    from actverify.database import read_only_from_env

    if not isinstance(minutes, (int, float)) or not math.isfinite(minutes) or minutes <= 0:
        raise UsageError(f"--minutes must be a positive number, got {minutes!r}")
    if not isinstance(workers, int) or workers < 0:
        raise UsageError(f"--workers must be 0 (no worker processes) or more, got {workers!r}")
    resolve_threads(threads=threads)  # a bad --threads or OMP_NUM_THREADS: usage error now
    if shard is not None:
        shard = "{}/{}".format(*parse_shard(shard))
    from actverify.outputs import writable_file

    json_file = writable_file(json_path, option="--json") if json_path else None
    junit_file = writable_file(junitxml, option="--junitxml") if junitxml else None
    root = _suite_root()
    targets = _check_targets(targets)
    if db is None:
        db = os.environ.get(ENV_VAR) or None
        read_only_db = read_only_db or read_only_from_env()
    if db and db.startswith("dir:") and db[4:].strip():  # workers may not share our '.'
        db = "dir:" + str(Path(db[4:]).expanduser().absolute())
    _, effective = open_database(db, read_only=read_only_db)  # warns and falls back locally
    from hypothesis import settings

    from actverify.profiles import registered_name

    cap = settings.get_profile(registered_name("fuzz")).max_examples
    seed = random.SystemRandom().randrange(10**6) if seed is None else seed
    budget = minutes * 60.0
    start = time.monotonic()
    deadline = start + budget
    state = _State(start=start, root=root)
    display = _Display(out, deadline, state)
    work = Path(tempfile.mkdtemp(prefix="actverify-fuzz-"))
    progress = work / "progress.jsonl"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    env.pop("ACTVERIFY_PROFILE", None)  # the loaded profile is `actverify-fuzz`
    env[PROGRESS_ENV] = str(progress)
    env[ENV_VAR] = effective or ""
    env[READ_ONLY_ENV_VAR] = "1" if (effective and read_only_db) else "0"
    child_env(env, threads=threads)  # intra-op threads per worker (actverify.threads)
    # The suite's own rootdir, an empty ini file and a conftest cut at the suite: the project's
    # pytest configuration (addopts, conftest.py files) stays out of the rounds.  `-p
    # actverify` loads the plugin even where PYTEST_DISABLE_PLUGIN_AUTOLOAD is set.
    ini = work / "pytest.ini"
    ini.write_text("[pytest]\n")
    base = [sys.executable, "-m", "pytest", "--pyargs", SUITE_PACKAGE, f"--rootdir={root}",
            "-c", str(ini), f"--confcutdir={root}", "-p", "actverify",
            "-p", "no:cacheprovider", "--hypothesis-profile", registered_name("fuzz"),
            "-n", str(workers), "-v", "--color=no", "--tb=short", "-rfE"]
    if shard:
        base += ["--actverify-shard", shard]
    for t in targets:
        base += ["--actverify-target", t]
    where = describe(effective) if effective else ".hypothesis/examples (local)"
    display.say(f"fuzz: {workers} worker{'s' * (workers != 1)}, shard {shard or 'all'}, "
                f"budget {_clock(budget)}, database {where}"
                f"{' read-only' if effective and read_only_db else ''}, order seed {seed}")
    rounds: list[dict] = []
    junit_files: list[Path] = []
    logs: list[str] = []
    status, usage_message, interrupted_by_user = 0, None, False
    rnd, startup = 0, None
    planned: int | None = None  # tests in a full round: what every round means to cover
    covered: dict[str, int] = {}  # test id -> rounds in which it finished
    previous = {sig: signal.signal(sig, _stop_requested) for sig in (signal.SIGINT,
                                                                      signal.SIGTERM)}
    _STOP.clear()
    try:
        while not _STOP.is_set():
            remaining = deadline - time.monotonic()
            if rnd and remaining < max(MIN_ROUND_SECONDS, 1.5 * (startup or 0)):
                break
            rnd += 1
            examples = _round_examples(rnd, cap)
            display.round, display.max_examples = rnd, examples
            state.round_done, state.round_items = 0, None
            junit = work / f"round-{rnd}.xml"
            cmd = base + ["--actverify-order", str(seed + rnd - 1),
                          "--actverify-max-examples", str(examples),
                          f"--junitxml={junit}", "-o", f"junit_suite_name=fuzz-round-{rnd}",
                          *pytest_args]
            grace = min(GRACE_SECONDS, 0.1 * budget)
            info = _run_round(cmd, env, state, display, progress, rnd, deadline - grace,
                              deadline)
            planned = planned if planned is not None else state.round_items
            for nodeid, _ in info["results"]:
                covered[nodeid] = covered.get(nodeid, 0) + 1
            startup = startup if startup is not None else info["startup"]
            logs.append(info["log"])
            if not junit.exists():  # killed at the deadline before pytest wrote it
                sections = _failure_sections(info["log"])
                texts = {f.nodeid: f.text or sections.get(f.nodeid.rsplit("::", 1)[-1], "")
                         for f in state.failures.values()}
                _junit_of_round(rnd, info["results"], texts, junit)
            junit_files.append(junit)
            rounds.append({"round": rnd, "max_examples": examples, "seconds": info["seconds"],
                           "properties": info["done"], "pytest_status": info["rc"],
                           "stopped_at_deadline": info["stopped"]})
            rc = info["rc"]
            if state.failures or info["stopped"] or _STOP.is_set():
                break
            if rc == 0:
                continue  # the round finished within the budget: another, deeper one
            if rc == 5:
                usage_message = ("no property selected: check -k, the --actverify-* options "
                                 "and --shard")
            else:
                tail = "\n".join(info["log"].splitlines()[-25:])
                usage_message = f"pytest stopped with status {rc}:\n{tail}"
            break
    except KeyboardInterrupt:
        _STOP.set("SIGINT")
    finally:
        state.running.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    interrupted_by_user = _STOP.is_set()
    elapsed = time.monotonic() - start
    if display.tty:
        out.write("\r\x1b[K")
    if usage_message is not None and not state.failures:
        out.write(f"error: {usage_message}\n")
        status = 2
    sections: dict[str, str] = {}
    for log in logs:
        sections.update(_failure_sections(log))
    extra = _actverify_options(pytest_args)
    from actverify.replays import portable_reference

    # Commands to paste from the project root (this directory), on any machine: the suite by
    # module path, targets and a dir: database relative to here.
    shown_targets = [portable_reference(ref, Path.cwd()) + sep + act
                     for ref, sep, act in (t.rpartition("=") for t in targets)]
    failures = []
    for f in state.failures.values():
        name = f.nodeid.rsplit("::", 1)[-1]
        text = f.text or sections.get(name) or "(no details: see pytest's output above)"
        test = _pyargs_id(f.nodeid)
        repro = " ".join(
            ([f"{ENV_VAR}={shlex.quote(_shown_db(effective))}"] if effective else [])
            + ["python", "-m", "pytest", "--pyargs", shlex.quote(test), "-p", "no:cacheprovider",
               "--hypothesis-profile", registered_name("replay")]
            + [x for t in shown_targets for x in ("--actverify-target", shlex.quote(t))]
            + [shlex.quote(x) for x in extra])
        failures.append({"test": test, "found_after_s": round(f.found_after, 2),
                         "round": f.round, "text": text, "replay": f.replay,
                         "reproduce": repro, "timed_out": TIMED_OUT_MARK in text})
    for f in failures:
        word = "TIMED OUT" if f["timed_out"] else "FAILED"
        out.write(f"\n{word} {f['test']}  (found after {_clock(f['found_after_s'])}, "
                  f"round {f['round']})\n")
        out.write("  " + f["text"].replace("\n", "\n  ") + "\n")
        if f["replay"] and f["replay"] not in f["text"]:
            out.write(f"  replay:  {f['replay']}\n")
        out.write(f"  reproduce from the example database:\n    {f['reproduce']}\n")
    busy = time.monotonic() - state.first_record if state.first_record else None
    # Complete: every planned test finished at least once (round 1 covers the whole suite
    # with few examples before any test gets more), and nothing stopped the run early.
    planned = planned or 0
    not_run = max(planned - len(covered), 0)
    incomplete = []
    timed_out = [f for f in failures if f["timed_out"]]
    if timed_out:  # slow and hung look alike: incomplete, never a violation
        incomplete.append(f"{len(timed_out)} test{'s' * (len(timed_out) != 1)} timed out: "
                          "raise ACTVERIFY_TIMEOUT (seconds per call of the kernel) if the "
                          "kernel is slow but correct")
    if interrupted_by_user:
        incomplete.append(f"interrupted by {_STOP.reason} ({len(covered)} of "
                          f"{planned or 'the planned'} tests ran)")
    elif status != 2 and (not planned or not_run):
        incomplete.append(f"the budget ran out before every planned test ran once "
                          f"({len(covered)} of {planned or '?'} ran): give more --minutes, "
                          "fewer tests (-k, --shard) or more --workers")
    if len(failures) > len(timed_out):
        verdict, status = "violations", 1
    elif status == 2:
        verdict = "usage error"
    elif incomplete:
        verdict, status = "incomplete", 3
    elif not state.results.get("PASSED"):  # every test skipped: not checked, never a pass
        verdict, status = "nothing checked", 3
        incomplete.append("no test passed: every planned test was skipped (not checked)")
    else:
        verdict = "conforms"
    summary = {
        "status": status, "verdict": verdict, "complete": not incomplete,
        "incomplete": incomplete, "planned": planned, "run": len(covered), "not_run": not_run,
        "runs_per_test": dict(sorted(covered.items())),
        "seconds": round(elapsed, 2),
        "budget_seconds": budget, "workers": workers, "shard": shard, "order_seed": seed,
        "database": describe(effective) if effective else None,
        "read_only_database": bool(effective and read_only_db),
        "rounds": rounds, "properties_run": sum(state.results.values()),
        "results": state.results, "examples": state.examples, "values": state.values,
        "examples_per_second": round(state.examples / elapsed, 2) if elapsed else None,
        "values_per_second": round(state.values / elapsed, 1) if elapsed else None,
        "examples_counted": state.records > 0,
        "busy_seconds": round(busy, 2) if busy else None,
        "first_result_seconds": round(state.first_result, 2) if state.first_result else None,
        "first_failure_seconds": min((f["found_after_s"] for f in failures), default=None),
        "failures": failures,
    }
    counted = (f"{_human(state.examples)} examples ({_human(summary['examples_per_second'] or 0)}/s),"
               f" {_human(state.values)} values ({_human(summary['values_per_second'] or 0)}/s)"
               if state.records else
               "examples not counted (actverify.runner.run_property does not call "
               "actverify.fuzz.track_progress)")
    ran = ", ".join(f"{v} {k.lower()}" for k, v in sorted(state.results.items())) or "none"
    out.write(f"\nfuzz: {len(rounds)} round{'s' * (len(rounds) != 1)} in {_clock(elapsed)}; "
              f"tests planned {planned or '?'}, run at least once {len(covered)}, "
              f"never run {not_run}; results: {ran}; {counted}; "
              f"{len(failures)} failure{'s' * (len(failures) != 1)}; verdict: {verdict}"
              + (f" ({'; '.join(incomplete)})" if incomplete else "") + "\n")
    out.flush()
    if junit_file is not None:
        _merge_junit(junit_files, junit_file, planned=planned, covered=covered)
    if json_file is not None:
        json_file.write_text(json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return status


def _run_round(cmd: list[str], env: dict, state: _State, display: _Display, progress: Path,
               rnd: int, stop_at: float, kill_at: float) -> dict:
    """Run one round of pytest in its own process group; SIGINT at `stop_at` (pytest writes
    its report), SIGKILL to the whole group at `kill_at`."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            text=True, errors="replace", bufsize=1, start_new_session=True)
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    log: list[str] = []
    results: list[tuple[str, str]] = []
    offset = progress.stat().st_size if progress.exists() else 0
    stopping = killed = False
    startup = None
    try:
        while True:
            now = time.monotonic()
            if _STOP.is_set() and not killed:  # SIGINT/SIGTERM: stop the whole group now
                _signal_group(proc, signal.SIGKILL)
                stopping = killed = True
            if not stopping and now >= stop_at:
                _signal_group(proc, signal.SIGINT)
                stopping = True
            if not killed and now >= kill_at:
                _signal_group(proc, signal.SIGKILL)
                killed = True
            try:
                line = lines.get(timeout=0.25)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line:
                line = line.rstrip("\n")
                log.append(line)
                m = _XDIST_LINE.match(line) or _PLAIN_LINE.match(line)
                if m:
                    startup = startup if startup is not None else time.monotonic() - started
                    if state.first_result is None:
                        state.first_result = time.monotonic() - state.start
                    st, nodeid = m.group("st"), m.group("id")
                    if stopping and st in ("FAILED", "ERROR"):
                        continue  # interrupted by us, not a finding (real ones are in progress)
                    results.append((_canonical(nodeid, state.root), st))
                    state.round_done = len(results)
                    state.results[st] = state.results.get(st, 0) + 1
                    if st in ("FAILED", "ERROR"):
                        _note_failure(state, display, nodeid, rnd)
                elif not stopping and (s := _SUMMARY_LINE.match(line)):
                    _note_failure(state, display, s.group("id"), rnd)
                elif state.round_items is None:
                    m = _ITEMS_XDIST.search(line) or _ITEMS_PLAIN.search(line)
                    if m:
                        counts = [int(g) for g in m.groups() if g is not None]
                        state.round_items = (counts[2] if len(counts) == 3 else
                                             counts[0] - counts[1] if len(counts) == 2
                                             else counts[0])
            offset = _read_progress(progress, offset, state, display, rnd)
            display.tick()
    except BaseException:
        _signal_group(proc, signal.SIGKILL)
        raise
    finally:
        rc = proc.wait()
        _signal_group(proc, signal.SIGKILL)  # stragglers (a worker stuck in C code)
    _read_progress(progress, offset, state, display, rnd)
    return {"rc": rc, "stopped": stopping, "seconds": round(time.monotonic() - started, 2),
            "done": len(results), "results": results,
            "startup": startup or (time.monotonic() - started), "log": "\n".join(log)}


# ---------------------------------------------------------------------------------------------
# Command line (also `actverify fuzz`, through add_arguments and run_args).

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, required=True, help="time budget in minutes")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="pytest-xdist worker processes (default: one per CPU; 0: none)")
    p.add_argument("--target", action="append", default=[], metavar="TARGET=ACTIVATION",
                   help="fuzz this kernel instead of PyTorch's entry points (repeatable), "
                        "e.g. mypkg.kernels:sigmoid=sigmoid")
    p.add_argument("--db", metavar="URL", default=None,
                   help="example database: dir:PATH or redis://HOST:PORT/N (default: "
                        "$ACTVERIFY_DB, else .hypothesis/examples)")
    p.add_argument("--read-only-db", action="store_true",
                   help="only read the --db database; keep what is found locally")
    p.add_argument("--shard", metavar="K/N", help="run shard K of N (CI matrix jobs)")
    p.add_argument("--seed", type=int, help="seed of the test order (default: random)")
    p.add_argument("--junitxml", metavar="PATH", help="write the JUnit XML of all rounds here")
    p.add_argument("--json", metavar="PATH", help="write a JSON summary here")
    add_threads_argument(p)
    p.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                   help="more pytest arguments after --, e.g. -- -k accuracy "
                        "--actverify-dtype float32")


def run_args(args: argparse.Namespace) -> int:
    return fuzz(targets=args.target, minutes=args.minutes, workers=args.workers, db=args.db,
                shard=args.shard, read_only_db=args.read_only_db, pytest_args=args.pytest_args,
                seed=args.seed, junitxml=args.junitxml, json_path=args.json,
                threads=args.threads)


def main(argv: Sequence[str] | None = None) -> int:
    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:
            raise UsageError(f"{self.prog}: {message}")

    parser = Parser(prog="python -m actverify.fuzz", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    try:
        return run_args(parser.parse_args(argv))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
