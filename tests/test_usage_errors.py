"""Misuse is exit status 2 and one line, before any work starts: output paths that cannot be
written, device indices, malformed targets and databases, time limits that are no time limits,
and replay files that are not replay files actverify wrote (which are read as data: a crafted
file must not run code)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.test_cli import run_main

REPO = Path(__file__).resolve().parent.parent
MISSING = "/nonexistent/actverify/report.json"
UNWRITABLE = "/proc/actverify-report.json"  # even root cannot create a file there
CHECK = ["check", "builtin:sigmoid:F.sigmoid", "--dtype", "float32"]

USAGE_ERRORS = [
    pytest.param([*CHECK, "--json", MISSING], "does not exist; create it first",
                 id="check-json-missing-dir"),
    pytest.param([*CHECK, "--json", str(REPO)], "is a directory", id="check-json-onto-dir"),
    pytest.param([*CHECK, "--json", UNWRITABLE], "cannot be written", id="check-json-unwritable"),
    pytest.param(["report", "--activation", "relu", "--json", MISSING], "does not exist",
                 id="report-json-missing-dir"),
    pytest.param(["sweep", "--builtin", "--out", str(REPO / "README.md")], "is a file",
                 id="sweep-out-file"),
    pytest.param(["fuzz", "--minutes", "5", "--json", MISSING], "does not exist",
                 id="fuzz-json-missing-dir"),
    pytest.param(["fuzz", "--minutes", "5", "--junitxml", str(REPO)], "is a directory",
                 id="fuzz-junit-onto-dir"),
    pytest.param(["fuzz", "--minutes", "5", "--db", "dir:"], "names no directory",
                 id="fuzz-db-empty-dir"),
    pytest.param([*CHECK, "--device", "cpu:abc"], "there is no device 'cpu:abc'", id="device-cpu-abc"),
    pytest.param(["report", "--device", "cpu:5"], "there is no device 'cpu:5'", id="device-cpu-5"),
    pytest.param(["check", "builtin:sigmoid", "--activation", "sigmoid"],
                 "must look like 'builtin:ACTIVATION:ENTRY'", id="malformed-builtin"),
    pytest.param([*CHECK, "--timeout", "nan"], "finite positive", id="timeout-nan"),
    pytest.param([*CHECK, "--timeout", "inf"], "finite positive", id="timeout-inf"),
    pytest.param([*CHECK, "--timeout", "-1"], "finite positive", id="timeout-negative"),
    pytest.param([*CHECK, "--property", "nosuch"], "unknown property 'nosuch'",
                 id="unknown-property"),
    pytest.param(["check", "no_such_package.kernels:fn", "--activation", "sigmoid"],
                 "no module named 'no_such_package'", id="missing-package"),
]


def assert_one_line(run, message: str) -> None:
    assert run.status == 2, run.stdout[-2000:] + run.stderr[-2000:]
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert message in lines[0]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_usage_errors_exit_2_with_one_line_before_any_work(argv: list[str], message: str,
                                                           checks_home: Path) -> None:
    before = sorted(checks_home.rglob("*"))

    run = run_main(argv)

    assert_one_line(run, message)
    assert run.stdout == ""
    assert sorted(checks_home.rglob("*")) == before  # no work started: no report, no .tmp


# ------------------------------------------------------------------------------ replay files

CASE = {"property": "signature", "target": "builtin:sigmoid:F.sigmoid", "activation": "sigmoid",
        "dtype": "float32", "device": "cpu", "policy": "default",
        "x": torch.tensor([0.5, -1.0]), "params": {}, "layout": "contiguous"}


class _Evil:
    """A pickle that runs code when it is unpickled: it creates the marker directory."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _replay_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    files: dict[str, tuple[Path, str]] = {}

    def save(name: str, blob, message: str) -> None:
        path = tmp_path / f"{name}.pt"
        torch.save(blob, path)
        files[name] = (path, message)

    (tmp_path / "garbage.pt").write_bytes(b"\x00not a replay file\xff" * 10)
    files["garbage"] = (tmp_path / "garbage.pt", "is not a replay file actverify wrote")
    (tmp_path / "empty.pt").write_bytes(b"")
    files["empty"] = (tmp_path / "empty.pt", "is not a replay file actverify wrote")
    save("valid", CASE, "")
    data = (tmp_path / "valid.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    files["truncated"] = (tmp_path / "truncated.pt", "is not a replay file actverify wrote")
    save("list", [1, 2, 3], "holds a list, not a replay case")
    save("no-x", {k: v for k, v in CASE.items() if k != "x"}, "has no valid 'x'")
    save("unknown-property", {**CASE, "property": "nosuch"}, "unknown property 'nosuch'")
    save("wrong-dtype", {**CASE, "dtype": "float16"}, "its input is torch.float32")
    if not torch.cuda.is_available():
        save("cuda-case", {**CASE, "device": "cuda"}, "device 'cuda' is not present")
    save("malicious", {**CASE, "params": {"p": _Evil(tmp_path / "marker")}},
         "is not a replay file actverify wrote")
    del files["valid"]
    return files


def test_bad_replay_files_are_usage_errors_and_never_run_code(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, (path, message) in _replay_files(tmp_path).items():
        run = run_main(["replay", str(path)])

        assert_one_line(run, message)
    assert not (tmp_path / "marker").exists()  # the crafted pickle did not run


def test_a_valid_replay_file_replays(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    torch.save(CASE, tmp_path / "case.pt")

    run = run_main(["replay", str(tmp_path / "case.pt")])

    assert run.status == 0, run.stderr
    assert "signature holds for F.sigmoid" in run.stdout
