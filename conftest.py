"""This project's own test run: the options, the parametrization of properties/ and the
Hypothesis profiles come from actverify's pytest plugin (actverify/plugin.py), as in any
project that installs actverify; here pyproject.toml names it and the other plugins with `-p`
instead of letting pytest load them through their `pytest11` entry points, which would have
pytest rewrite the asserts of every module of their distributions in every pytest process.

Here, unlike in a user's project, every Hypothesis test (tests/ too) runs under actverify's
short `dev` profile unless ACTVERIFY_PROFILE or --hypothesis-profile says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from actverify import isolation, profiles, threads
from actverify.errors import UsageError

# tests/test_plugin.py runs a user's test module in a pytest session of its own, in process.
pytest_plugins = ["pytester"]

try:
    settings.load_profile(profiles.chosen_profile("dev"))
except UsageError:  # a misspelt ACTVERIFY_PROFILE: the plugin stops the run with status 2
    pass


def pytest_configure(config: pytest.Config) -> None:
    # tests/ call kernels on example-sized tensors too: one intra-op thread per process, the
    # parallelism from xdist workers (actverify.threads).
    threads.configure_pytest(config)


@pytest.fixture(scope="session")
def _checks_home_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with isolation.shared_fork_server():
        yield tmp_path_factory.mktemp("checks")


@pytest.fixture
def checks_home(_checks_home_shared: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory, one per pytest process, where tests run supervised checks in process
    (`cli.main(["check", ...])`, `actverify.check`): they share one fork server, which
    `actverify check` would otherwise start and stop for each (a torch import, about 1.5 s of
    CPU).  The server serves only the directory and environment it was started in, so each
    of them works here; the findings' replay files land here too, out of the repository."""
    monkeypatch.chdir(_checks_home_shared)
    return _checks_home_shared


# Modules whose tests talk to the stand-in second device's child processes (actverify/standin.py:
# one per CPU capability in each pytest process, each importing torch, about 2.3 s of CPU to
# start).  They run first: xdist's worksteal hands each worker a contiguous share of the run and
# steals from the end of a share, so the first worker runs them all and only it starts the
# children.  A planted bug of an accelerator runs on the stand-in too.
_STAND_IN_MODULES = ("tests/test_devices.py", "tests/test_isa.py", "properties/test_devices.py")


def _uses_stand_in(item: pytest.Item) -> bool:
    if item.nodeid.split("::", 1)[0] in _STAND_IN_MODULES:
        return True
    bug = getattr(getattr(item, "callspec", None), "params", {}).get("bug")
    return getattr(bug, "device", "cpu") != "cpu"


@pytest.hookimpl(tryfirst=True)  # before --actverify-order shuffles (actverify.fuzzing.shard)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not _uses_stand_in(item))  # stable: the rest keep their order
