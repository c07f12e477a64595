"""The one plan builder (actverify/plan.py): what check, report and the suite run, and the
memo of true values its subjects keep."""

from __future__ import annotations

import numpy as np
import torch

from actverify.accuracy import policy_named
from actverify.plan import UNDECLARED, CachingSubject, plan_check, plan_work, subject_for
from actverify.properties import Subject, properties_for
from actverify.suite import suite_cases
from actverify.spec import get_spec
from actverify.targets import Target, all_builtin_targets, builtin_targets


def test_every_command_plans_the_same_runs() -> None:
    """report's work, the suite's CPU cases and check's plan list the same (property, dtype)
    pairs for a builtin target, in the same order."""
    target = builtin_targets(get_spec("tanh"))[0]
    dtypes = ["float32", "float64"]
    work = plan_work([target], dtypes=dtypes, devices=["cpu"])
    cases = [c for c in suite_cases(targets=[target], dtypes=dtypes, devices=["cpu", "cpu:1"])
             if c.subject.device == "cpu"]
    plan = plan_check(target, dtypes=dtypes, devices=["cpu"])
    as_pairs = [(p.name, s.fmt.name) for p, s in work]
    assert as_pairs == [(c.prop.name, c.subject.fmt.name) for c in cases]
    assert as_pairs == [(name, s.dtype) for s in plan.subjects for name in s.to_run]
    assert plan.size == len(work) == sum(
        len(properties_for(target, d, "cpu")) for d in dtypes)


def test_an_undeclared_subject_is_planned_as_not_run_with_why() -> None:
    target = Target(name="mine", activation="relu", fn=torch.relu, dtypes={"float32"})
    plan = plan_check(target, dtypes=["float32", "float16"], devices=["cpu"])
    ran, skipped = plan.subjects
    assert ran.supported and ran.to_run and ran.why_not is None
    assert not skipped.supported and skipped.to_run == () and skipped.why_not == UNDECLARED
    assert skipped.properties == ran.properties  # applicable, just not run
    assert plan.size == len(ran.to_run) == len(properties_for(target, "float32", "cpu"))
    assert plan.activation == "relu"


def test_the_memo_gives_what_a_fresh_reference_gives() -> None:
    target = all_builtin_targets(["gelu"])[0]
    policy = policy_named("default")
    cached = subject_for(target, "float64", "cpu", policy)
    plain = Subject(target, cached.fmt, "cpu", policy)
    assert isinstance(cached, CachingSubject)
    x = torch.tensor([-0.0, 0.0, 1e-300, -3.5, float("nan"), float("inf")],
                     dtype=torch.float64)
    first = cached.reference(x)
    first[:] = 7  # a caller's change to its copy reaches no one else
    for got in (cached.reference(x), cached.reference(x.clone())):
        want = plain.reference(x)
        assert got.dtype == want.dtype
        assert np.array_equal(got, want, equal_nan=True)
    # -0.0 and 0.0 are different inputs (the memo keys on the bits)
    y = torch.tensor([0.0], dtype=torch.float64)
    assert np.array_equal(cached.reference(y), plain.reference(y))
