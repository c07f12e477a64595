"""The `actverify` command: exit statuses, one-line usage errors, and the JSON report.

Exit status 0 means every property holds, 1 a violation, 2 a usage error with one line on
stderr saying what to fix.  The report run is kept short: one exact activation (relu), one
dtype, the `dev` profile.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import actverify.report
import actverify.runner
from actverify.cli import main
from actverify.report import SCHEMA_VERSION, Report
from actverify.runner import Outcome

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    status: int
    stdout: str
    stderr: str


def run_main(argv: list[str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return Run(status, out.getvalue(), err.getvalue())


def strict_json(text: str) -> dict:
    """JSON as the schema promises it: no NaN/Infinity tokens (non-finite numbers are strings)."""
    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------------------ usage errors

USAGE_ERRORS = [
    pytest.param(["report", "--activation", "swish"], "unknown activation 'swish'; use one of",
                 id="unknown-activation"),
    pytest.param(["report", "--dtype", "float8"], "unknown dtype 'float8'; use one of",
                 id="unknown-dtype"),
    pytest.param(["report", "--device", "tpu"], "unknown device 'tpu'", id="unknown-device"),
    pytest.param(["report", "--device", "cuda"], "device 'cuda' is not present on this machine",
                 id="absent-cuda", marks=pytest.mark.skipif(
                     torch.cuda.is_available(), reason="CUDA is present here")),
    pytest.param(["report", "--frobnicate"], "unrecognized arguments: --frobnicate",
                 id="bad-option"),
    pytest.param(["report", "--policy", "lax"], "argument --policy: invalid choice: 'lax'",
                 id="bad-policy"),
    pytest.param(["report", "--profile", "forever"], "argument --profile: invalid choice",
                 id="bad-profile"),
    pytest.param([], "the following arguments are required: command", id="no-command"),
    pytest.param(["replay", "/nonexistent/actverify/case.pt"],
                 "replay file '/nonexistent/actverify/case.pt' does not exist",
                 id="missing-replay-file"),
    pytest.param(["check", "pkg.mod:fn", "--timeout", "0"],
                 "--timeout must be a finite positive number", id="bad-timeout"),
    # Checked by the supervised worker (the parent imports no torch), still before any work.
    pytest.param(["check", "torch.special:expit", "--activation", "sigmoid", "--dtype", "fp8"],
                 "unknown dtype 'fp8'; use one of", id="check-unknown-dtype"),
    pytest.param(["check", "builtin:sigmoid:nosuch"], "no entry point 'nosuch' for sigmoid",
                 id="check-unknown-builtin-entry"),
    pytest.param(["check", "builtin:swish:F.swish"], "unknown activation 'swish'",
                 id="check-unknown-builtin-activation"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_usage_errors_exit_2_with_one_line_on_stderr(argv: list[str], message: str,
                                                     checks_home: Path) -> None:
    run = run_main(argv)

    assert run.status == 2
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_usage_error_through_python_dash_m() -> None:
    # The real entry point, in a fresh interpreter: exit status and stderr as a shell sees them.
    # `check` refuses the dtype in its torch-free parent, stopping the fork server it had
    # started at once (0.5 s of CPU; `report` imports torch first, 2.2 s); the other commands'
    # messages are test_usage_errors_exit_2_with_one_line_on_stderr's, in this process.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "actverify", "check", "torch.special:expit", "--activation",
         "sigmoid", "--dtype", "fp8"], capture_output=True, text=True, timeout=120, cwd=REPO,
        env=env)

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: unknown dtype 'fp8'; use one of float16, bfloat16, float32, float64"]


def test_names_written_out_for_the_command_line_match_their_sources() -> None:
    from actverify import accuracy, dtypes, names

    assert names.DTYPE_NAMES == dtypes.DTYPE_NAMES
    assert names.POLICY_NAMES == tuple(accuracy.POLICIES)
    assert names.KINKS == accuracy.KINKS


def test_check_starts_as_many_workers_as_its_plan_can_keep(monkeypatch) -> None:
    import importlib

    from actverify.planned import Plan, PlannedSubject

    check = importlib.import_module("actverify.check")  # the module (actverify.check: the function)

    monkeypatch.setattr(check, "available_cores", lambda: 2)
    start = check.workers_to_start
    assert start(None, properties=None, dtypes=None, devices=None) == 2
    assert start(3, properties=None, dtypes=None, devices=None) == 3  # as asked
    # A few named properties cannot reach RUNS_PER_WORKER runs per worker: one.
    assert start(None, properties=["range"], dtypes=None, devices=None) == 1
    many = [f"p{i}" for i in range(check.RUNS_PER_WORKER)]
    assert start(None, properties=many, dtypes=["float32"], devices=["cpu"]) == 1
    assert start(None, properties=many, dtypes=["float32", "float64"], devices=["cpu"]) == 2
    subject = PlannedSubject("float32", "cpu", True, tuple(many))
    plan = Plan("k", "sigmoid", None, True, (subject,) * 2)
    assert check.check_workers(None, plan) == 2 and check.check_workers(1, plan) == 1
    assert check.check_workers(None, Plan("k", "sigmoid", None, True, (subject,))) == 1


def run_fresh(script: str, *, cwd: Path) -> subprocess.CompletedProcess:
    """`script` in a fresh interpreter (as a command runs: nothing imported yet) with this
    checkout on its path; it must exit 0."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def test_a_misspelt_dtype_is_refused_before_torch_is_imported(tmp_path: Path) -> None:
    # Every command that takes --dtype: exit 2 with one line, with no torch import first
    # (about 2 s of CPU for a typo).  A fresh interpreter, as the commands run.
    commands = [["report"], ["sweep", "--builtin"], ["isa"],
                ["check", "torch.special:expit", "--activation", "sigmoid"]]
    done = run_fresh("import sys\nfrom actverify.cli import main\n"
                     f"for command in {commands!r}:\n"
                     "    assert main(command + ['--dtype', 'fp8']) == 2, command\n"
                     "    assert 'torch' not in sys.modules, command\n", cwd=tmp_path)

    assert done.stderr.splitlines() == ["error: unknown dtype 'fp8'; use one of float16, "
                                        "bfloat16, float32, float64"] * len(commands)


