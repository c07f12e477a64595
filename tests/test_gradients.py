"""Derivative properties prove themselves: custom autograd Functions with planted gradient
bugs are caught by the named property, and correct custom Functions pass every derivative
property (a custom Function is checked exactly like a built-in)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, Phase, settings

from actverify.accuracy import DEFAULT
from actverify.dtypes import DTYPE_NAMES, float_format
from actverify.properties import Subject, Violation, all_properties, properties_for
from actverify.runner import format_failure, run_property
from actverify.strategies import Case
from actverify.targets import target_from_callable
from tests import gradient_kernels

# No shrink phase: these tests ask whether the property catches the bug; the shrunk evidence
# is tests/test_planted_bugs.py's subject.
SEARCH = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate])
QUICK = settings(SEARCH, max_examples=8)


@pytest.mark.parametrize("name", sorted(gradient_kernels.PLANTED))
def test_planted_gradient_bug_is_caught(name: str, tmp_path) -> None:
    kernel, activation, dtype, prop, why = gradient_kernels.PLANTED[name]
    target = target_from_callable(kernel, activation, name=f"planted.{name}",
                                  source=f"tests.gradient_kernels:{name}")
    subject = Subject(target, float_format(dtype), "cpu", DEFAULT)

    outcome = run_property(all_properties()[prop], subject, settings=SEARCH, replay_dir=tmp_path)

    assert outcome.status == "failed", f"{prop} missed: {why} ({outcome.status})"
    assert outcome.failure.message


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("activation", sorted(gradient_kernels.CORRECT))
def test_correct_custom_function_passes_every_derivative_property(activation: str, dtype: str,
                                                                  tmp_path) -> None:
    target = target_from_callable(gradient_kernels.CORRECT[activation], activation)
    subject = Subject(target, float_format(dtype), "cpu", DEFAULT)
    backward = [p for p in properties_for(target, dtype, "cpu") if p.kind == "backward"]
    assert backward, "no derivative property applies"

    outcomes = [run_property(p, subject, settings=QUICK, replay_dir=tmp_path) for p in backward]

    failed = [o for o in outcomes if o.status != "passed"]
    assert not failed, "\n\n".join(format_failure(o) if o.failure else f"{o.property}: "
                                   f"{o.reason}" for o in failed)


@pytest.mark.parametrize("activation", ["gelu", "silu"])
def test_gradient_at_infinity_is_the_limit(activation: str) -> None:
    """SiLU's and GELU's derivatives tend to 1 at +inf and 0 at -inf, where IEEE evaluation of
    their formulas gives NaN (PyTorch's, accepted by convention: findings B10).  The limits
    pass, NaN passes, and a wrong finite value there is caught."""
    fn = getattr(torch.nn.functional, activation)
    x = torch.tensor([torch.inf, -torch.inf, 1.0], dtype=torch.float64)
    g = torch.tensor([2.0, 3.0, 1.0], dtype=torch.float64)
    kernels = {"pytorch": (fn, True),
               "limits": (gradient_kernels.at_infinity(fn, plus=1.0, name="Limits"), True),
               "zero at +inf": (gradient_kernels.at_infinity(fn, plus=0.0, name="Zero"), False)}
    for label, (kernel, holds) in kernels.items():
        subject = Subject(target_from_callable(kernel, activation), float_format("float64"),
                          "cpu", DEFAULT)

        try:
            all_properties()["gradient_accuracy"].test(subject, Case(x, {}, upstream=g))
            caught = False
        except Violation:
            caught = True

        assert caught != holds, f"{label}: {'caught' if caught else 'missed'}"
