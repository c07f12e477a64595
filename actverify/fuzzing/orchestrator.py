"""`fuzz()`: the property suite in rounds for a time budget, in parallel (the command's
options and exit status: actverify/fuzz.py, docs/ci.md).

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

Everything the orchestrator knows of a round comes from the records its pytest processes
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
from actverify.fuzzing.shard import parse_shard
from actverify.outcomes import TIMED_OUT_MARK
from actverify.progress import Progress, clock, human, progress
from actverify.threads import child_env
from actverify.threads import resolve as resolve_threads

FIRST_ROUND_EXAMPLES = 5  # examples per property in round 1 (coverage first); x4 each round after
MIN_ROUND_SECONDS = 10.0  # never start a round with less budget left than this
# pytest-xdist needs ~13 s after SIGINT to write its report (it waits up to 10 s for the
# workers): the round gets SIGINT this long before the deadline (at most a tenth of the
# budget) and SIGKILL at the deadline, so the run never outlasts its budget.
GRACE_SECONDS = 15.0
POLL_SECONDS = 0.25  # how often a round's records and deadlines are looked at
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
class _State:
    """What the run has learnt so far, from the records of every round."""

    start: float
    examples_done: int = 0  # from finished property runs
    values_done: int = 0
    running: dict[str, tuple[int, int]] = field(default_factory=dict)  # run -> (examples, values)
    records: int = 0  # property records read (0: the runner does not report examples)
    first_record: float | None = None
    first_result: float | None = None  # seconds from the start to the first test's result
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


@dataclass
class _Round:
    number: int
    max_examples: int
    started: float
    results: list[tuple[str, str]] = field(default_factory=list)  # (test id, status)
    stopping: bool = False  # we sent SIGINT or SIGKILL: failures from now on are ours
    first_result: float | None = None  # seconds from the round's start to its first result


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


def _status_line(state: _State, rnd: _Round | None, deadline: float) -> str:
    """The one line the display shows: elapsed/budget, round, properties, rates, failures."""
    elapsed = time.monotonic() - state.start
    rate = f"{human(state.examples / elapsed)}/s" if elapsed > 0 else "-"
    vrate = f"{human(state.values / elapsed)}/s" if elapsed > 0 else "-"
    total = f"/{state.round_items}" if state.round_items else ""
    text = (f"[{clock(elapsed)}/{clock(deadline - state.start)}] "
            f"round {rnd.number if rnd else 0} (<= {rnd.max_examples if rnd else 0} examples) "
            f"| properties {state.round_done}{total} | ")
    if state.records:
        text += (f"examples {human(state.examples)} ({rate}) | "
                 f"values {human(state.values)} ({vrate}) | ")
    return text + f"failures {len(state.failures)}"


def _note_failure(state: _State, bar: Progress, nodeid: str, rnd: _Round, *,
                  text: str | None = None, replay: str | None = None) -> None:
    f = state.failures.get(nodeid)
    if f is None:
        f = state.failures[nodeid] = _Failure(nodeid, time.monotonic() - state.start,
                                              rnd.number)
        bar.say(f"FAILURE after {clock(f.found_after)} in round {rnd.number}: {nodeid}")
    # The property's own record (format_failure, with the replay file) comes before the
    # test's result and says more than pytest's message.
    f.text = f.text or text
    f.replay = f.replay or replay


def _take(records: list[dict], state: _State, rnd: _Round, bar: Progress) -> None:
    """Fold a round's new records into the state."""
    for rec in records:
        kind = rec.get("kind")
        if kind == "collected":
            if state.round_items is None:  # every worker collects the same tests
                state.round_items = rec.get("items")
        elif kind == "result":
            status, test = rec.get("status"), rec.get("test")
            if rnd.stopping and status in FAILED:
                continue  # interrupted by us, not a finding (real ones have been recorded)
            now = time.monotonic()
            rnd.first_result = rnd.first_result or now - rnd.started
            state.first_result = state.first_result or now - state.start
            rnd.results.append((test, status))
            state.round_done = len(rnd.results)
            state.results[status] = state.results.get(status, 0) + 1
            if status in FAILED:
                _note_failure(state, bar, test, rnd, text=rec.get("text"))
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
            if rec.get("status") in ("failed", "error") and rec.get("test"):
                _note_failure(state, bar, rec["test"], rnd,
                              text=rec.get("text") or rec.get("reason"), replay=rec.get("replay"))


