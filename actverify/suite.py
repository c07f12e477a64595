"""The property suite as a list of cases: (property, subject) pairs with stable ids.

pytest (properties/), `actverify report` and `actverify check` all enumerate the suite here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from actverify.accuracy import Policy
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
    return [SuiteCase(prop, subject)
            for subject in subjects(chosen, dtypes=dtypes, devices=devices, policy=policy)
            for prop in properties_for(subject.target, subject.fmt.name, subject.device)]


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


def run_case(case: SuiteCase):
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

    profile = settings.get_current_profile_name()
    max_examples = settings.default.max_examples  # the loaded profile, capped by a fuzz round
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


def check(case: SuiteCase) -> None:
    """Run one suite case and fail with the full evidence (the body of every suite test):
    skipped when the target declares the case outside what it supports (not checked, never
    passed), failed when it timed out or could not run (incomplete, never passed)."""
    import pytest

    from actverify.runner import format_failure

    outcome = run_case(case)
    if outcome.status == "not_checked":
        pytest.skip(f"not checked: {outcome.reason}")
    assert outcome.status != "error", f"could not run: {outcome.reason}"
    from actverify.fuzz import TIMED_OUT_MARK

    assert outcome.status != "timed_out", f"{TIMED_OUT_MARK}: {outcome.reason}"
    assert outcome.status == "passed", format_failure(outcome)
