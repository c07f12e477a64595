"""This project's own test run: the options, the parametrization of properties/ and the
Hypothesis profiles come from actverify's pytest plugin (actverify/plugin.py, loaded through
its `pytest11` entry point), as in any project that installs actverify.

Here, unlike in a user's project, every Hypothesis test (tests/ too) runs under actverify's
short `dev` profile unless ACTVERIFY_PROFILE or --hypothesis-profile says otherwise.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from actverify import profiles, threads
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
