"""The property suite as a list of cases: (property, subject) pairs with stable ids.

pytest (the plugin, for `actverify.testsuite`, a checkout's properties/ and
`actverify.property_tests`), `actverify report` and `actverify check` all enumerate the
suite here; `run_case` is the body of every such pytest test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from actverify.accuracy import Policy, policy_named
from actverify.devices import available_devices, second_device
from actverify.dtypes import DTYPE_NAMES
from actverify.plan import plan_subjects, plan_work, subject_for
from actverify.properties import Property, Subject, all_properties
from actverify.targets import Target, all_builtin_targets


@dataclass(frozen=True)
class SuiteCase:
    prop: Property
    subject: Subject

    @property
    def group(self) -> str:
        """The module that states the property: values, identities, softmax, semantics..."""
        return self.prop.test.__module__.rsplit(".", 1)[-1]

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
    devices = list(devices) if devices else list(available_devices())
    dtypes = list(dtypes) if dtypes else None
    found = [SuiteCase(prop, subject)
             for prop, subject in plan_work(chosen, dtypes=dtypes, devices=devices,
                                            policy=policy)]
    # The cross-device properties need a second device: without one they run on the
    # stand-in (docs/cuda.md), so that their code runs, and is tested, on every machine.
    # PyTorch's other entry points are checked against the canonical form on the CPU
    # already; on the stand-in, the canonical form of each activation stands for them.
    stand_in = second_device(devices)
    if stand_in is not None:
        sample = [t for t in chosen if not t.builtin or t.name == t.spec.canonical.name]
        found += [SuiteCase(prop, subject)
                  for prop, subject in plan_work(sample, dtypes=dtypes, devices=[stand_in],
                                                 policy=policy, keep=lambda p: p.off_cpu)]
    return found


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
    listed = plan_subjects(target, dtypes=[d for d in kernel.dtypes
                                           if wanted_dtypes is None or d in wanted_dtypes],
                           devices=[d for d in kernel.devices
                                    if wanted_devices is None or d in wanted_devices])
    props = all_properties()
    for planned in listed:
        device = planned.device
        checked = subject_for(target, planned.dtype, device, pol)
        if device.split(":", 1)[0] not in present:
            why = f"no {device} device present"
        elif not planned.supported:
            why = f"declared by the kernel: {declared_limits(target)}"
        else:
            why = None
        marks = [pytest.mark.actverify] + ([pytest.mark.skip(reason=why)] if why else [])
        for name in planned.properties:
            case = SuiteCase(props[name], checked)
            params.append(pytest.param(case, id=case.short_id, marks=marks))
    return params


TIMEOUT_ENV = "ACTVERIFY_TIMEOUT"  # seconds each call of the kernel may take under pytest
_SUPERVISORS: dict[tuple, object] = {}  # one supervised worker per custom kernel and setup


def _call_timeout() -> float:
    import os

    from actverify.check import DEFAULT_TIMEOUT, check_timeout

    text = os.environ.get(TIMEOUT_ENV)
    try:
        return check_timeout(float(text)) if text else DEFAULT_TIMEOUT
    except ValueError:
        from actverify.errors import UsageError

        raise UsageError(f"{TIMEOUT_ENV}={text!r} must be a number of seconds") from None


def outcome_of(case: SuiteCase):
    """The outcome of one suite case.  A custom kernel runs in a supervised worker process
    (actverify/isolation.py), so that its exits, crashes and calls stuck in C fail its test
    instead of ending or hanging pytest; PyTorch's own kernels run here."""
    from hypothesis import settings

    from actverify.runner import run_property

    s, timeout = case.subject, _call_timeout()
    if s.target.builtin or s.target.source is None or not s.target.supports(s.fmt, s.device):
        return run_property(case.prop, s, call_timeout=timeout)  # (not checked: no call)
    import atexit
    import os

    from actverify.isolation import Supervisor
    from actverify.profiles import PREFIX, profile_settings

    # The worker searches as this process would (profile_settings: an actverify profile, as
    # loaded and capped by a fuzz round; else ACTVERIFY_PROFILE or `dev`, never a user's
    # Hypothesis profile, which the worker's fresh interpreter would not know).
    current = settings.get_current_profile_name()
    profile = current if current.startswith(PREFIX) else None
    max_examples = profile_settings().max_examples
    policy, _, kink = s.policy.name.partition("+kink=")
    key = (s.target.source, s.target.activation, policy, kink, profile, max_examples, timeout)
    supervisor = _SUPERVISORS.get(key)
    if supervisor is None:
        supervisor = Supervisor(source=s.target.source, activation=s.target.activation,
                                policy=policy, kink=kink or "pytorch", profile=profile,
                                call_timeout=timeout, dtypes=[], devices=[],
                                max_examples=max_examples).__enter__()
        atexit.register(supervisor.close)
        _SUPERVISORS[key] = supervisor
    current = {k: v for k, v in os.environ.items() if k == "PYTEST_CURRENT_TEST"}
    return supervisor.run(s.fmt.name, s.device, case.prop.name, env=current)


def run_case(case: SuiteCase) -> None:
    """Run one case as a pytest test: pass; skip what the target declares it does not
    support (not checked, never passed); fail with the full evidence and the command that
    replays it; fail as incomplete when it timed out or could not run (never passed)."""
    import pytest

    from actverify.outcomes import TIMED_OUT_MARK, format_failure

    outcome = outcome_of(case)
    s = case.subject
    if outcome.status == "not_checked":
        pytest.skip(f"not checked: {outcome.reason or 'not supported by the target'}")
    if outcome.status == "error":
        pytest.fail(f"{case.prop.name} could not be checked on {s.target.name} "
                    f"({s.fmt.name}, {s.device}): {outcome.reason}", pytrace=False)
    if outcome.status == "timed_out":
        pytest.fail(f"{TIMED_OUT_MARK}: {outcome.reason}", pytrace=False)
    if outcome.status != "passed":
        pytest.fail(format_failure(outcome), pytrace=False)
