"""What a check plans to run: for one target, which (dtype, device) subjects and which
properties on each, and what it leaves out and why.

The plan is made where the target is imported: in the calling process for the in-process mode,
in the worker for the supervised one (actverify/isolation.py), whose parent never runs the
kernel's code.  It is plain data, so it crosses the process boundary as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from actverify.dtypes import float_format
from actverify.properties import properties_for
from actverify.targets import Target


@dataclass(frozen=True)
class PlannedSubject:
    dtype: str
    device: str
    supported: bool  # inside what the target declares
    properties: tuple[str, ...]  # in order; empty when not supported


@dataclass(frozen=True)
class Plan:
    target: str  # its name, for reports
    activation: str
    limits: str | None
    backward: bool
    subjects: tuple[PlannedSubject, ...] = field(default_factory=tuple)

    @property
    def size(self) -> int:
        return sum(len(s.properties) for s in self.subjects)


def plan_check(target: Target, *, dtypes: Sequence[str], devices: Sequence[str],
               properties: Sequence[str] | None = None) -> Plan:
    """Every applicable property (only `properties`, when given) on every dtype and device."""
    wanted = set(properties) if properties else None
    subjects = []
    for device in devices:
        for dtype in dtypes:
            supported = target.supports(float_format(dtype), device)
            names = tuple(p.name for p in properties_for(target, dtype, device)
                          if wanted is None or p.name in wanted) if supported else ()
            subjects.append(PlannedSubject(dtype, device, supported, names))
    return Plan(target=target.name, activation=target.activation, limits=target.limits,
                backward=target.backward, subjects=tuple(subjects))
