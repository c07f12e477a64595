"""Fault injection: a verdict is a promise.

One kernel per fault (tests/faults.py) through `actverify check`, the pytest suite and
`actverify fuzz`, and SIGINT/SIGTERM sent to check and fuzz mid-run.  Each case asserts the
exit status (0 conforms, 1 violations, 2 usage error, 3 incomplete), that the JSON (and JUnit)
reports are valid and say what ran and what did not, and that no process it started survives.
Independent command lines run in parallel within a test; where the process boundary under
test is the supervised worker's, not the command's, the check runs in this process on the fork
server its pytest process shares (conftest.py: `checks_home`), and the commands are the slow
set's.  Everything is float32, one or two properties and tiny time limits, so the matrix stays
within seconds of CPU per case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_cli import Run, run_main

REPO = Path(__file__).resolve().parent.parent
FAULTS = REPO / "tests" / "faults.py"
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals, /proc and ctypes "
                                "faults as on Linux")


@dataclass
class Done:
    status: int
    out: str
    marker: str


def _env(marker: str, **extra: str) -> dict[str, str]:
    # The marker is inherited by every process the command starts: survivors are found by it.
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "ACTVERIFY_FAULT_MARKER": marker, **extra}


def survivors(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if f"ACTVERIFY_FAULT_MARKER={marker}".encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def run(argv: list[str], cwd: Path, *, timeout: float = 120, **env: str) -> Done:
    marker = uuid.uuid4().hex
    done = subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=_env(marker, **env),
                          capture_output=True, text=True, timeout=timeout)
    return Done(done.returncode, done.stdout + done.stderr, marker)


def in_parallel(jobs: dict[str, callable], *, here: dict[str, callable] | None = None) -> dict:
    """The jobs' results, by name; the jobs run in threads, and the `here` jobs one after
    another in this thread meanwhile (what must run in the main thread: signal handlers,
    a pytest session in this process)."""
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        done = {name: job() for name, job in (here or {}).items()}
        return {**done, **{name: f.result() for name, f in futures.items()}}


def gone(marker: str) -> bool:
    deadline = time.monotonic() + 5  # a killed process may take a moment to be reaped
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not survivors(marker)


# ---------------------------------------------------------------------------------- check

# kernel -> (properties checked, exit status, verdict, what the JSON counts must show)
CHECK_MATRIX = {
    "correct": (["signature"], 0, "conforms", {"passed": 1}),
    "raises": (["signature"], 1, "violations", {"failed": 1}),
    "garbage": (["signature"], 1, "violations", {"failed": 1}),
    "hangs_in_python": (["signature"], 3, "incomplete", {"timed_out": 1}),
    "hangs_in_c": (["signature"], 3, "incomplete", {"timed_out": 1}),
    "segfaults": (["signature"], 1, "violations", {"failed": 1}),
    "os_exit": (["signature"], 1, "violations", {"failed": 1}),
    "sys_exit": (["signature"], 1, "violations", {"failed": 1}),
    "slow": (["signature"], 3, "incomplete", {"timed_out": 1}),
    "noisy": (["determinism"], 1, "violations", {"failed": 1}),
}


def _check_argv(kernel: str, report: Path) -> list[str]:
    """`actverify check`'s arguments for one kernel: float32, its properties, 0.3 s a call."""
    argv = ["check", f"{FAULTS}:{kernel}", "--activation", "sigmoid", "--dtype", "float32",
            "--timeout", "0.3", "--json", str(report)]
    for p in CHECK_MATRIX[kernel][0]:
        argv += ["--property", p]
    return argv


def _check_cli(kernels: list[str], tmp_path: Path) -> dict:
    """`actverify check` on each kernel, each a command of its own, all in parallel."""
    def job(kernel: str):
        def go() -> tuple[Done, dict | None]:
            report = tmp_path / f"{kernel}.json"
            done = run(["actverify", *_check_argv(kernel, report)], tmp_path)
            return done, json.loads(report.read_text()) if report.exists() else None
        return go

    return in_parallel({k: job(k) for k in kernels})


