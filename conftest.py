"""This project's own test run: the options, the parametrization of properties/ and the
Hypothesis profiles come from actverify's pytest plugin (actverify/plugin.py, loaded through
its `pytest11` entry point), as in any project that installs actverify.

Here, unlike in a user's project, every Hypothesis test (tests/ too) runs under actverify's
short `dev` profile unless ACTVERIFY_PROFILE or --hypothesis-profile says otherwise.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from actverify import profiles, threads
from actverify.errors import UsageError

try:
    settings.load_profile(profiles.chosen_profile("dev"))
except UsageError:  # a misspelt ACTVERIFY_PROFILE: the plugin stops the run with status 2
    pass


def _xdist_controller(config: pytest.Config) -> bool:
    """True in the process that hands tests to xdist workers and runs none itself."""
    return bool(config.getoption("numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # tests/ call kernels on example-sized tensors too: one intra-op thread per process, the
    # parallelism from xdist workers (actverify.threads).
    if not _xdist_controller(config):
        threads.configure_pytest(config)
        return
    # The controller only exports the count that its workers inherit: importing torch here
    # (about 2 s of CPU) would delay the start of every worker and check nothing.
    try:
        os.environ[threads.ENV_VAR] = str(threads.resolve(work="properties"))
    except UsageError as exc:
        pytest.exit(f"actverify: {exc}", returncode=2)
