"""`fuzz()`: the property suite in rounds for a time budget, in parallel (the command's
options and exit status: actverify/fuzz.py, docs/ci.md).

`fuzz` runs `pytest --pyargs actverify.testsuite` (the suite installed with the package; from
the current directory, where targets, replay files and the example database are) in a
subprocess, under pytest-xdist (`-n WORKERS`) and the `actverify-fuzz` Hypothesis profile,
in rounds: each round runs every selected property once, in an order shuffled by the round's
seed, with at most 5, 20, 80, ... examples per property (up to the profile's max_examples):
coverage before depth, every planned test gets its first examples before any gets more.
The rounds run in one pytest session (`--actverify-rounds`, actverify/fuzzing/shard.py): the
workers start, import torch and collect the suite once, and a worker that is done with its
share of a round goes on with the next one instead of waiting for the slowest test.  At the
deadline the session's process group gets SIGKILL: everything found is in the records already.
When a property fails, the rounds up to the one it failed in are finished, and no round follows.
Hypothesis draws fresh random seeds in every round: `--hypothesis-seed` is never passed,
because Hypothesis turns the example database off for tests run under a fixed seed.

Everything the orchestrator knows of a session comes from the records its pytest processes
write (actverify/fuzzing/records.py): the tests collected, each test's result with its
evidence, each property's examples and values.  pytest's console output is kept only to show
its end when pytest itself fails.  Each failure is printed with the commands that reproduce
it: the exact case (a replay file) and the run that replays it from the example database.
"""

from __future__ import annotations

import json
import math
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from actverify.errors import UsageError
from actverify.fuzzing.records import RECORDS_ENV, read_records
from actverify.fuzzing.shard import parse_shard, round_examples
from actverify.outcomes import TIMED_OUT_MARK
from actverify.progress import Progress, clock, human, progress
from actverify.threads import child_env
from actverify.threads import resolve as resolve_threads

MIN_SESSION_SECONDS = 10.0  # never start a session with less budget left than this
# Rounds per pytest session: enough to reach the fuzz profile's 2000 examples (5, 20, ...,
# 1280, 2000) and go on; a session that finishes them all is followed by another.
SESSION_ROUNDS = 8
POLL_SECONDS = 0.25  # how often a session's records and the deadline are looked at
SUITE_PACKAGE = "actverify.testsuite"
FAILED = ("FAILED", "ERROR")  # result statuses that are findings


@dataclass
class _Failure:
    nodeid: str
    found_after: float
    round: int
    text: str | None = None
    replay: str | None = None


@dataclass
class _Round:
    number: int
    max_examples: int
    results: list[tuple[str, str, float]] = field(default_factory=list)  # (test, status, s)
    first: float | None = None  # when its first and last results came (time.monotonic)
    last: float | None = None


@dataclass
class _State:
    """What the run has learnt so far, from the records of every session."""

    start: float
    cap: int  # the fuzz profile's max_examples
    examples_done: int = 0  # from finished property runs
    values_done: int = 0
    running: dict[str, tuple[int, int]] = field(default_factory=dict)  # run -> (examples, values)
    records: int = 0  # property records read (0: the runner does not report examples)
    finished_examples: int = 0  # of the properties that finished, and their CPU time
    cpu_seconds: float = 0.0
    first_record: float | None = None
    first_result: float | None = None  # seconds from the start to the first test's result
    results: dict[str, int] = field(default_factory=dict)  # PASSED/FAILED/... -> count (all rounds)
    planned: int | None = None  # the tests of one round
    rounds: dict[int, _Round] = field(default_factory=dict)
    evidence: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    failures: dict[str, _Failure] = field(default_factory=dict)

    @property
    def examples(self) -> int:
        return self.examples_done + sum(e for e, _ in self.running.values())

    @property
    def values(self) -> int:
        return self.values_done + sum(v for _, v in self.running.values())

    def round(self, number: int) -> _Round:
        if number not in self.rounds:
            self.rounds[number] = _Round(number, round_examples(number, self.cap))
        return self.rounds[number]

    def complete(self, number: int) -> bool:
        done = self.rounds.get(number)
        return bool(self.planned) and done is not None and len(done.results) >= self.planned

    def current(self) -> _Round:
        """The first round not complete: what the display shows."""
        number = 1
        while self.complete(number):
            number += 1
        return self.rounds.get(number) or _Round(number, round_examples(number, self.cap))

    def covered(self) -> dict[str, int]:
        """Test id -> the rounds in which it finished."""
        out: dict[str, int] = {}
        for rnd in self.rounds.values():
            for test in {t for t, _, _ in rnd.results}:
                out[test] = out.get(test, 0) + 1
        return out


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


