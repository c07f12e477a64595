"""actverify as a user gets it: the wheel, installed into an environment of its own, used from a
project outside this checkout (pytest plugin, `actverify check`, `actverify fuzz`, replays).

Run with `pytest -m wheel` (left out of the default run: it builds a wheel and starts a dozen
processes).  The environment reuses this one's dependencies (torch is never installed twice):
its site-packages links every package of ours except actverify itself, so only the wheel can
be imported, and the project's directory is nowhere near the checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel

ROOT = Path(__file__).resolve().parent.parent

KERNELS = '''
import torch

import actverify


def good_sigmoid(x):
    return torch.sigmoid(x)


def buggy_sigmoid(x):  # a planted bug: NaN for x > 5
    y = torch.sigmoid(x)
    return torch.where(x > 5, torch.full_like(y, float("nan")), y)


@actverify.declare(devices=["cuda"])
def cuda_sigmoid(x):
    return torch.sigmoid(x)
'''

USER_TESTS = '''
import torch

import actverify
from kernels import buggy_sigmoid, cuda_sigmoid, good_sigmoid

test_good = actverify.property_tests(good_sigmoid, activation="sigmoid", dtypes=[torch.float32])
test_buggy = actverify.property_tests(buggy_sigmoid, activation="sigmoid", dtypes=["float32"])
test_cuda = actverify.property_tests(cuda_sigmoid, activation="sigmoid", dtypes=["float32"])


def test_assert_close_in_a_users_test():
    x = torch.linspace(-20, 20, 4001, dtype=torch.bfloat16)
    actverify.assert_close(good_sigmoid(x), x, activation="sigmoid")
'''

# A project test that does not use actverify: the plugin must leave it alone.
PLAIN_TEST = '''
import sys

from hypothesis import given, settings, strategies as st


@given(st.integers())
def test_untouched(n):
    # Hypothesis's own choice: "default", or "ci" where it detects a CI environment
    assert settings.get_current_profile_name() in ("default", "ci")
    assert not settings.get_current_profile_name().startswith("actverify")
    assert "torch" not in sys.modules
'''

# The Python API on a callable that no import path reaches: the replay is a Python call.
API_SCRIPT = '''
import os
import re
import sys

import torch

import actverify


def main():
    def local_sigmoid(x):  # a local function: no import path
        y = torch.sigmoid(x)
        return torch.where(x > 5, torch.full_like(y, float("nan")), y)

    report = actverify.check(local_sigmoid, activation="sigmoid", dtypes=["float32"],
                             profile="dev")
    assert not report.ok
    line = next(o.failure.replay for o in report.outcomes
                if o.failure is not None and o.property == "accuracy")
    print("replay line:", line)
    path = os.path.abspath(re.search(r"actverify.replay[(]'([^']+)'", line).group(1))
    os.chdir(sys.argv[1])  # another directory
    print("still fails:", not actverify.replay(path, kernel=local_sigmoid))
    print("holds for the fix:", actverify.replay(path, kernel=torch.sigmoid))


main()
'''


@dataclass
class Installed:
    python: Path
    bin: Path
    wheel: Path
    env: dict

    def run(self, *args: str | Path, cwd: Path,
            timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


def _build_wheel(out: Path) -> Path:
    """The wheel, built offline from a copy of the sources (no build/ in the checkout)."""
    src = out / "src"
    shutil.copytree(ROOT / "actverify", src / "actverify",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                           "--no-build-isolation", "-q", "-w", str(out / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (out / "dist").glob("actverify-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(base)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():  # every dependency (torch, pip, ...) but not actverify
        if not entry.name.lower().startswith(("actverify", "__editable__")):
            (site / entry.name).symlink_to(entry)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "ACTVERIFY_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(OMP_NUM_THREADS="1", PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           str(wheel)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Installed(python=python, bin=venv / "bin", wheel=wheel, env=env)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user-project")
    (root / "kernels.py").write_text(KERNELS)
    (root / "tests").mkdir()
    (root / "tests" / "test_kernels.py").write_text(USER_TESTS)
    (root / "tests" / "test_plain.py").write_text(PLAIN_TEST)
    (root / "api.py").write_text(API_SCRIPT)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    return root


def test_the_wheel_holds_the_package_suite_and_license(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert "actverify/plugin.py" in names and "actverify/testsuite/test_values.py" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    meta = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(installed.wheel).read(meta).decode()
    assert "Requires-Python: >=3.11" in text and "mpmath" not in text.split("Provides-Extra")[0]
    entry = zipfile.ZipFile(installed.wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[pytest11]" in entry and "actverify = actverify.plugin" in entry


def test_only_the_wheel_is_importable(installed: Installed, project: Path) -> None:
    proc = installed.run(installed.python, "-c", "import actverify; print(actverify.__file__)",
                         cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert str(installed.python.parent.parent) in proc.stdout and str(ROOT) not in proc.stdout
    version = installed.run(installed.bin / "actverify", "--version", cwd=project)
    assert version.stdout.strip() == "actverify 0.1.0", version.stdout + version.stderr


def test_pytest_help_of_a_users_project_lists_the_options(installed: Installed,
                                                          project: Path) -> None:
    proc = installed.run(installed.python, "-m", "pytest", "--help", cwd=project)
    assert proc.returncode == 0, proc.stderr
    for option in ("--actverify-dtype", "--actverify-target", "--actverify-shard"):
        assert option in proc.stdout


def test_a_session_that_does_not_use_actverify_is_untouched(installed: Installed,
                                                           project: Path) -> None:
    proc = installed.run(installed.python, "-m", "pytest", "tests/test_plain.py", "-q",
                         "-p", "no:randomly", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_users_tests_pass_fail_with_evidence_and_skip(installed: Installed, project: Path,
                                                        tmp_path: Path) -> None:
    proc = installed.run(installed.python, "-m", "pytest", "tests/test_kernels.py", "-v",
                         "-rs", "-p", "no:randomly", "-p", "no:cacheprovider",
                         "-k", "(accuracy and not gradient) or assert_close", cwd=project)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert re.search(r"test_good\[accuracy-float32-cpu\] PASSED", out), out
    assert re.search(r"test_buggy\[accuracy-float32-cpu\] FAILED", out), out
    assert re.search(r"test_cuda\[accuracy-float32-cpu\] SKIPPED", out), out
    assert "declared by the kernel: devices cuda only" in out and "ERROR" not in out
    assert "test_assert_close_in_a_users_test PASSED" in out
    assert "unexpected NaN" in out and "ulp error inf" in out
    replay = re.search(r"replay:  (python -m actverify replay (\S+\.pt))", out)
    assert replay, out
    path = project / replay.group(2)

    # the same case from another directory, and from a copy with the project named as root
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = installed.run(installed.bin / "actverify", "replay", path, cwd=elsewhere)
    assert again.returncode == 1 and "unexpected NaN" in again.stdout, again.stdout + again.stderr
    shutil.copy(path, elsewhere / "case.pt")
    copied = installed.run(installed.bin / "actverify", "replay", "case.pt", "--root", project,
                           cwd=elsewhere)
    assert copied.returncode == 1 and "unexpected NaN" in copied.stdout, copied.stderr


def test_actverify_check_on_the_users_kernels(installed: Installed, project: Path) -> None:
    good = installed.run(installed.bin / "actverify", "check", "kernels.py:good_sigmoid",
                         "--activation", "sigmoid", "--dtype", "float32", "--profile", "dev",
                         cwd=project)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = installed.run(installed.bin / "actverify", "check", "kernels:buggy_sigmoid",
                        "--activation", "sigmoid", "--dtype", "float32", "--profile", "dev",
                        cwd=project)
    assert bad.returncode == 1 and "unexpected NaN" in bad.stdout, bad.stdout + bad.stderr


def test_actverify_fuzz_from_the_users_project(installed: Installed, project: Path) -> None:
    proc = installed.run(installed.bin / "actverify", "fuzz", "--minutes", "0.5", "--workers",
                         "0", "--target", "kernels.py:good_sigmoid=sigmoid",
                         "--target", "kernels.py:buggy_sigmoid=sigmoid",
                         "--", "-k", "values and accuracy", "--actverify-dtype", "float32",
                         cwd=project)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failure" in out and "passed" in out and "unexpected NaN" in out
    assert ("FAILED actverify.testsuite.test_values::test_property"
            "[accuracy-sigmoid-kernels.py:buggy_sigmoid-float32-cpu]") in out
    repro = re.search(r"^\s+(python -m pytest --pyargs .*)$", out, re.M).group(1)
    assert str(project) not in repro and "site-packages" not in repro, repro
    # the printed command, pasted in the project root, replays the failure from the database
    pasted = installed.run("bash", "-c", repro, cwd=project)
    assert pasted.returncode == 1 and "unexpected NaN" in pasted.stdout, pasted.stdout


def test_a_callable_checked_in_python_gets_a_python_replay(installed: Installed, project: Path,
                                                           tmp_path: Path) -> None:
    proc = installed.run(installed.python, "api.py", tmp_path, cwd=project)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"replay line: actverify\.replay\('\.actverify/replay/accuracy-sigmoid-"
                     r"float32-\w+\.pt', kernel=local_sigmoid\)", out), out
    assert "still fails: True" in out and "holds for the fix: True" in out, out
