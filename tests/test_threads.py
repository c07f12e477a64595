"""Thread discipline: one intra-op thread for property checking, every available core for
sweeps, `--threads` above OMP_NUM_THREADS above both, and bad values are usage errors."""

from __future__ import annotations

import pytest
import torch

from actverify import threads
from actverify.cli import main
from actverify.errors import UsageError


@pytest.fixture
def torch_threads():
    """Restore torch's thread count and OMP_NUM_THREADS after a test that changes them."""
    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        yield mp
    torch.set_num_threads(before)


@pytest.mark.parametrize("environ, threads_arg, work, expected", [
    ({}, None, "properties", threads.PROPERTY_THREADS),
    ({}, None, "sweep", threads.available_cores()),
    ({"OMP_NUM_THREADS": "3"}, None, "properties", 3),
    ({"OMP_NUM_THREADS": "3"}, None, "sweep", 3),
    ({"OMP_NUM_THREADS": "3"}, 2, "sweep", 2),
    ({"OMP_NUM_THREADS": ""}, None, "properties", threads.PROPERTY_THREADS),
])
def test_resolve_order(environ, threads_arg, work, expected):
    assert threads.resolve(threads=threads_arg, work=work, environ=environ) == expected


@pytest.mark.parametrize("environ, threads_arg", [
    ({"OMP_NUM_THREADS": "many"}, None),
    ({"OMP_NUM_THREADS": "0"}, None),
    ({}, 0),
    ({}, 1.5),
])
def test_bad_values_are_usage_errors(environ, threads_arg):
    with pytest.raises(UsageError, match="OMP_NUM_THREADS|--threads"):
        threads.resolve(threads=threads_arg, environ=environ)


def test_child_env_gives_workers_one_thread_unless_told():
    env = {}
    assert threads.child_env(env) == 1 and env["OMP_NUM_THREADS"] == "1"
    env = {"OMP_NUM_THREADS": "2"}
    assert threads.child_env(env) == 2
    assert threads.child_env(env, threads=3) == 3 and env["OMP_NUM_THREADS"] == "3"


def test_apply_sets_torch_and_exports(torch_threads):
    torch_threads.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.apply(threads=2, work="properties") == 2
    assert torch.get_num_threads() == 2
    import os

    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_limited_restores(torch_threads):
    torch.set_num_threads(2)
    with threads.limited(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_pytest_workers_run_one_thread():
    """conftest.py's pytest_configure applied the discipline to this (worker) process."""
    assert torch.get_num_threads() == threads.resolve()


@pytest.mark.parametrize("argv", [
    ["check", "torch.special:expit", "--activation", "sigmoid", "--threads", "0"],
    ["sweep", "--builtin", "--threads", "-1"],
    ["report", "--threads", "two"],
])
def test_cli_rejects_bad_threads_before_work(argv, capsys, checks_home):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--threads" in err and len(err.splitlines()) == 1


def test_cli_rejects_bad_omp_num_threads(torch_threads, capsys):
    torch_threads.setenv("OMP_NUM_THREADS", "lots")
    assert main(["report", "--activation", "relu"]) == 2
    assert "OMP_NUM_THREADS" in capsys.readouterr().err


def test_fuzz_rejects_bad_threads_before_work():
    from actverify.fuzz import fuzz

    with pytest.raises(UsageError, match="--threads"):
        fuzz(minutes=1, workers=1, threads=0)


def test_report_on_two_workers_gives_the_outcomes_of_one(tmp_path, monkeypatch):
    """actverify.parallel: forked workers, outcomes in the serial order, the same verdicts."""
    import json
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    argv = ["report", "--activation", "step", "--dtype", "float16", "--profile", "dev"]
    assert main([*argv, "--workers", "1", "--json", "w1.json"]) == 0
    # Forking from a pytest-xdist worker would copy its I/O thread's locks: a fresh process.
    done = subprocess.run([sys.executable, "-m", "actverify", *argv, "--workers", "2",
                           "--json", "w2.json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = (json.loads((tmp_path / f"w{w}.json").read_text())["outcomes"] for w in (1, 2))
    assert [(o["property"], o["target"], o["status"]) for o in one] == \
        [(o["property"], o["target"], o["status"]) for o in two]


def test_report_rejects_bad_workers(capsys):
    assert main(["report", "--activation", "relu", "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