def _status_line(state: _State, deadline: float) -> str:
    """The one line the display shows: elapsed/budget, round, properties, rates, failures."""
    elapsed = time.monotonic() - state.start
    rate = f"{human(state.examples / elapsed)}/s" if elapsed > 0 else "-"
    vrate = f"{human(state.values / elapsed)}/s" if elapsed > 0 else "-"
    rnd = state.current()
    total = f"/{state.planned}" if state.planned else ""
    text = (f"[{clock(elapsed)}/{clock(deadline - state.start)}] "
            f"round {rnd.number} (<= {rnd.max_examples} examples) "
            f"| properties {len(rnd.results)}{total} | ")
    if state.records:
        text += (f"examples {human(state.examples)} ({rate}) | "
                 f"values {human(state.values)} ({vrate}) | ")
    return text + f"failures {len(state.failures)}"


def _take(records: list[dict], state: _State, bar: Progress) -> None:
    """Fold new records into the state."""
    for rec in records:
        kind = rec.get("kind")
        if kind == "collected":
            if state.planned is None:  # every worker collects the same tests
                state.planned = rec.get("items")
        elif kind == "result":
            test, status = rec.get("test"), rec.get("status")
            now = time.monotonic()
            rnd = state.round(rec.get("round") or 1)
            rnd.first, rnd.last = rnd.first or now, now
            rnd.results.append((test, status, rec.get("seconds") or 0.0))
            state.first_result = state.first_result or now - state.start
            state.results[status] = state.results.get(status, 0) + 1
            if status in FAILED and test not in state.failures:
                # The property's own record (format_failure, with the replay file) came
                # before the test's result and says more than pytest's message.
                text, replay = state.evidence.get(test, (None, None))
                f = state.failures[test] = _Failure(test, now - state.start, rnd.number,
                                                    text or rec.get("text"), replay)
                bar.say(f"FAILURE after {clock(f.found_after)} in round {rnd.number}: {test}")
        elif kind == "property":
            state.records += 1
            state.first_record = state.first_record or time.monotonic()
            run = rec.get("run")
            if rec.get("status") == "running":
                state.running[run] = (rec.get("examples", 0), rec.get("values", 0))
                continue
            state.running.pop(run, None)
            state.examples_done += rec.get("examples", 0)
            state.values_done += rec.get("values", 0)
            state.finished_examples += rec.get("examples", 0)
            state.cpu_seconds += rec.get("cpu_seconds", 0.0)
            if rec.get("status") in ("failed", "error") and rec.get("test"):
                state.evidence[rec["test"]] = (rec.get("text") or rec.get("reason"),
                                               rec.get("replay"))


