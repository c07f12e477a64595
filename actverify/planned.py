"""What a check plans, as plain data: names only, no tensors, no callables, no torch.

A plan is made where its target is imported (actverify/plan.py builds it); this module holds
only its shape, so that the supervising parent of `actverify check`, which never imports
torch (it would cost a second import of about 1.5 s of CPU beside its worker's), can read the
plan its worker sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Why a subject outside what its target declares is not run (reports and JSON say this).
UNDECLARED = "outside what the target declares"


@dataclass(frozen=True)
class PlannedSubject:
    dtype: str
    device: str
    supported: bool  # inside what the target declares
    properties: tuple[str, ...]  # the applicable ones, in order, whether supported or not

    @property
    def to_run(self) -> tuple[str, ...]:
        """What runs: the applicable properties of a supported subject, else nothing."""
        return self.properties if self.supported else ()

    @property
    def why_not(self) -> str | None:
        """Why nothing runs on this subject (None: it runs)."""
        return None if self.supported else UNDECLARED


@dataclass(frozen=True)
class Plan:
    target: str  # its name, for reports
    activation: str
    limits: str | None
    backward: bool
    subjects: tuple[PlannedSubject, ...] = field(default_factory=tuple)

    @property
    def size(self) -> int:
        return sum(len(s.to_run) for s in self.subjects)


@dataclass(frozen=True)
class Ready:
    """What a supervised worker sends once it has planned (actverify/isolation.py; defined
    here, not there, because the worker runs that module as __main__): the plan, and what its
    parent would otherwise need torch for (the policy's full name, each planned property's
    kind, the devices present)."""

    plan: Plan
    policy: str
    kinds: dict[str, str] = field(default_factory=dict)
    devices: tuple[str, ...] = ()
