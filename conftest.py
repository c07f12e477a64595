"""This project's own test run: the options, the parametrization of properties/ and the
Hypothesis profiles come from actverify's pytest plugin (actverify/plugin.py, loaded through
its `pytest11` entry point), as in any project that installs actverify.

Here, unlike in a user's project, every Hypothesis test (tests/ too) runs under actverify's
short `dev` profile unless ACTVERIFY_PROFILE or --hypothesis-profile says otherwise.
"""

from __future__ import annotations

from hypothesis import settings

from actverify import profiles, threads
from actverify.errors import UsageError

try:
    settings.load_profile(profiles.chosen_profile("dev"))
except UsageError:  # a misspelt ACTVERIFY_PROFILE: the plugin stops the run with status 2
    pass


def pytest_configure(config) -> None:
    # tests/ call kernels on example-sized tensors too: one intra-op thread per process, the
    # parallelism from xdist workers (actverify.threads).
    threads.configure_pytest(config)
