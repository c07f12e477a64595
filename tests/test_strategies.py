"""Meta-tests of actverify.strategies: the inputs really reach the places bugs hide.

A property suite is only as good as what it draws.  Each test here searches a strategy (with
Hypothesis' `find`, or by drawing many examples) for one kind of input the module docstring
promises: bfloat16 subnormals, both zeros, infinities, NaN, the largest normals, values next
to each activation's thresholds, 0-d, empty, odd and huge shapes, every memory layout, and the
parameter values (negative softmax dims, leaky slopes of 0, < 0, > 1) that break kernels.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import TypeVar

import pytest
import torch
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, NoSuchExample

from actverify.dtypes import DTYPE_NAMES, FORMATS, FloatFormat
from actverify.spec import ActivationSpec, get_spec, registry
from actverify.strategies import (
    LAYOUTS,
    LARGE_SHAPES,
    ODD_SIZES,
    WIDE_ROWS,
    Case,
    _fill,
    apply_layout,
    cases,
    floats,
    layouts,
    neighbourhood,
    shapes,
    tensors,
    value_of_bits,
)

T = TypeVar("T")

FMTS = [FORMATS[name] for name in DTYPE_NAMES]
FMT_IDS = list(DTYPE_NAMES)
SPECS = list(registry().values())
SPEC_IDS = [spec.name for spec in SPECS]

# Searches: derandomized (a failure reproduces), no database, no shrinking (we only need to
# know an example exists, and shrinking tensors is slow).
SEARCH = settings(max_examples=3000, database=None, derandomize=True, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
# Properties that every draw must have: enough draws to mean something, fast enough for CI.
EVERY = settings(max_examples=100, database=None, deadline=None,
                 suppress_health_check=list(HealthCheck))
SMALL = shapes(allow_large=False)  # where the shape does not matter, keep tensors small


def find_all(strategy: st.SearchStrategy[T], kinds: Mapping[str, Callable[[T], bool]],
             what: str) -> None:
    """One search for several kinds of example at once (far cheaper than one `find` each):
    fails naming every kind the strategy never produced."""
    missing = set(kinds)

    def condition(example: T) -> bool:
        missing.difference_update([name for name in missing if kinds[name](example)])
        return not missing

    try:
        find(strategy, condition, settings=SEARCH)
    except NoSuchExample:
        pass
    assert not missing, f"{what}: never drew {sorted(missing)} in {SEARCH.max_examples} draws"


def as_float64(values: torch.Tensor | float) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().to(torch.float64).flatten()
    return torch.tensor([values], dtype=torch.float64)


def ordinal(fmt: FloatFormat, values: torch.Tensor) -> torch.Tensor:
    """Each value's position on the format's number line: neighbours differ by 1, and both
    zeros sit at 0, so |ordinal(a) - ordinal(b)| is the distance in ulps of the format."""
    bits = fmt.bits_of(values)
    if fmt.bits == 64:
        negative, magnitude = bits < 0, bits & ((1 << 63) - 1)
    else:
        negative = (bits >> (fmt.bits - 1)) == 1
        magnitude = bits & ((1 << (fmt.bits - 1)) - 1)
    return torch.where(negative, -magnitude, magnitude)


def to_format(fmt: FloatFormat, values: list[float]) -> torch.Tensor:
    # Every value here is already representable in fmt (or is meant to be rounded once).
    return torch.tensor(values, dtype=torch.float64).to(fmt.dtype)


# What "produces the special values" means, on a float64 view of the drawn values.
SPECIALS: dict[str, Callable[[FloatFormat, torch.Tensor], torch.Tensor]] = {
    "a subnormal": lambda f, v: (v != 0) & (v.abs() < f.tiny),
    "a subnormal other than the smallest and largest": lambda f, v: (
        (v.abs() > f.smallest_subnormal) & (v.abs() < f.tiny - f.smallest_subnormal)),
    "+0": lambda f, v: (v == 0) & ~torch.signbit(v),
    "-0": lambda f, v: (v == 0) & torch.signbit(v),
    "+inf": lambda f, v: v == math.inf,
    "-inf": lambda f, v: v == -math.inf,
    "NaN": lambda f, v: torch.isnan(v),
    "the largest normal": lambda f, v: v == f.max,
    "minus the largest normal": lambda f, v: v == -f.max,
    "the smallest normal": lambda f, v: v.abs() == f.tiny,
}


# ------------------------------------------------------------------------------- floats()


def special_kinds(fmt: FloatFormat) -> dict[str, Callable[[torch.Tensor], bool]]:
    """SPECIALS as predicates on a float64 view of one draw: 'holds at least one'."""
    return {kind: (lambda v, is_kind=is_kind: bool(is_kind(fmt, v).any()))
            for kind, is_kind in SPECIALS.items()}


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_floats_produce_special_values(fmt: FloatFormat) -> None:
    find_all(floats(fmt).map(as_float64), special_kinds(fmt), f"floats({fmt.name})")


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
@given(data=st.data())
@EVERY
def test_floats_are_exactly_representable(fmt: FloatFormat, data: st.DataObject) -> None:
    # Threshold neighbourhoods come from torch rounding; bit patterns from from_bits: whatever
    # the branch, the value must survive a round trip through the format unchanged.
    spec = data.draw(st.sampled_from(SPECS))
    value = data.draw(floats(fmt, thresholds=spec.thresholds(fmt)))

    back = float(to_format(fmt, [value]).double()[0])

    assert (math.isnan(value) and math.isnan(back)) or (
        back == value and math.copysign(1.0, back) == math.copysign(1.0, value))


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
@given(data=st.data())
@EVERY
def test_floats_respect_their_exclusions(fmt: FloatFormat, data: st.DataObject) -> None:
    value = data.draw(floats(fmt, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                             thresholds=(fmt.tiny, 0.0)))

    assert math.isfinite(value)
    assert value == 0 or abs(value) >= fmt.tiny


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_floats_reach_the_neighbours_of_every_threshold(fmt: FloatFormat,
                                                         spec: ActivationSpec) -> None:
    # Not just the threshold itself (special values cover 0, tiny, max): a value 1 to 3 ulps
    # away on either side of the rounded threshold, for both signs.
    thresholds = spec.thresholds(fmt)
    targets = {centre: int(ordinal(fmt, to_format(fmt, [centre]))[0])
               for t in thresholds for centre in (t, -t)}

    def near(target: int) -> Callable[[float], bool]:
        def check(v: float) -> bool:
            return math.isfinite(v) and 1 <= abs(
                int(ordinal(fmt, to_format(fmt, [v]))[0]) - target) <= 3
        return check

    find_all(floats(fmt, thresholds=thresholds),
             {f"a neighbour of {centre!r}": near(target) for centre, target in targets.items()},
             f"floats({fmt.name}, thresholds of {spec.name})")


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_neighbourhood_is_every_finite_value_within_the_ulps(fmt: FloatFormat) -> None:
    centre = 1.0 + fmt.eps  # two steps down cross into the binade below 1, where ulp halves

    near = neighbourhood(fmt, [centre], ulps=2)

    expected = sorted({s * (1.0 + k * fmt.eps) for s in (1, -1) for k in range(0, 4)}
                      | {s * (1.0 - fmt.eps / 2) for s in (1, -1)})
    assert list(near) == expected


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_neighbourhood_of_max_and_zero_drops_inf_and_nan(fmt: FloatFormat) -> None:
    near = neighbourhood(fmt, [fmt.max, 0.0], ulps=3)

    assert all(math.isfinite(v) for v in near)
    assert fmt.max in near and -fmt.max in near
    assert 3 * fmt.smallest_subnormal in near and -3 * fmt.smallest_subnormal in near


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_value_of_bits_is_the_value_the_format_holds(fmt: FloatFormat) -> None:
    # floats() reads a drawn bit pattern with struct, not through a tensor: the same value
    # (and sign) for every 16-bit pattern, and for 32- and 64-bit ones at random and at the
    # edges.
    if fmt.bits == 16:
        patterns = list(range(1 << 16))
    else:
        rng = random.Random(0)
        top = 1 << fmt.bits
        patterns = [rng.randrange(top) for _ in range(20000)] + [0, 1, top // 2 - 1, top // 2,
                                                                 top // 2 + 1, top - 1]
    through_tensor = fmt.from_bits(torch.tensor([fmt.signed(b, fmt.bits) for b in patterns]))
    value_of = value_of_bits(fmt)
    for b, want in zip(patterns, through_tensor.double().tolist()):
        got = value_of(b)
        assert (math.isnan(got) and math.isnan(want)) or (
            got == want and math.copysign(1, got) == math.copysign(1, want)), hex(b)


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_floats_without_nan_infinity_or_subnormals_never_draw_them(fmt: FloatFormat) -> None:
    # The tables are filtered once and the bit patterns per draw; subnormals are excluded in
    # the 16-bit formats only here (the search is slow where they are a sliver of 2^32 or 2^64).
    subnormal = fmt.bits > 16
    strategy = floats(fmt, allow_nan=False, allow_infinity=False, allow_subnormal=subnormal,
                      thresholds=(0.0, 1.0))
    with pytest.raises(NoSuchExample):
        find(strategy,
             lambda v: not math.isfinite(v) or (not subnormal and 0 < abs(v) < fmt.tiny),
             settings=settings(SEARCH, max_examples=100))


# ------------------------------------------------------------------------------ tensors()


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_tensors_contain_special_values(name: str) -> None:
    # The 16-bit formats, where Hypothesis has no bfloat16 width to lean on (floats() covers
    # all four).  Small shapes: the values come from the same recipes at any size.
    fmt = FORMATS[name]
    find_all(tensors(fmt=fmt, shape=SMALL).map(as_float64), special_kinds(fmt),
             f"tensors({fmt.name})")


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
@given(data=st.data())
@EVERY
def test_tensors_respect_nan_and_infinity_exclusions(fmt: FloatFormat,
                                                      data: st.DataObject) -> None:
    x = data.draw(tensors(fmt=fmt, shape=SMALL, allow_nan=False, allow_infinity=False,
                          thresholds=(fmt.max,)))

    assert x.dtype == fmt.dtype and x.device.type == "cpu" and x.is_contiguous()
    assert bool(torch.isfinite(x).all())


@given(data=st.data())
@settings(EVERY, max_examples=20)
def test_tensors_use_the_requested_shape(data: st.DataObject) -> None:
    # The shape strategy is honoured (properties pass their own, e.g. 2-d for softmax rows).
    fmt = data.draw(st.sampled_from(FMTS))
    shape = data.draw(st.sampled_from([(), (3, 0, 2), (1,), (2, 3, 4, 5)]))

    x = data.draw(tensors(fmt=fmt, shape=st.just(shape)))

    assert x.shape == shape and x.dtype == fmt.dtype


@pytest.mark.parametrize(("fmt", "spec"), [
    pytest.param(f, s, id=f"{f.name}-{s.name}")
    for f in FMTS for s in SPECS])
def test_threshold_fill_draws_from_the_whole_neighbourhood(fmt: FloatFormat,
                                                           spec: ActivationSpec) -> None:
    # The 'thresholds' recipe fills the bulk of a tensor (not just the <= 8 drawn values):
    # every value must come from the 16-ulp neighbourhoods, and with thousands of draws
    # nearly all of each neighbourhood is hit.
    thresholds = spec.thresholds(fmt)
    allowed = set(fmt.bits_of(to_format(fmt, list(neighbourhood(fmt, thresholds, ulps=16))))
                  .tolist())

    x = _fill(fmt, 8192, seed=7, recipe="thresholds", scale_exp=0, thresholds=thresholds)

    drawn = set(fmt.bits_of(x).tolist())
    assert x.dtype == fmt.dtype
    assert drawn <= allowed, f"{len(drawn - allowed)} values outside the neighbourhoods"
    assert len(drawn) >= 0.9 * len(allowed)


@pytest.mark.parametrize("fmt", FMTS, ids=[f.name for f in FMTS])
def test_bit_pattern_fill_covers_every_binade(fmt: FloatFormat) -> None:
    # Uniform bit patterns: half have the top exponent bit set (|x| >= 2, inf, NaN) and half
    # are negative.
    x = _fill(fmt, 4096, seed=3, recipe="bits", scale_exp=0, thresholds=())

    v = as_float64(x)
    big = ~(v.abs() < 2)  # NaN counts as big: its exponent bits are all ones
    assert 0.4 < float(big.double().mean()) < 0.6
    assert 0.4 < float(torch.signbit(v).double().mean()) < 0.6


# ------------------------------------------------------------------------------- shapes()


def test_shapes_produce_0d_empty_4d_large_and_wide() -> None:
    kinds: dict[str, Callable[[tuple[int, ...]], bool]] = {
        "a 0-d shape": lambda s: s == (),
        "an empty 1-d shape": lambda s: s == (0,),
        "an empty shape with more than one dim": lambda s: 0 in s and len(s) >= 2,
        "a 4-d shape": lambda s: len(s) == 4 and 0 not in s,
        "more than 65,536 elements": lambda s: math.prod(s) > 65536,
        "a row wider than 1024": lambda s: len(s) == 2 and s[-1] > 1024,
    }

    find_all(shapes(), kinds, "shapes()")


def test_shapes_produce_every_odd_size_and_every_large_shape() -> None:
    # Sizes one off SIMD widths and the softmax kernels' switch points, as some dimension;
    # and each of the shapes of more than 65,536 elements.
    kinds: dict[str, Callable[[tuple[int, ...]], bool]] = {
        f"a dim of {size}": (lambda s, size=size: size in s) for size in ODD_SIZES[:12] + WIDE_ROWS}
    kinds |= {f"the shape {large}": (lambda s, large=large: s == large) for large in LARGE_SHAPES}

    find_all(shapes(), kinds, "shapes()")


@pytest.mark.parametrize(("min_dims", "max_dims"), [
    (0, 0), (0, 1), (1, 1), (2, 2), (0, 4), (3, 4), (5, 6),
])
def test_shapes_respect_dims_bounds(min_dims: int, max_dims: int) -> None:
    strategy = shapes(min_dims=min_dims, max_dims=max_dims)

    @given(shape=strategy)
    @settings(EVERY, max_examples=60)
    def every(shape: tuple[int, ...]) -> None:
        assert min_dims <= len(shape) <= max_dims

    every()


@given(shape=shapes(allow_empty=False, allow_large=False))
@EVERY
def test_shapes_respect_allow_empty_and_allow_large(shape: tuple[int, ...]) -> None:
    assert 0 not in shape
    assert math.prod(shape) <= 65536


@pytest.mark.parametrize(("min_dims", "max_dims"), [(-1, 2), (3, 2), (0, 7)])
def test_shapes_reject_impossible_bounds(min_dims: int, max_dims: int) -> None:
    with pytest.raises(InvalidArgument, match="min_dims <= max_dims <= 6"):
        shapes(min_dims=min_dims, max_dims=max_dims)


# ------------------------------------------------------------------------------- layouts


def laid_out_as(layout: str, x: torch.Tensor) -> bool:
    """Does `x` really have the memory layout `layout` names (where its shape allows it)?"""
    if layout == "contiguous":
        return x.is_contiguous()
    if layout == "transposed":  # dims 0 and -1 swapped in memory
        return not x.is_contiguous() and x.transpose(0, -1).is_contiguous()
    if layout == "strided":  # every other element of a buffer twice as wide
        return not x.is_contiguous() and x.stride(-1) == 2
    if layout == "offset":  # contiguous, but not at the start of its storage
        return x.is_contiguous() and x.storage_offset() == 3
    if layout == "expanded":  # a stride-0 (self-overlapping) dim
        return not x.is_contiguous() and x.stride(0) == 0
    if layout == "channels_last":
        return (not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last))
    raise AssertionError(layout)


def layout_applies(layout: str, shape: tuple[int, ...]) -> bool:
    """Shapes on which the layout differs from plain contiguous memory."""
    if layout == "contiguous":
        return True
    if not shape or math.prod(shape) == 0:
        return False  # apply_layout leaves 0-d and empty tensors as they are
    return {
        "transposed": len(shape) >= 2 and shape[0] > 1 and shape[-1] > 1,
        "strided": math.prod(shape) > 1,
        "offset": True,
        "expanded": shape[0] > 1,
        "channels_last": len(shape) == 4 and shape[1] > 1 and shape[2] * shape[3] > 1,
    }[layout]


RELU = get_spec("relu")


def test_cases_produce_every_layout_for_real() -> None:
    # Each layout, on a shape where it differs from contiguous memory, and really laid out so.
    def really(layout: str) -> Callable[[Case], bool]:
        return lambda c: (c.layout == layout and layout_applies(layout, tuple(c.x.shape))
                          and laid_out_as(layout, c.x))

    find_all(cases(spec=RELU, fmt="bfloat16", layout=True, shape=SMALL),
             {layout: really(layout) for layout in LAYOUTS}, "cases(layout=True)")


@given(case=cases(spec=RELU, fmt="float16", layout=True))
@settings(EVERY, max_examples=60)
def test_case_layouts_are_what_they_say(case: Case) -> None:
    # Every drawn case, large ones included: the layout is real wherever the shape allows it,
    # and reading it gives the same bits as its contiguous copy.
    x = case.x
    fmt = FORMATS["float16"]

    if layout_applies(case.layout, tuple(x.shape)):
        assert laid_out_as(case.layout, x), (case.layout, x.shape, x.stride())
    assert torch.equal(fmt.bits_of(x), fmt.bits_of(x.contiguous()))


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
@given(data=st.data())
@settings(EVERY, max_examples=30)
def test_apply_layout_keeps_every_bit(fmt: FloatFormat, data: st.DataObject) -> None:
    # The values a property checks must be the values drawn: bit for bit (NaN payloads and
    # zero signs included), except 'expanded', which repeats the first row by design.
    x = data.draw(tensors(fmt=fmt, shape=SMALL))

    for layout in LAYOUTS:
        y = apply_layout(x, layout)

        expected = x[:1].expand(x.shape) if layout == "expanded" and x.ndim and x.numel() else x
        assert y.shape == x.shape and y.dtype == x.dtype
        assert torch.equal(fmt.bits_of(y), fmt.bits_of(expected)), layout
        if layout_applies(layout, tuple(x.shape)):
            assert laid_out_as(layout, y), (layout, y.shape, y.stride())


def test_apply_layout_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown layout 'diagonal'"):
        apply_layout(torch.zeros(2, 2), "diagonal")


def test_inplace_layouts_include_every_writable_layout() -> None:
    find_all(layouts(inplace=True),
             {name: (lambda n, name=name: n == name) for name in LAYOUTS if name != "expanded"},
             "layouts(inplace=True)")


@given(case=cases(spec=RELU, fmt="float32", layout=True, inplace=True, shape=SMALL))
@EVERY
def test_inplace_cases_are_never_expanded(case: Case) -> None:
    # Writing into a self-overlapping tensor is an error in PyTorch, not a finding.
    assert case.layout != "expanded"
    assert case.x.numel() == 0 or case.x.ndim == 0 or case.x.stride(0) != 0


# ---------------------------------------------------------------------------- parameters

SOFTMAX = get_spec("softmax")
LEAKY = get_spec("leaky_relu")


def test_softmax_dims_cover_negative_and_positive() -> None:
    kinds: dict[str, Callable[[Case], bool]] = {
        "dim = -ndim": lambda c: c.x.ndim >= 2 and c.params["dim"] == -c.x.ndim,
        "dim = -1": lambda c: c.x.ndim >= 2 and c.params["dim"] == -1,
        "dim = 0": lambda c: c.x.ndim >= 2 and c.params["dim"] == 0,
        "dim = ndim - 1": lambda c: c.x.ndim >= 3 and c.params["dim"] == c.x.ndim - 1,
        "a middle dim, negative": lambda c: c.x.ndim >= 3 and -c.x.ndim < c.params["dim"] < -1,
        "dim = -1 on a 0-d tensor": lambda c: c.x.ndim == 0 and c.params["dim"] == -1,
    }

    find_all(cases(spec=SOFTMAX, fmt="float32", shape=SMALL), kinds, "softmax cases")


@given(case=cases(spec=SOFTMAX, fmt="float32", shape=SMALL))
@EVERY
def test_softmax_dims_are_always_valid(case: Case) -> None:
    ndim = max(case.x.ndim, 1)  # torch accepts dim 0 and -1 on a 0-d tensor
    assert -ndim <= case.params["dim"] < ndim


def test_leaky_relu_slopes_include_zero_negative_and_above_one() -> None:
    kinds: dict[str, Callable[[float], bool]] = {
        "slope 0": lambda s: s == 0.0,
        "a negative slope": lambda s: s < 0,
        "a slope above 1": lambda s: s > 1,
        "slope exactly 1": lambda s: s == 1.0,
        "the default 0.01": lambda s: s == 0.01,
        "another slope in (0, 1)": lambda s: 0 < s < 1 and s != 0.01,
    }

    find_all(cases(spec=LEAKY, fmt="float32", shape=st.just((4,))).map(
        lambda c: c.params["negative_slope"]), kinds, "leaky_relu cases")


@given(case=cases(spec=LEAKY, fmt="bfloat16", shape=st.just((4,))))
@EVERY
def test_leaky_relu_slopes_are_finite_floats(case: Case) -> None:
    slope = case.params["negative_slope"]
    assert isinstance(slope, float) and math.isfinite(slope)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_cases_concentrate_values_at_the_spec_thresholds(spec: ActivationSpec) -> None:
    # cases() hands the spec's thresholds to tensors(): each threshold's neighbourhood shows up
    # in some drawn tensor (bfloat16: the format without a native Hypothesis width).
    fmt = FORMATS["bfloat16"]

    def near(t: float) -> Callable[[torch.Tensor], bool]:
        target = int(ordinal(fmt, to_format(fmt, [t]))[0])
        return lambda x: bool(((ordinal(fmt, x) - target).abs() <= 3).any())

    finite_x = cases(spec=spec, fmt=fmt, shape=SMALL).map(
        lambda c: c.x[torch.isfinite(c.x)])
    find_all(finite_x, {f"near {t!r}": near(t) for t in spec.thresholds(fmt)},
             f"{spec.name} cases")
