"""`actverify isa`: PyTorch's CPU kernels compared across instruction-set capabilities.

Children are shared with the stand-in device's (one per capability per pytest worker).
"""

from __future__ import annotations

import pytest
import torch

from actverify.accuracy import DEFAULT
from actverify.cli import main
from actverify.devices import check_capability, cpu_capabilities, current_capability
from actverify.dtypes import float_format
from actverify.errors import UsageError
from actverify.isa import _figures, compare_capabilities
from actverify.properties import Subject
from actverify.spec import get_spec
from actverify.targets import builtin_targets


def subject(activation: str, dtype: str) -> Subject:
    return Subject(builtin_targets(get_spec(activation))[0], float_format(dtype), "cpu",
                   DEFAULT)


def test_capabilities_start_with_the_scalar_one_and_unknown_ones_are_refused(capsys) -> None:
    assert cpu_capabilities()[0] == "default" and current_capability() in cpu_capabilities()
    with pytest.raises(UsageError, match="not available on this machine"):
        check_capability("avx9")
    assert main(["isa", "--capability", "avx9"]) == 2
    assert "avx9" in capsys.readouterr().err


def test_sigmoid_float32_rounds_differently_without_vector_units_within_the_model() -> None:
    if current_capability() == "default":
        pytest.skip("only the scalar kernels run on this machine")
    results = compare_capabilities(activations=["sigmoid"], dtypes=["float32"],
                                   capabilities=["default", current_capability()],
                                   random_inputs=256)
    forward = next(r for r in results if r.direction == "forward")
    scalar = next(f for f in forward.figures if f.capability == "default")
    assert scalar.differ > 0 and 0 < scalar.max_gap_ulp <= 8, scalar
    assert all(r.ok for r in results)  # different bits, each within its accuracy bound


@pytest.mark.parametrize("activation, ulps, beyond", [("sigmoid", 1, 0), ("sigmoid", 200, 1),
                                                      ("relu", 1, 1)])
def test_a_difference_beyond_the_model_is_flagged(activation: str, ulps: int, beyond: int
                                                  ) -> None:
    """A capability whose result is `ulps` off the baseline's on one input: within two
    bounds for sigmoid at 1 ulp, beyond at 200; any bit differs for relu."""
    s = subject(activation, "float32")
    x = torch.linspace(0.5, 4, 64)
    base = s.canonical(x)
    planted = base.clone()
    planted.view(torch.int32)[17] += ulps
    figures = _figures(s, "planted", planted, base, x, s.reference(x), s.bound(x),
                       own_error=True)
    assert (figures.differ, figures.beyond) == (1, beyond), figures
    assert figures.example["x"] == float(x[17])


def test_the_isa_command_prints_the_table(capsys) -> None:
    assert main(["isa", "--activation", "relu", "--dtype", "bfloat16", "--forward-only",
                 "--capability", "default"]) == 0
    out = capsys.readouterr().out
    assert "| relu | bfloat16 | forward |" in out and "agree within the accuracy model" in out
