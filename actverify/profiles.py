"""Hypothesis profiles, registered in one place, under names of actverify's own.

`dev` keeps the default test run short; `ci` is derandomized so a pull request's run is
reproducible; `fuzz` searches long and randomly; `report` is the main job's profile;
`check` is `actverify check`'s quick default (every property, few examples); `replay`
re-runs what the example database holds (docs/ci.md).

Each is registered with Hypothesis as `actverify-NAME` (`actverify-dev`, `actverify-fuzz`,
...): importing actverify never redefines a profile of Hypothesis (`default`, `ci`) or of
the user's project.  Choose one with `--profile NAME` on the command line, the
ACTVERIFY_PROFILE environment variable (NAME or actverify-NAME, for pytest and the command
line alike), or pytest's `--hypothesis-profile actverify-NAME`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

from actverify.database import database_from_env
from actverify.errors import UsageError

# Examples are whole tensors (up to 65,537+ elements): slow-ish to generate and large by design.
_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
            HealthCheck.differing_executors]

PROFILES = {
    # 3 examples: this project's default test run covers every entry point on every dtype
    # within its 2-minute budget; depth comes from `ci`, `report` and `fuzz`.  No example
    # database (unless ACTVERIFY_DB names one): writing one per test cost 5% of the default
    # run, and a failure is kept as a replay file with the command that re-runs it.
    "dev": dict(max_examples=3, deadline=None, suppress_health_check=_RELAXED, database=None),
    "ci": dict(max_examples=25, deadline=None, derandomize=True, print_blob=True,
               suppress_health_check=_RELAXED),
    "check": dict(max_examples=6, deadline=None, derandomize=True,
                  suppress_health_check=_RELAXED),
    "report": dict(max_examples=20, deadline=None, derandomize=True,
                   suppress_health_check=_RELAXED),
    "fuzz": dict(max_examples=2000, deadline=None, derandomize=False,
                 phases=list(Phase), suppress_health_check=_RELAXED),
    # Re-run what the example database holds (CI's failures, docs/ci.md), plus one example:
    # the simplest, which Hypothesis always tries first, so a run finds nothing new.
    "replay": dict(max_examples=1, deadline=None,
                   phases=[Phase.explicit, Phase.reuse, Phase.generate],
                   suppress_health_check=_RELAXED),
}

# ACTVERIFY_DB (and ACTVERIFY_DB_READ_ONLY) choose the example database of every profile, in
# every process that imports this module, xdist workers included (actverify/database.py,
# docs/ci.md).  A malformed value is reported, with exit status 2, by conftest.py and the CLI.
try:
    DATABASE = database_from_env()
    DATABASE_ERROR: str | None = None
except UsageError as _exc:
    DATABASE, DATABASE_ERROR = None, str(_exc)

PREFIX = "actverify-"
ENV_VAR = "ACTVERIFY_PROFILE"


def registered_name(name: str) -> str:
    """The name Hypothesis knows a profile by: 'fuzz' and 'actverify-fuzz' -> 'actverify-fuzz'.
    UsageError for a name that is not one of actverify's profiles."""
    short = name.strip().removeprefix(PREFIX) if isinstance(name, str) else name
    if short not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)}")
    return PREFIX + short


# Every profile starts from Hypothesis's own `default`, not from whatever is loaded when this
# module is imported: in a CI environment Hypothesis loads its `ci` profile, which has no
# example database, and fuzzing there would keep nothing to replay.
for _name, _kwargs in PROFILES.items():
    if DATABASE is not None and not _kwargs.get("derandomize"):  # derandomized: no database
        _kwargs = {**_kwargs, "database": DATABASE}
    settings.register_profile(registered_name(_name), parent=settings.get_profile("default"),
                              **_kwargs)


def chosen_profile(default: str) -> str:
    """The profile a run takes when none is named: ACTVERIFY_PROFILE if set, else `default`."""
    return registered_name(os.environ.get(ENV_VAR) or default)


def profile_settings(name: str | None = None) -> settings:
    """Settings for a profile name (NAME or actverify-NAME).  None: ACTVERIFY_PROFILE if set;
    else the loaded Hypothesis profile if it is one of ours (`--hypothesis-profile
    actverify-fuzz`, as capped by `--actverify-max-examples`); else `dev`.  Hypothesis's own
    profiles are never used for actverify's properties: their deadline and health checks are
    made for small examples, and one example here is a whole tensor."""
    if name is None and not os.environ.get(ENV_VAR):
        if settings.get_current_profile_name().startswith(PREFIX):
            return settings()
        name = "dev"
    return settings.get_profile(chosen_profile("dev") if name is None else registered_name(name))