def _junit_of_round(rnd: int, results: Sequence[tuple[str, str]], texts: dict[str, str],
                    path: Path) -> None:
    """A JUnit file for a round that was killed before pytest wrote its own: the properties
    that finished, with their outcome and the failure evidence."""
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name=f"fuzz-round-{rnd}", tests=str(len(results)),
                       failures=str(sum(s == "FAILED" for _, s in results)),
                       errors=str(sum(s == "ERROR" for _, s in results)),
                       skipped=str(sum(s == "SKIPPED" for _, s in results)))
    for nodeid, status in results:
        module, _, name = nodeid.partition("::")
        case = ET.SubElement(suite, "testcase", classname=module.removesuffix(".py")
                             .replace("/", "."), name=name)
        if status in FAILED:
            tag = "failure" if status == "FAILED" else "error"
            text = texts.get(nodeid, "")
            ET.SubElement(case, tag, message=text.split("\n", 1)[0][:200]).text = text
        elif status == "SKIPPED":
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
    state = _State(start=start)
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
    rounds: list[dict] = []
    junit_files: list[Path] = []
    usage_message = None
    startup = None
    planned: int | None = None  # tests in a full round: what every round means to cover
    covered: dict[str, int] = {}  # test id -> rounds in which it finished
    previous = {sig: signal.signal(sig, _stop_requested) for sig in (signal.SIGINT,
                                                                      signal.SIGTERM)}
    _STOP.clear()
    with progress(total=None, label=_status_line(state, None, deadline), out=out) as bar:
        bar.say(f"fuzz: {workers} worker{'s' * (workers != 1)}, shard {shard or 'all'}, "
                f"budget {clock(budget)}, database {where}"
                f"{' read-only' if effective and read_only_db else ''}, order seed {seed}")
        try:
            while not _STOP.is_set():
                remaining = deadline - time.monotonic()
                if rounds and remaining < max(MIN_ROUND_SECONDS, 1.5 * (startup or 0)):
                    break
                number = len(rounds) + 1
                rnd = _Round(number, _round_examples(number, cap), time.monotonic())
                state.round_done, state.round_items = 0, None
                junit = work / f"round-{number}.xml"
                cmd = base + ["--actverify-order", str(seed + number - 1),
                              "--actverify-max-examples", str(rnd.max_examples),
                              f"--junitxml={junit}", "-o", f"junit_suite_name=fuzz-round-{number}",
                              *pytest_args]
                grace = min(GRACE_SECONDS, 0.1 * budget)
                rc, log = _run_round(cmd, env, work, state, bar, rnd, deadline - grace,
                                     deadline)
                planned = planned if planned is not None else state.round_items
                for nodeid, _ in rnd.results:
                    covered[nodeid] = covered.get(nodeid, 0) + 1
                if startup is None:
                    startup = rnd.first_result or (time.monotonic() - rnd.started)
                if not junit.exists():  # killed at the deadline before pytest wrote it
                    texts = {f.nodeid: f.text or "" for f in state.failures.values()}
                    _junit_of_round(number, rnd.results, texts, junit)
                junit_files.append(junit)
                rounds.append({"round": number, "max_examples": rnd.max_examples,
                               "seconds": round(time.monotonic() - rnd.started, 2),
                               "properties": len(rnd.results), "pytest_status": rc,
                               "stopped_at_deadline": rnd.stopping})
                if state.failures or rnd.stopping or _STOP.is_set():
                    break
                if rc == 0:
                    continue  # the round finished within the budget: another, deeper one
                if rc == 5:
                    usage_message = ("no property selected: check -k, the --actverify-* "
                                     "options and --shard")
                else:
                    tail = "\n".join(log.splitlines()[-25:])
                    usage_message = f"pytest stopped with status {rc}:\n{tail}"
                break
        except KeyboardInterrupt:
            _STOP.set("SIGINT")
        finally:
            state.running.clear()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    try:
        summary = _report(state=state, rounds=rounds, planned=planned, covered=covered,
                         usage_message=usage_message, targets=targets, effective=effective,
                         read_only_db=read_only_db, pytest_args=pytest_args, budget=budget,
                         workers=workers, shard=shard, seed=seed, out=out)
        if junit_file is not None:
            _merge_junit(junit_files, junit_file, planned=planned or 0, covered=covered)
        if json_file is not None:
            json_file.write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary["status"]


def _run_round(cmd: list[str], env: dict, work: Path, state: _State, bar: Progress,
               rnd: _Round, stop_at: float, kill_at: float) -> tuple[int, str]:
    """Run one round of pytest in its own process group, reading its records as they come;
    SIGINT at `stop_at` (pytest writes its report), SIGKILL to the whole group at `kill_at`.
    Returns pytest's exit status and its console output (shown only when pytest fails)."""
    records = work / f"round-{rnd.number}.jsonl"
    log = work / f"round-{rnd.number}.log"
    env = {**env, RECORDS_ENV: str(records)}
    offset, killed = 0, False
    with open(log, "wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        while True:
            now = time.monotonic()
            if _STOP.is_set() and not killed:  # SIGINT/SIGTERM: stop the whole group now
                _signal_group(proc, signal.SIGKILL)
                rnd.stopping = killed = True
            if not rnd.stopping and now >= stop_at:
                _signal_group(proc, signal.SIGINT)
                rnd.stopping = True
            if not killed and now >= kill_at:
                _signal_group(proc, signal.SIGKILL)
                killed = True
            done = _wait(proc, POLL_SECONDS)
            new, offset = read_records(records, offset)
            _take(new, state, rnd, bar)
            bar.describe(_status_line(state, rnd, kill_at))
            if done:
                break
    except BaseException:
        _signal_group(proc, signal.SIGKILL)
        raise
    finally:
        rc = proc.wait()
        _signal_group(proc, signal.SIGKILL)  # stragglers (a worker stuck in C code)
    new, offset = read_records(records, offset)
    _take(new, state, rnd, bar)
    return rc, log.read_text(errors="replace")


def _wait(proc: subprocess.Popen, seconds: float) -> bool:
    """Whether `proc` ended within `seconds`."""
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def _report(*, state: _State, rounds: list[dict], planned: int | None,
            covered: dict[str, int], usage_message: str | None, targets: Sequence[str],
            effective: str | None, read_only_db: bool, pytest_args: Sequence[str],
            budget: float, workers: int, shard: str | None, seed: int, out: TextIO) -> dict:
    """Print the failures and the summary line; return the summary (the --json file)."""
    from actverify.database import ENV_VAR, describe
    from actverify.profiles import registered_name
    from actverify.replays import portable_reference

    interrupted_by_user = _STOP.is_set()
    elapsed = time.monotonic() - state.start
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
