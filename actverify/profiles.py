"""Hypothesis profiles, registered in one place.

`dev` keeps the default test run short; `ci` is derandomized so a pull request's run is
reproducible; `fuzz` searches long and randomly; `report` is the main job's profile;
`check` is `actverify check`'s quick default (every property, few examples).
Choose one with pytest's `--hypothesis-profile NAME`, the ACTVERIFY_PROFILE environment
variable, or `--profile` on the command line.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

from actverify.errors import UsageError

# Examples are whole tensors (up to 65,537+ elements): slow-ish to generate and large by design.
_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
            HealthCheck.differing_executors]

PROFILES = {
    "dev": dict(max_examples=8, deadline=None, suppress_health_check=_RELAXED),
    "ci": dict(max_examples=25, deadline=None, derandomize=True, print_blob=True,
               suppress_health_check=_RELAXED),
    "check": dict(max_examples=6, deadline=None, derandomize=True,
                  suppress_health_check=_RELAXED),
    "report": dict(max_examples=20, deadline=None, derandomize=True,
                   suppress_health_check=_RELAXED),
    "fuzz": dict(max_examples=2000, deadline=None, derandomize=False,
                 phases=list(Phase), suppress_health_check=_RELAXED),
}

for _name, _kwargs in PROFILES.items():
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