def _forked_workers() -> list[int]:
    """The live workers of this process's fork servers (actverify.isolation)."""
    parents, servers = {}, set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
            if int(ppid) == os.getpid() and b"--fork-server" in (entry / "cmdline").read_bytes():
                servers.add(int(entry.name))
        except OSError:  # it has just gone
            continue
        if state != "Z":  # a zombie has ended: only its status is left to collect
            parents[int(entry.name)] = int(ppid)
    return [pid for pid, ppid in parents.items() if ppid in servers]


def _no_worker_left() -> bool:
    deadline = time.monotonic() + 5  # as in `gone`
    while _forked_workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _forked_workers()


def _assert_verdict(kernel: str, status: int, data: dict) -> None:
    props, want, verdict, counts = CHECK_MATRIX[kernel]
    assert status == want
    assert data is not None and data["verdict"] == verdict, kernel
    assert data["exit_status"] == want and data["complete"] is (want in (0, 1)), kernel
    assert data["counts"]["planned"] == len(props), kernel
    assert {k: data["counts"][k] for k in counts} == counts, (kernel, data["counts"])


# Faults a process survives: the Python API, in this process (no worker to start).
IN_PROCESS = ["correct", "raises", "garbage", "hangs_in_python", "sys_exit", "slow", "noisy"]
# Faults that end or stall a process: `actverify check`, whose worker they take down.
OUT_OF_PROCESS = ["os_exit", "segfaults", "hangs_in_c"]


def test_faults_a_process_survives_through_the_python_api(tmp_path: Path,
                                                            monkeypatch) -> None:
    import actverify

    monkeypatch.chdir(tmp_path)  # replay files of the findings stay out of the repository
    for kernel in IN_PROCESS:
        path = tmp_path / f"{kernel}.json"
        report = actverify.check(f"{FAULTS}:{kernel}", activation="sigmoid",
                                 dtypes=["float32"], properties=CHECK_MATRIX[kernel][0],
                                 isolate=False, call_timeout=0.3, json_path=path)

        _assert_verdict(kernel, report.exit_status, json.loads(path.read_text()))
        if kernel == "slow":  # how to tell a slow kernel from a hung one
            assert "rerun with --timeout 1.2" in report.outcomes[0].reason


