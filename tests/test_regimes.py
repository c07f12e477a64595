"""The scale regimes: PyTorch's own kernels pass, and each regime's planted bug
(tests/planted_regimes.py) is caught by `actverify check`'s default profile, ending on the
smallest shape that still holds the first wrong element."""

from __future__ import annotations

import math

import pytest

from actverify.accuracy import DEFAULT
from actverify.dtypes import float_format
from actverify.profiles import profile_settings
from actverify.properties import Subject, all_properties
from actverify.properties.scale import GRID_LIMIT, tile
from actverify.runner import Outcome, format_failure, run_property
from actverify.spec import get_spec
from actverify.strategies import Case
from actverify.targets import Target
from tests import planted_regimes

import torch


def run_scale(fn, activation: str, *, dtype: str = "float32", tmp_path=None) -> Outcome:
    return run_named("scale", fn, activation, dtype=dtype, tmp_path=tmp_path)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_pytorch_passes(activation: str, tmp_path) -> None:
    outcome = run_scale(get_spec(activation).canonical.fn, activation, tmp_path=tmp_path)
    assert outcome.status == "passed", outcome.reason or format_failure(outcome)


# (kernel, activation, the shape the failure must end on)
PLANTED = [
    (planted_regimes.sigmoid_float32_index, "sigmoid", (2**24 + 2,)),
    (planted_regimes.tanh_offset_wrap, "tanh", (2**24 + 1,)),
    (planted_regimes.relu_grid_y_limit, "relu", None),
    (planted_regimes.softmax_grid_y_limit, "softmax", None),
    (planted_regimes.softmax_skips_last_tile, "softmax", None),
]


@pytest.mark.parametrize("fn, activation, shape", PLANTED, ids=[p[0].__name__ for p in PLANTED])
def test_planted_scale_bug_is_caught(fn, activation: str, shape, tmp_path) -> None:
    outcome = run_scale(fn, activation, tmp_path=tmp_path)
    assert outcome.status == "failed", outcome.reason or "the scale property held"
    failure = outcome.failure
    assert "wrong result at index" in failure.message, format_failure(outcome)
    if shape is not None:
        assert failure.details["shape"] == str(shape), format_failure(outcome)
    assert failure.ulp_error is not None and failure.ulp_error > failure.details["bound"]


def test_a_few_wrong_elements_of_an_exact_float64_kernel_are_caught(tmp_path) -> None:
    # ReLU is exact (0 ulp): in float64 its screen interval must hold exactly the right value,
    # not be empty (every element flagged, and only CONFIRM of them confirmed: 8 wrong ones in
    # 17 million would go unseen).
    outcome = run_scale(planted_regimes.relu_second_launch_reads_from_zero, "relu",
                        dtype="float64", tmp_path=tmp_path)
    assert outcome.status == "failed", outcome.reason or "the scale property held"
    assert "wrong result at index (16777" in outcome.failure.message, format_failure(outcome)
    # only the wrong ones are flagged (two of the eight happen to be right: relu(x) = 0 twice)
    assert "6 of 6 flagged elements confirmed" in outcome.failure.message, \
        format_failure(outcome)


def test_tile_places_unit_r_at_row_r_mod_period() -> None:
    base = torch.arange(3 * 4, dtype=torch.float32).reshape(3, 4)
    x = tile(base, (2, 5, 4), 2)
    assert torch.equal(x.reshape(10, 4)[7], base[7 % 3])
    x = tile(base, (4, 5, 2), 0)  # rows along dim 0: the other dims enumerate the rows
    assert torch.equal(x[:, 1, 1], base[(1 * 2 + 1) % 3])
    assert GRID_LIMIT == 65_535


