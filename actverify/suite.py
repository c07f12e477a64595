"""The property suite as a list of cases: (property, subject) pairs with stable ids.

pytest (the plugin, for `actverify.testsuite`, a checkout's properties/ and
`actverify.property_tests`), `actverify report` and `actverify check` all enumerate the
suite here; `run_case` is the body of every such pytest test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from actverify.accuracy import Policy, policy_named
from actverify.devices import available_devices
from actverify.dtypes import DTYPE_NAMES, float_format
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

    @property
    def short_id(self) -> str:
        """The id among one kernel's tests: property, dtype, device."""
        return f"{self.prop.name}-{self.subject.fmt.name}-{self.subject.device}"


def suite_cases(*, dtypes: Iterable[str] | None = None, devices: Iterable[str] | None = None,
                activations: Iterable[str] | None = None,
                targets: Iterable[Target] | None = None, policy: str | Policy = "default"
                ) -> list[SuiteCase]:
    chosen = list(targets) if targets else list(all_builtin_targets(activations))
    return [SuiteCase(prop, subject)
            for subject in subjects(chosen, dtypes=dtypes, devices=devices, policy=policy)
            for prop in properties_for(subject.target, subject.fmt.name, subject.device)]


def suite_params(group: str, **selection) -> list:
    """pytest parameters of one module of the suite (GROUP = 'values', ...)."""
    import pytest

    return [pytest.param(c, id=c.id, marks=pytest.mark.actverify)
            for c in suite_cases(**selection) if c.group == group]


@dataclass(frozen=True)
class KernelTests:
    """What `actverify.property_tests` asked for: one kernel, the dtypes and devices to list
    (absent devices and what the kernel does not declare become skipped tests)."""

    target: Target
    dtypes: tuple[str, ...]
    devices: tuple[str, ...]
    policy: str | None = None  # None: --actverify-policy


def declared_limits(target: Target) -> str:
    said = []
    if target.dtypes is not None:
        said.append("dtypes " + ", ".join(d for d in DTYPE_NAMES if d in target.dtypes))
    if target.devices is not None:
        said.append("devices " + ", ".join(sorted(target.devices)))
    return "; ".join(said) + " only"


def kernel_params(kernel: KernelTests, *, dtypes: Iterable[str] | None,
                  devices: Iterable[str] | None, policy: Policy) -> list:
    """pytest parameters for one kernel: a test per (property, dtype, device), with ids like
    `accuracy-float32-cpu`; the --actverify-dtype/--actverify-device options narrow them."""
    import pytest

    present = set(available_devices())
    wanted_dtypes = set(dtypes) if dtypes else None
    wanted_devices = set(devices) if devices else None
    pol = policy_named(kernel.policy) if kernel.policy else policy
    target = kernel.target
    params = []
    for device in kernel.devices:
        if wanted_devices is not None and device not in wanted_devices:
            continue
        for dtype in kernel.dtypes:
            if wanted_dtypes is not None and dtype not in wanted_dtypes:
                continue
            subject = Subject(target, float_format(dtype), device, pol)
            if device.split(":", 1)[0] not in present:
                why = f"no {device} device present"
            elif not target.supports(subject.fmt, device):
                why = f"declared by the kernel: {declared_limits(target)}"
            else:
                why = None
            marks = [pytest.mark.actverify] + ([pytest.mark.skip(reason=why)] if why else [])
            for prop in properties_for(target, dtype, device):
                case = SuiteCase(prop, subject)
                params.append(pytest.param(case, id=case.short_id, marks=marks))
    return params


def run_case(case: SuiteCase) -> None:
    """Run one case as a pytest test: pass, skip (what the target does not support), or fail
    with the full evidence and the command that replays it."""
    import pytest

    from actverify.profiles import profile_settings
    from actverify.runner import format_failure, run_property

    outcome = run_property(case.prop, case.subject, settings=profile_settings())
    if outcome.status == "not_checked":
        pytest.skip(outcome.reason or "not supported by the target")
    if outcome.status == "error":
        pytest.fail(f"{case.prop.name} could not be checked on {case.subject.target.name} "
                    f"({case.subject.fmt.name}, {case.subject.device}): {outcome.reason}",
                    pytrace=False)
    if outcome.status != "passed":
        pytest.fail(format_failure(outcome), pytrace=False)