def test_faults_that_end_or_stall_the_process_through_check(checks_home: Path,
                                                          tmp_path: Path) -> None:
    # `actverify check`'s main in this process, one kernel after another, forking its workers
    # from the fork server this pytest process shares among its checks: what a fault takes
    # down is the worker, and its death must be the finding.  The command as a shell runs it
    # (exit status, stderr) is test_usage_error_through_python_dash_m's and the slow
    # test_every_fault_through_the_check_command's; a module that ends the process it is
    # imported in is checked so here, its whole output (every process's) one line.
    at_import = f"{REPO / 'tests' / 'faults_exit_at_import.py'}:sigmoid"
    two = tmp_path / "two-workers.json"

    def check(kernel: str):
        def go() -> tuple[Run, dict]:
            report = tmp_path / f"{kernel}.json"
            ran = run_main(_check_argv(kernel, report))
            assert _no_worker_left(), f"{kernel}: a worker outlived the run"
            return ran, json.loads(report.read_text())
        return go

    results = in_parallel({"at_import": lambda: run(
        ["actverify", "check", at_import, "--activation", "sigmoid", "--dtype", "float32"],
        tmp_path)}, here={**{k: check(k) for k in OUT_OF_PROCESS}, "two_workers": lambda: run_main(
        ["check", f"{FAULTS}:segfaults", "--activation", "sigmoid", "--dtype", "float32",
         "--property", "signature", "--property", "determinism", "--workers", "2",  # each
         "--json", str(two)])})  # worker's crash is its own finding

    two_workers, done = results.pop("two_workers"), results.pop("at_import")
    data = json.loads(two.read_text())
    assert two_workers.status == 1, two_workers.stderr[-2000:]
    assert data["counts"]["planned"] == data["counts"]["failed"] == 2
    assert [o["property"] for o in data["outcomes"]] == ["signature", "determinism"]
    assert all("killed by SIGSEGV" in f["failure"]["message"] for f in data["findings"])
    assert _no_worker_left()

    # A module that ends the process while being imported: not importable, exit 2, one line.
    assert done.status == 2 and len(done.out.strip().splitlines()) == 1, done.out
    assert "sys.exit(0)" in done.out and gone(done.marker)

    for kernel in OUT_OF_PROCESS:
        ran, data = results[kernel]
        _assert_verdict(kernel, ran.status, data)
    message = {k: results[k][1]["findings"][0]["failure"]["message"] for k in OUT_OF_PROCESS}
    assert "killed by SIGSEGV" in message["segfaults"]
    assert "exit status 0" in message["os_exit"]
    assert "did not return within 0.3 s" in message["hangs_in_c"]
    # Slow or hung? The report says how to give a slow kernel more time.
    assert "rerun with --timeout 1.2" in results["hangs_in_c"][1]["outcomes"][0]["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("forks", [True, False], ids=["forked", "spawned"])
def test_a_dead_worker_is_a_finding_and_replaced_forked_or_spawned(
        forks: bool, tmp_path: Path, monkeypatch) -> None:
    # Workers come from the fork server on Linux, else each is a fresh interpreter (the only
    # way elsewhere): both must turn a death into the finding and carry on in a fresh worker.
    import actverify
    from actverify import isolation

    monkeypatch.setattr(isolation, "FORKS", forks)
    monkeypatch.chdir(tmp_path)
    try:
        report = actverify.check(f"{FAULTS}:os_exit", activation="sigmoid", dtypes=["float32"],
                                 properties=["signature", "determinism"], workers=1,
                                 json_path=tmp_path / "r.json")
    finally:
        isolation.discard_prestarted()  # this process's fork server, if any, ends here

    data = json.loads((tmp_path / "r.json").read_text())
    assert report.exit_status == 1 and data["counts"]["failed"] == 2, data["counts"]
    assert all("exit status 0" in f["failure"]["message"] for f in data["findings"])


@pytest.mark.slow
def test_every_fault_through_the_check_command(tmp_path: Path) -> None:
    results = _check_cli(list(CHECK_MATRIX), tmp_path)

    for kernel, (done, data) in results.items():
        _assert_verdict(kernel, done.status, data)
        assert gone(done.marker), f"{kernel}: a process outlived the run"
    assert "sys.exit(0)" in results["sys_exit"][1]["findings"][0]["failure"]["message"]


def test_a_target_that_declares_limits_is_not_checked(tmp_path: Path) -> None:
    import actverify

    report = actverify.check(f"{FAULTS}:cuda_only", activation="sigmoid", dtypes=["float32"],
                             devices=["cpu"], properties=["signature"], isolate=False)

    assert report.verdict == "nothing checked" and report.exit_status == 3
    assert report.counts()["not_checked"] >= 1


# ------------------------------------------------------------------- pytest suite and fuzz


def _fuzz_command(kernel: str, *, minutes: str, out: Path, junit: Path) -> list[str]:
    """`actverify fuzz` on one fault kernel's `signature` property, float32, no workers."""
    return ["actverify", "fuzz", "--minutes", minutes, "--workers", "0",
            "--target", f"{FAULTS}:{kernel}=sigmoid", "--json", str(out),
            "--junitxml", str(junit), "--", "-k", "signature", "--actverify-dtype", "float32"]

@pytest.mark.parametrize("cases", [
    pytest.param(["suite-cuda_only", "fuzz-hangs_in_c"], id="default"),
    pytest.param(["suite-os_exit", "suite-hangs_in_c", "fuzz-cuda_only"], id="more",
                 marks=pytest.mark.slow)])
def test_faults_through_the_pytest_suite_and_fuzz(cases: list[str], tmp_path: Path,
                                                  monkeypatch, capsys) -> None:
    def suite_args(kernel: str) -> tuple[list[str], Path]:
        junit = tmp_path / f"{kernel}.xml"
        return [str(REPO / "properties"), f"--rootdir={REPO}", "-p", "no:cacheprovider", "-p",
                "no:randomly", "-n", "0", "-q", "--actverify-target",
                f"{FAULTS}:{kernel}=sigmoid", "--actverify-dtype", "float32", "-k",
                "signature", f"--junitxml={junit}"], junit

    def suite(kernel: str):  # a kernel that ends or stalls the process: a pytest of its own
        def go() -> tuple[Done, ET.Element]:
            args, junit = suite_args(kernel)
            done = run(["pytest", *args], tmp_path, ACTVERIFY_TIMEOUT="0.5")
            return done, ET.parse(junit).getroot()
        return go

    def suite_here(kernel: str):  # one that does neither: a pytest session in this process
        def go() -> tuple[Done, ET.Element]:
            args, junit = suite_args(kernel)
            monkeypatch.setenv("ACTVERIFY_TIMEOUT", "0.5")
            status = pytest.main(args)
            captured = capsys.readouterr()
            return Done(int(status), captured.out + captured.err, ""), ET.parse(junit).getroot()
        return go

    def fuzz(kernel: str):
        def go() -> tuple[Done, dict, ET.Element]:
            out, junit = tmp_path / f"fuzz-{kernel}.json", tmp_path / f"fuzz-{kernel}.xml"
            done = run(_fuzz_command(kernel, minutes="0.5", out=out, junit=junit), tmp_path,
                       ACTVERIFY_TIMEOUT="0.5", TMPDIR=str(tmp_path))
            return done, json.loads(out.read_text()), ET.parse(junit).getroot()
        return go

    jobs = {"suite-os_exit": suite("os_exit"), "suite-hangs_in_c": suite("hangs_in_c"),
            "fuzz-hangs_in_c": fuzz("hangs_in_c"), "fuzz-cuda_only": fuzz("cuda_only")}
    here = {"suite-cuda_only": suite_here("cuda_only")}
    results = in_parallel({name: jobs[name] for name in cases if name in jobs},
                          here={name: here[name] for name in cases if name in here})

    for name in {"suite-os_exit", "suite-hangs_in_c"} & set(cases):  # the test fails, and
        done, junit = results[name]  # pytest goes on and reports (a timeout: incomplete, 3)
        assert done.status == (3 if "hangs" in name else 1), done.out[-2000:]
        suite_node = junit if junit.tag == "testsuite" else junit.find("testsuite")
        assert suite_node.get("tests") == "1" and suite_node.get("failures") == "1"
        assert gone(done.marker)
    if "suite-cuda_only" in results:  # declared limits: skipped, never a crash
        done, junit = results["suite-cuda_only"]
        assert done.status == 0 and "NoneType" not in done.out, done.out[-2000:]
        assert "1 skipped" in done.out
    if "fuzz-hangs_in_c" in results:  # a hang is a finding, not "0 failures, exit 0";
        done, summary, junit = results["fuzz-hangs_in_c"]  # timed out: incomplete, never 1
        assert done.status == 3 and summary["verdict"] == "incomplete", done.out[-2000:]
        assert "TIMED OUT" in done.out and summary["failures"][0]["timed_out"]
        assert summary["planned"] == summary["run"] == 1 and junit.get("planned") == "1"
        assert gone(done.marker)
    if "fuzz-cuda_only" in results:  # nothing checked is no pass
        done, summary, junit = results["fuzz-cuda_only"]
        assert done.status == 3 and summary["verdict"] == "nothing checked", done.out[-2000:]
        assert "NoneType" not in done.out
    assert not list(tmp_path.glob("actverify-fuzz-*"))  # no temporary directory left


# ----------------------------------------------------------------------------- signals

def _interrupt(argv: list[str], cwd: Path, sig: int, *, after: str, **env: str) -> Done:
    """Start `argv`, wait until its output shows `after` (it is mid-run), send `sig`."""
    marker = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=cwd, env=_env(marker, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if after in line:
            break
    time.sleep(1.0)
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    return Done(proc.returncode, "".join(seen) + rest, marker)


@pytest.mark.parametrize("cases", [
    pytest.param(["check-SIGINT", "fuzz-SIGTERM"], id="default"),
    pytest.param(["check-SIGTERM", "fuzz-SIGINT"], id="more", marks=pytest.mark.slow)])
def test_sigint_and_sigterm_stop_check_and_fuzz_with_their_reports(cases: list[str],
                                                                    tmp_path: Path) -> None:
    def check(sig: int):
        def go() -> tuple[Done, dict]:
            report = tmp_path / f"check-{sig}.json"
            # The slow kernel (0.5 s a call, 20 s allowed) keeps the run busy when the signal
            # comes; the worker prints nothing, so wait for the report file instead.
            marker = uuid.uuid4().hex
            proc = subprocess.Popen(
                [sys.executable, "-m", "actverify", "check", f"{FAULTS}:slow", "--activation",
                 "sigmoid", "--dtype", "float32", "--timeout", "20", "--property",
                 "signature", "--property", "determinism", "--workers", "2",
                 "--json", str(report)],
                cwd=tmp_path, env=_env(marker), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            while not report.exists() and proc.poll() is None:
                time.sleep(0.1)
            time.sleep(1.0)
            proc.send_signal(sig)
            out, _ = proc.communicate(timeout=60)
            return Done(proc.returncode, out, marker), json.loads(report.read_text())
        return go

    def fuzz(sig: int):
        def go() -> tuple[Done, dict, ET.Element]:
            out, junit = tmp_path / f"fuzz-{sig}.json", tmp_path / f"fuzz-{sig}.xml"
            done = _interrupt(_fuzz_command("hangs_in_c", minutes="2", out=out, junit=junit),
                              tmp_path, sig, after="fuzz: 0 workers", ACTVERIFY_TIMEOUT="60",
                              TMPDIR=str(tmp_path))
            return done, json.loads(out.read_text()), ET.parse(junit).getroot()
        return go

    results = in_parallel({name: (check if name.startswith("check") else fuzz)(
        getattr(signal, name.split("-")[1])) for name in cases})

    for name in [c for c in cases if c.startswith("check")]:
        done, data = results[name]
        assert done.status == 3, done.out[-2000:]
        assert data["verdict"] == "incomplete" and not data["complete"]
        assert data["counts"]["planned"] == 2 and data["counts"]["run"] < 2
        assert any("interrupted by SIG" in why for why in data["incomplete"])
        assert gone(done.marker), name
    for name in [c for c in cases if c.startswith("fuzz")]:
        done, summary, junit = results[name]
        assert done.status == 3, done.out[-2000:]
        assert summary["verdict"] == "incomplete" and "interrupted by SIG" in summary[
            "incomplete"][0]
        assert junit.tag == "testsuites" and junit.get("not_run") is not None
        assert gone(done.marker), name
    assert not list(tmp_path.glob("actverify-fuzz-*"))


def test_sigint_and_sigterm_stop_report_workers_with_the_report(tmp_path: Path) -> None:
    """`actverify report` on two worker processes: Ctrl-C (SIGINT to the whole process group)
    and SIGTERM to the parent alone (as `timeout` sends it) both stop every worker and leave
    the JSON saying the run is incomplete, with exit status 3."""
    def report(sig: int, *, group: bool):
        def go() -> tuple[Done, dict]:
            path, marker = tmp_path / f"report-{sig}.json", uuid.uuid4().hex
            proc = subprocess.Popen(
                [sys.executable, "-m", "actverify", "report", "--activation", "gelu",
                 "--workers", "2", "--json", str(path)], cwd=tmp_path, env=_env(marker),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=group)
            while proc.poll() is None and not (
                    path.exists() and json.loads(path.read_text() or "{}").get("outcomes")):
                time.sleep(0.1)  # some outcomes in: both workers are busy
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
            out, _ = proc.communicate(timeout=60)
            return Done(proc.returncode, out, marker), json.loads(path.read_text())
        return go

    results = in_parallel({"SIGINT": report(signal.SIGINT, group=True),
                           "SIGTERM": report(signal.SIGTERM, group=False)})
    for name, (done, data) in results.items():
        assert done.status == 3, (name, done.out[-2000:])
        assert data["verdict"] == "incomplete" and not data["complete"]
        assert 0 < data["counts"]["run"] < data["counts"]["planned"]
        assert f"interrupted by {name}" in data["incomplete"], data["incomplete"]
        assert gone(done.marker), name


# ------------------------------------------------------------------------------- seeds

def test_seeds_derive_from_the_kernel_not_from_how_its_path_is_spelled() -> None:
    from actverify.runner import kernel_identity
    from actverify.targets import resolve_target

    spellings = ["tests/faults.py:correct", "./tests/faults.py:correct",
                 "tests/../tests/faults.py:correct", f"{FAULTS}:correct"]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        identities = {kernel_identity(resolve_target(s, "sigmoid")) for s in spellings}
    finally:
        os.chdir(cwd)

    assert identities == {"faults:correct"}