def run_named(prop: str, fn, activation: str, *, dtype: str = "float32", tmp_path=None,
              profile: str = "check") -> Outcome:
    """Run property `prop` on a kernel with `actverify check`'s default profile (or `profile`)."""
    target = Target(name=getattr(fn, "__name__", activation), activation=activation, fn=fn,
                    source=None)
    subject = Subject(target, float_format(dtype), "cpu", DEFAULT)
    return run_property(all_properties()[prop], subject, settings=profile_settings(profile),
                        replay_dir=tmp_path)


def test_seam_jump_is_caught_by_monotonic(tmp_path) -> None:
    outcome = run_named("monotonic", planted_regimes.sigmoid_seam_at_4, "sigmoid",
                        tmp_path=tmp_path)
    assert outcome.status == "failed", outcome.reason or "monotonic held"
    assert "output decreases" in outcome.failure.message
    assert abs(abs(outcome.failure.x) - 4) < 0.05, format_failure(outcome)


@pytest.mark.parametrize("fn, prop, evidence", [
    (planted_regimes.sigmoid_backward_assumes_contiguous, "gradient_layout_invariance",
     "layout changes the gradient"),
    # Writing into the saved input also raises where the input is expanded (one memory
    # location for several elements); which of the two Hypothesis reports first varies.
    (planted_regimes.tanh_backward_writes_input, "backward_leaves_inputs",
     ("modified the input", "more than one element of the written-to tensor")),
    (planted_regimes.sigmoid_backward_writes_output, "backward_leaves_inputs",
     "modified the output"),
], ids=lambda v: getattr(v, "__name__", None) or str(v))
def test_planted_backward_bug_is_caught(fn, prop: str, evidence: str | tuple[str, ...],
                                        tmp_path) -> None:
    activation = fn.__name__.split("_")[0]
    outcome = run_named(prop, fn, activation, tmp_path=tmp_path)
    assert outcome.status == "failed", outcome.reason or f"{prop} held"
    fragments = (evidence,) if isinstance(evidence, str) else evidence
    assert any(f in outcome.failure.message for f in fragments), format_failure(outcome)
    if prop == "gradient_layout_invariance":  # wrong only where the layout is permuted
        assert outcome.failure.layout in ("transposed", "channels_last"), format_failure(outcome)


def _masked_rows() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor([[0.5, -1.0, 2.0], [-math.inf] * 3, [1.0, -math.inf, 0.0]],
                     dtype=torch.float64)
    g = torch.tensor([[0.3, -1.5, 0.25], [1.0, -2.0, 0.5], [0.75, 0.5, -1.0]],
                     dtype=torch.float64)
    return x, g


@pytest.mark.parametrize("prop", ["gradient_accuracy", "gradient_entry_points_agree",
                                  "gradient_linearity", "entry_points_agree"])
def test_zeros_convention_passes_forward_and_backward(prop: str) -> None:
    """A row of only -inf: the kernel gives zeros and a zero gradient, F.softmax NaN and NaN;
    the default policy accepts both conventions, forward and backward."""
    target = Target(name="safe", activation="softmax",
                    fn=planted_regimes.softmax_zeros_convention, source=None)
    subject = Subject(target, float_format("float64"), "cpu", DEFAULT)
    x, g = _masked_rows()
    backward = all_properties()[prop].kind == "backward"
    case = Case(x, {"dim": -1}, upstream=g if backward else None)
    all_properties()[prop].test(subject, case)  # raises Violation if flagged


def test_float64_slopes_reach_the_backward(tmp_path) -> None:
    # About one example in two has both a slope float32 cannot hold and a negative input:
    # the `check` profile's 6 examples miss the bug about once in a hundred runs, `ci`'s 25
    # practically never (derandomized runs still vary with the constants Hypothesis collects
    # from the modules a process has imported).
    outcome = run_named("gradient_accuracy", planted_regimes.leaky_backward_float32_slope,
                        "leaky_relu", dtype="float64", tmp_path=tmp_path, profile="ci")
    assert outcome.status == "failed", outcome.reason or "gradient_accuracy held"
    assert "gradient differs" in outcome.failure.message, format_failure(outcome)
