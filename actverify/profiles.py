"""Hypothesis profiles, registered in one place.

`dev` keeps the default test run short; `ci` is derandomized so a pull request's run is
reproducible; `fuzz` searches long and randomly; `report` is the main job's profile;
`check` is `actverify check`'s quick default (every property, few examples); `replay`
re-runs what the example database holds (docs/ci.md).
Choose one with pytest's `--hypothesis-profile NAME`, the ACTVERIFY_PROFILE environment
variable, or `--profile` on the command line.
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
    "dev": dict(max_examples=6, deadline=None, suppress_health_check=_RELAXED),
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

for _name, _kwargs in PROFILES.items():
    if DATABASE is not None and not _kwargs.get("derandomize"):  # derandomized: no database
        _kwargs = {**_kwargs, "database": DATABASE}
    settings.register_profile(_name, **_kwargs)

ENV_VAR = "ACTVERIFY_PROFILE"


def profile_settings(name: str | None = None) -> settings:
    """Settings for a profile name; None takes ACTVERIFY_PROFILE, else the loaded default."""
    name = name or os.environ.get(ENV_VAR)
    if name is None:
        return settings()
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; use one of {', '.join(PROFILES)}")
    return settings.get_profile(name)
