"""What a run plans: targets x dtypes x devices x policy -> subjects x applicable properties,
and what it leaves out and why.  The one builder of that list: `actverify check` (here or in
its supervised worker), `actverify report` and the pytest suite (actverify/suite.py) all take
their work from `plan_subjects`.

A plan for one target (`plan_check`) is made where the target is imported: in the calling
process for the in-process mode, in the worker for the supervised one
(actverify/isolation.py), whose parent never runs the kernel's code.  It is plain data (names,
no tensors, no callables: actverify/planned.py, which imports no torch), so it crosses the
process boundary as it is.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from actverify.accuracy import value_digest
from actverify.dtypes import DTYPE_NAMES, float_format
from actverify.planned import UNDECLARED, Plan, PlannedSubject  # noqa: F401 (plain data)
from actverify.properties import Subject, properties_for

if TYPE_CHECKING:
    from actverify.accuracy import Policy
    from actverify.properties import Property
    from actverify.targets import Target

def plan_subjects(target: Target, *, dtypes: Sequence[str] | None = None,
                  devices: Sequence[str] | None = None,
                  properties: Iterable[str] | None = None) -> tuple[PlannedSubject, ...]:
    """Every (device, dtype) of `target` (None: every dtype, every device present), device
    by device, with its applicable properties (only `properties`, when given)."""
    from actverify.devices import available_devices

    wanted = set(properties) if properties else None
    return tuple(
        PlannedSubject(dtype, device, target.supports(float_format(dtype), device),
                       tuple(p.name for p in properties_for(target, dtype, device)
                             if wanted is None or p.name in wanted))
        for device in (available_devices() if devices is None else devices)
        for dtype in (DTYPE_NAMES if dtypes is None else dtypes))


def plan_check(target: Target, *, dtypes: Sequence[str], devices: Sequence[str],
               properties: Iterable[str] | None = None) -> Plan:
    """One target's plan, as `actverify check` runs and reports it."""
    return Plan(target=target.name, activation=target.activation, limits=target.limits,
                backward=target.backward,
                subjects=plan_subjects(target, dtypes=dtypes, devices=devices,
                                       properties=properties))


REFERENCE_CACHE_SIZE = 16  # distinct inputs kept per process (at most 65,537+ values each)
_REFERENCES: OrderedDict[tuple, np.ndarray] = OrderedDict()


@dataclass(frozen=True)
class CachingSubject(Subject):
    """A subject whose true values are computed once per distinct input.

    Why: one property asks for the true values of the same input several times (the
    allowance, then each side of each convention check: up to five times in `inconsistent`),
    and for float64 the reference runs in extended precision (GELU's continued fraction, ...):
    that was 60% of `actverify report --activation gelu --dtype float64`, profiled on a 2-core
    x86 machine with torch 2.13.0 CPU.  The memo is keyed by the input's exact values (its
    bits as float64, to which every format converts exactly), the activation, the format and
    the parameters, so a hit is the very array a fresh computation gives; each caller gets its
    own copy.  (`Subject.reference` keeps what it returned for each tensor object besides:
    this memo serves other tensors of the same values, e.g. a contiguous copy of x.)"""

    def true_values(self, x, params: dict | None = None) -> np.ndarray:
        key = (id(self.spec), self.spec.name, self.fmt.name, value_digest(self.values(x)),
               repr(sorted((params or {}).items())))
        found = _REFERENCES.get(key)
        if found is None:
            found = super().true_values(x, params)
            _REFERENCES[key] = found
            if len(_REFERENCES) > REFERENCE_CACHE_SIZE:
                _REFERENCES.popitem(last=False)
        else:
            _REFERENCES.move_to_end(key)
        return found.copy()


def subject_for(target: Target, dtype: str, device: str, policy: Policy) -> Subject:
    """The subject a planned run checks (its true values computed once per distinct input)."""
    return CachingSubject(target, float_format(dtype), device, policy)


def plan_work(targets: Iterable[Target], *, dtypes: Sequence[str] | None = None,
              devices: Sequence[str] | None = None, policy: str | Policy = "default",
              keep: Callable[[Property], bool] | None = None
              ) -> list[tuple[Property, Subject]]:
    """The (property, subject) pairs of every target's plan, in plan order (target, device,
    dtype, property), for the runs that take subjects as objects (`actverify report`, the
    pytest suite).  A subject outside what its target declares keeps its properties: running
    one records it as not checked (never passed).  `keep` narrows the properties."""
    from actverify.accuracy import policy_named
    from actverify.properties import all_properties

    pol, props = policy_named(policy), all_properties()
    work = []
    for target in targets:
        for s in plan_subjects(target, dtypes=dtypes, devices=devices):
            checked = subject_for(target, s.dtype, s.device, pol)
            work += [(props[name], checked) for name in s.properties
                     if keep is None or keep(props[name])]
    return work
