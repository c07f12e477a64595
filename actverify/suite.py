"""The property suite as a list of cases: (property, subject) pairs with stable ids.

pytest (properties/), `actverify report` and `actverify check` all enumerate the suite here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from actverify.accuracy import Policy
from actverify.devices import available_devices, second_device
from actverify.properties import Property, Subject, properties_for
from actverify.runner import subjects
from actverify.targets import Target, all_builtin_targets


@dataclass(frozen=True)
class SuiteCase:
    prop: Property
    subject: Subject

    @property
    def group(self) -> str:
        """The module that states the property: values, identities, softmax, semantics..."""
        return self.prop.check.__module__.rsplit(".", 1)[-1]

    @property
    def id(self) -> str:
        s = self.subject
        target = s.target.name.replace(" ", "")
        return f"{self.prop.name}-{s.target.activation}-{target}-{s.fmt.name}-{s.device}"


def suite_cases(*, dtypes: Iterable[str] | None = None, devices: Iterable[str] | None = None,
                activations: Iterable[str] | None = None,
                targets: Iterable[Target] | None = None, policy: str | Policy = "default"
                ) -> list[SuiteCase]:
    chosen = list(targets) if targets else list(all_builtin_targets(activations))
    devices = list(devices) if devices else list(available_devices())
    found = [SuiteCase(prop, subject)
             for subject in subjects(chosen, dtypes=dtypes, devices=devices, policy=policy)
             for prop in properties_for(subject.target, subject.fmt.name, subject.device)]
    # The cross-device properties need a second device: without one they run on the
    # stand-in (docs/cuda.md), so that their code runs, and is tested, on every machine.
    # PyTorch's other entry points are checked against the canonical form on the CPU
    # already; on the stand-in, the canonical form of each activation stands for them.
    stand_in = second_device(devices)
    if stand_in is not None:
        sample = [t for t in chosen if not t.builtin or t.name == t.spec.canonical.name]
        found += [SuiteCase(prop, subject)
                  for subject in subjects(sample, dtypes=dtypes, devices=[stand_in],
                                          policy=policy)
                  for prop in properties_for(subject.target, subject.fmt.name, stand_in)
                  if prop.off_cpu]
    return found


def check(case: SuiteCase) -> None:
    """Run one suite case and fail with the full evidence (the body of every suite test)."""
    from actverify.runner import format_failure, run_property

    outcome = run_property(case.prop, case.subject)
    assert outcome.status != "error", outcome.reason
    assert outcome.status == "passed", format_failure(outcome)