def _write_junit(state: _State, dest: Path, *, planned: int, covered: dict[str, int]) -> None:
    """JUnit XML of the run, from the records: one <testsuite> per round, and on
    <testsuites> what was planned and what ran (for CI dashboards)."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="actverify fuzz", planned=str(planned),
                      run=str(len(covered)), not_run=str(max(planned - len(covered), 0)))
    for number in sorted(state.rounds):
        results = state.rounds[number].results
        suite = ET.SubElement(
            root, "testsuite", name=f"fuzz-round-{number}", tests=str(len(results)),
            failures=str(sum(s == "FAILED" for _, s, _ in results)),
            errors=str(sum(s == "ERROR" for _, s, _ in results)),
            skipped=str(sum(s == "SKIPPED" for _, s, _ in results)),
            time=f"{sum(t for _, _, t in results):.3f}")
        for nodeid, status, seconds in results:
            module, _, name = nodeid.partition("::")
            case = ET.SubElement(suite, "testcase", classname=module.removesuffix(".py")
                                 .replace("/", "."), name=name, time=f"{seconds:.3f}")
            if status in FAILED:
                failure = state.failures.get(nodeid)
                text = (failure.text if failure else None) or ""
                tag = "failure" if status == "FAILED" else "error"
                ET.SubElement(case, tag, message=text.split("\n", 1)[0][:200]).text = text
            elif status == "SKIPPED":
                ET.SubElement(case, "skipped")
    dest.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(dest, encoding="utf-8", xml_declaration=True)


class _StopFlag:
    """Set by SIGINT/SIGTERM: the fuzz loop stops the running session's process group and
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
    OMP_NUM_THREADS, else one).  Returns the exit status of actverify/fuzz.py (a usage error
    is raised as UsageError before anything runs).
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
    state = _State(start=start, cap=cap)
    work = Path(tempfile.mkdtemp(prefix="actverify-fuzz-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    env.pop("ACTVERIFY_PROFILE", None)  # the loaded profile is `actverify-fuzz`
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
            "-n", str(workers), "-q", "--color=no", "--tb=short"]
    if shard:
        base += ["--actverify-shard", shard]
    for t in targets:
        base += ["--actverify-target", t]
    where = describe(effective) if effective else ".hypothesis/examples (local)"
    sessions: list[dict] = []
    usage_message = None
    startup = None  # seconds from a session's start to its first result
    previous = {sig: signal.signal(sig, _stop_requested) for sig in (signal.SIGINT,
                                                                      signal.SIGTERM)}
    _STOP.clear()
    with progress(total=None, label=_status_line(state, deadline), out=out) as bar:
        bar.say(f"fuzz: {workers} worker{'s' * (workers != 1)}, shard {shard or 'all'}, "
                f"budget {clock(budget)}, database {where}"
                f"{' read-only' if effective and read_only_db else ''}, order seed {seed}")
        try:
            while not _STOP.is_set():
                remaining = deadline - time.monotonic()
                if sessions and remaining < max(MIN_SESSION_SECONDS, 1.5 * (startup or 0)):
                    break
                first = 1 + SESSION_ROUNDS * len(sessions)
                cmd = base + ["--actverify-order", str(seed),
                              "--actverify-rounds", str(SESSION_ROUNDS),
                              "--actverify-first-round", str(first), *pytest_args]
                session = _run_session(cmd, env, work, state, bar, number=len(sessions) + 1,
                                       rounds=range(first, first + SESSION_ROUNDS),
                                       deadline=deadline)
                sessions.append(session)
                if startup is None:
                    startup = session["startup_seconds"] or session["seconds"]
                if state.failures or session["stopped"] or _STOP.is_set():
                    break
                if session["pytest_status"] == 0:
                    continue  # every round of the session finished: more, deeper ones
                if session["pytest_status"] == 5:
                    usage_message = ("no property selected: check -k, the --actverify-* "
                                     "options and --shard")
                else:
                    tail = "\n".join(session.pop("log").splitlines()[-25:])
                    usage_message = (f"pytest stopped with status "
                                     f"{session['pytest_status']}:\n{tail}")
                break
        except KeyboardInterrupt:
            _STOP.set("SIGINT")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    for session in sessions:
        session.pop("log", None)
    covered = state.covered()
    planned = state.planned or 0
    try:
        summary = _report(state=state, sessions=sessions, planned=planned, covered=covered,
                          usage_message=usage_message, targets=targets, effective=effective,
                          read_only_db=read_only_db, pytest_args=pytest_args, budget=budget,
                          workers=workers, shard=shard, seed=seed, out=out)
        if junit_file is not None:
            _write_junit(state, junit_file, planned=planned, covered=covered)
        if json_file is not None:
            json_file.write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary["status"]


def _run_session(cmd: list[str], env: dict, work: Path, state: _State, bar: Progress, *,
                 number: int, rounds: range, deadline: float) -> dict:
    """Run one pytest session (its rounds) in its own process group, reading its records as
    they come.  SIGKILL to the whole group at the deadline, on SIGINT/SIGTERM, and when a
    failure's round and every round before it are complete.  Returns what the summary says
    of the session (with pytest's console output as "log", shown only when pytest fails)."""
    records = work / f"session-{number}.jsonl"
    log = work / f"session-{number}.log"
    env = {**env, RECORDS_ENV: str(records)}
    started = time.monotonic()
    first_result = state.first_result
    offset, stopped, killed = 0, False, False
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        while True:
            done = _wait(proc, POLL_SECONDS)
            new, offset = read_records(records, offset)
            _take(new, state, bar)
            bar.describe(_status_line(state, deadline))
            if done:
                break
            failed_in = min((f.round for f in state.failures.values()), default=None)
            finished = failed_in is not None and all(state.complete(r) for r in rounds
                                                     if r <= failed_in)
            if _STOP.is_set() or time.monotonic() >= deadline or finished:
                _signal_group(proc, signal.SIGKILL)
                stopped, killed = not finished, True
                break
    except BaseException:
        _signal_group(proc, signal.SIGKILL)
        raise
    finally:
        rc = proc.wait()
        _signal_group(proc, signal.SIGKILL)  # stragglers (a worker stuck in C code)
    new, offset = read_records(records, offset)
    _take(new, state, bar)
    # What a property running at the kill had checked counts; it is finished no more.
    if killed:
        state.examples_done, state.values_done = state.examples, state.values
        state.running.clear()
    startup = (state.first_result - (started - state.start)
               if state.first_result is not None and first_result is None else None)
    return {"session": number, "rounds": [rounds.start, rounds.stop - 1],
            "seconds": round(time.monotonic() - started, 2),
            "startup_seconds": round(startup, 2) if startup is not None else None,
            "pytest_status": None if killed else rc, "stopped": stopped,
            "log": log.read_text(errors="replace")}


def _wait(proc: subprocess.Popen, seconds: float) -> bool:
    """Whether `proc` ended within `seconds`."""
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def _report(*, state: _State, sessions: list[dict], planned: int,
            covered: dict[str, int], usage_message: str | None, targets: Sequence[str],
            effective: str | None, read_only_db: bool, pytest_args: Sequence[str],
            budget: float, workers: int, shard: str | None, seed: int, out: TextIO) -> dict:
    """Print the failures and the summary line; return the summary (the --json file)."""
    from actverify.database import ENV_VAR, describe
    from actverify.profiles import registered_name
    from actverify.replays import portable_reference

    interrupted_by_user = _STOP.is_set()
    elapsed = time.monotonic() - state.start
    rounds = [{"round": n, "max_examples": r.max_examples, "properties": len(r.results),
               "complete": state.complete(n), "seconds": round(r.last - r.first, 2)}
              for n, r in sorted(state.rounds.items()) if r.results]
    status = 0
    if usage_message is not None and not state.failures:
        out.write(f"error: {usage_message}\n")
        status = 2
    extra = _actverify_options(pytest_args)
    # Commands to paste from the project root (this directory), on any machine: the suite by
    # module path, targets and a dir: database relative to here.
    shown_targets = [portable_reference(ref, Path.cwd()) + sep + act
                     for ref, sep, act in (t.rpartition("=") for t in targets)]
    failures = []
    for f in state.failures.values():
        text = f.text or "(no details: pytest recorded none)"
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
        out.write(f"\n{word} {f['test']}  (found after {clock(f['found_after_s'])}, "
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
        "rounds": rounds, "sessions": sessions, "properties_run": sum(state.results.values()),
        "results": state.results, "examples": state.examples, "values": state.values,
        "examples_per_second": round(state.examples / elapsed, 2) if elapsed else None,
        "values_per_second": round(state.values / elapsed, 1) if elapsed else None,
        "examples_counted": state.records > 0,
        # Per CPU-second of the workers (finished properties): what a worker does with the
        # processor it gets, whatever else runs on the machine.
        "examples_per_cpu_second": (round(state.finished_examples / state.cpu_seconds, 2)
                                    if state.cpu_seconds else None),
        "busy_seconds": round(busy, 2) if busy else None,
        "first_result_seconds": round(state.first_result, 2) if state.first_result else None,
        "first_failure_seconds": min((f["found_after_s"] for f in failures), default=None),
        "failures": failures,
    }
    counted = (f"{human(state.examples)} examples ({human(summary['examples_per_second'] or 0)}/s),"
               f" {human(state.values)} values ({human(summary['values_per_second'] or 0)}/s)"
               if state.records else
               "examples not counted (actverify.runner.run_property does not call "
               "actverify.fuzzing.records.track_progress)")
    ran = ", ".join(f"{v} {k.lower()}" for k, v in sorted(state.results.items())) or "none"
    out.write(f"\nfuzz: {len(rounds)} round{'s' * (len(rounds) != 1)} in {clock(elapsed)}; "
              f"tests planned {planned or '?'}, run at least once {len(covered)}, "
              f"never run {not_run}; results: {ran}; {counted}; "
              f"{len(failures)} failure{'s' * (len(failures) != 1)}; verdict: {verdict}"
              + (f" ({'; '.join(incomplete)})" if incomplete else "") + "\n")
    out.flush()
    return summary