def test_the_check_parent_never_imports_torch(tmp_path: Path) -> None:
    # Its workers do (one import each); a second one in the parent cost about 1.5 s of CPU
    # beside theirs.  A fresh interpreter, as the command runs.
    run_fresh("import sys\nfrom actverify.cli import main\n"
              "status = main(['check', 'torch.special:expit', '--activation', 'sigmoid', "
              "'--dtype', 'float32', '--property', 'range', '--json', 'r.json'])\n"
              "assert 'torch' not in sys.modules, 'the parent imported torch'\n"
              "sys.exit(status)\n", cwd=tmp_path)

    assert strict_json((tmp_path / "r.json").read_text())["verdict"] == "conforms"


def test_help_exits_0() -> None:
    with pytest.raises(SystemExit) as info, contextlib.redirect_stdout(io.StringIO()) as out:
        main(["report", "--help"])

    assert info.value.code == 0
    assert "--activation NAME" in out.getvalue()


# ---------------------------------------------------------------------------- the JSON report


def test_report_writes_the_json_report_after_every_outcome(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One run for all the report checks (under pytest-xdist a shared fixture would run once per
    # worker): relu, float32, cpu, the dev profile.  run_property is wrapped to read the JSON
    # file before each property runs, which shows whether Report.add rewrote it after every
    # outcome (a run killed halfway keeps what it found).
    path = tmp_path / "report.json"
    seen: list[int | None] = []  # outcomes in the file when each property started
    real = actverify.runner.run_property  # Report.run looks it up there when it runs

    def spy(*args: object, **kwargs: object) -> Outcome:
        seen.append(len(strict_json(path.read_text())["outcomes"]) if path.exists() else None)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(actverify.runner, "run_property", spy)
    monkeypatch.setattr(actverify.report, "SAVE_EVERY", 0.0)  # every pass rewrites the file
    monkeypatch.chdir(tmp_path)  # replay files (written on a failure) stay out of the repo

    run = run_main(["report", "--activation", "relu", "--dtype", "float32", "--device", "cpu",
                    "--profile", "dev", "--json", str(path),
                    "--workers", "1"])  # the spy must run in this process

    assert run.status == 0, run.stdout[-3000:]
    assert "all properties hold" in run.stdout
    data = strict_json(path.read_text())
    # The documented schema, and a verdict that agrees with the exit status.
    assert {"schema_version", "verdict", "summary", "outcomes"} <= set(data)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["verdict"] == "conforms"
    assert data["findings"] == []
    # Only what was asked for was checked.
    assert [(r["activation"], r["dtype"], r["device"]) for r in data["summary"]] == [
        ("relu", "float32", "cpu")]
    row = data["summary"][0]
    assert row["failed"] == 0 and row["errors"] == 0
    assert row["passed"] + row["not_checked"] == row["total"] == len(data["outcomes"])
    assert {(o["activation"], o["dtype"], o["policy"]) for o in data["outcomes"]} == {
        ("relu", "float32", "default")}
    assert {o["status"] for o in data["outcomes"]} <= {"passed", "not_checked"}
    assert data["complete"] is True and data["exit_status"] == 0
    assert data["counts"]["planned"] == data["counts"]["run"] == data["counts"]["passed"]
    # Written incrementally: before the k-th property ran, the file held the k - 1 before it
    # (and before the first, the plan: nothing run yet, the verdict incomplete).
    assert len(seen) == len(data["outcomes"]) > 1
    assert seen == list(range(len(seen)))
    assert not path.with_suffix(".json.tmp").exists()  # each write replaced the file whole


def test_report_saves_passes_at_intervals_and_anything_else_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actverify.report, "SAVE_EVERY", 3600.0)
    path = tmp_path / "report.json"
    report = Report(json_path=path, planned=3)

    def outcome(status: str) -> Outcome:
        return Outcome("accuracy", "relu", "torch.relu", "float32", "cpu", "default", status)

    def saved() -> list[str]:
        return [o["status"] for o in strict_json(path.read_text())["outcomes"]]

    report.add(outcome("passed"))  # the first outcome is saved
    report.add(outcome("passed"))  # within the interval: not yet
    assert saved() == ["passed"]
    report.add(outcome("failed"))  # a finding is saved at once, with the passes before it
    assert saved() == ["passed", "passed", "failed"]


def test_sweep_builtin_activation_sweeps_that_activation_only(capsys) -> None:
    assert main(["sweep", "--builtin", "--activation", "relu", "--dtype", "bfloat16"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "[" in line]
    assert lines and all(line.startswith("F.relu [relu] bfloat16") for line in lines), lines
