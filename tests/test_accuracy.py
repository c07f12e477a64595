"""The accuracy model (actverify.accuracy) against an independent computation in mpmath.

Every verdict of the suite is a number this module computes, so it is checked here against the
definition written out in arbitrary precision:

    ulp(r) = 2^(max(floor(log2 |r|), emin) - (p - 1)),   error = |y - f(x)| / ulp(f(x))

with f evaluated by mpmath at 128 bits, plus the rules around it: subnormal quantum, ulp(0),
overflow to infinity, NaN and infinities, and the two policies of `compare`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actverify.accuracy import (
    DEFAULT,
    STRICT,
    Policy,
    compare,
    overflow_threshold,
    reference_dtype,
    reference_uncertainty,
    to_reference,
    ulp,
    ulp_error,
)
from actverify.dtypes import DTYPE_NAMES, FORMATS, FloatFormat
from actverify.spec import get_spec
from actverify.strategies import floats

FMTS = [FORMATS[name] for name in DTYPE_NAMES]
FMT_IDS = list(DTYPE_NAMES)
PREC = 128  # bits for mpmath: far beyond any reference type's 64
POLICY_IDS = ["default", "strict"]


# ------------------------------------------------------------------- the definition, in mpmath


def mp_ulp(fmt: FloatFormat, r: mpmath.mpf) -> mpmath.mpf:
    """The definition above; frexp gives the exponent exactly (no log rounding)."""
    if r == 0:
        e = fmt.emin
    else:
        _, exp = mpmath.frexp(r)  # r = m 2^exp, 0.5 <= |m| < 1: floor(log2 |r|) = exp - 1
        e = max(int(exp) - 1, fmt.emin)
    return mpmath.ldexp(mpmath.mpf(1), e - (fmt.precision - 1))


def mp_value(v: float | np.floating) -> mpmath.mpf:
    """A float64 or longdouble, exactly."""
    if isinstance(v, np.floating) and v.dtype == np.longdouble and np.isfinite(v) and v != 0:
        # Scale into [0.5, 1) first, where the 64-bit significand splits exactly into a
        # float64 and a float64 remainder (no subnormal range to lose bits in).
        m, e = np.frexp(v)
        hi = np.float64(m)
        lo = np.float64(m - np.longdouble(hi))
        return mpmath.ldexp(mpmath.mpf(float(hi)) + mpmath.mpf(float(lo)), int(e))
    return mpmath.mpf(float(v))


def to_reference_type(fmt: FloatFormat, values: list[mpmath.mpf]) -> np.ndarray:
    """Exact reals rounded once into the reference type the library uses for `fmt`."""
    rt = reference_dtype(fmt)
    if rt is np.float64:
        return np.array([float(v) for v in values], dtype=np.float64)
    # 40 significant digits determine the 64-bit significand; numpy parses them correctly.
    # Values beyond the type's range (exp(-1e300)) become 0, as the library's would.
    tiny = mpmath.ldexp(1, np.finfo(rt).minexp - np.finfo(rt).nmant - 1)
    return np.array([rt(mpmath.nstr(v, 40, min_fixed=1, max_fixed=0)) if abs(v) >= tiny
                     else rt(0.0) for v in values], dtype=rt)


def mp_sigmoid(x: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-x))


FUNCTIONS: dict[str, tuple[Callable[[mpmath.mpf], mpmath.mpf],
                           Callable[[torch.Tensor], torch.Tensor]]] = {
    "sigmoid": (mp_sigmoid, torch.sigmoid),
    "tanh": (mpmath.tanh, torch.tanh),
}


def in_format(fmt: FloatFormat, values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).to(fmt.dtype)


def check(y: list[float], r: list[float] | np.ndarray, fmt: FloatFormat, policy: Policy, *,
          bound: float = 1.0, zero_sign: bool = False):  # type: ignore[no-untyped-def]
    """compare() on plain lists: y in the format, r as the (exact) reference."""
    reference = np.array(r, dtype=reference_dtype(fmt))
    return compare(in_format(fmt, y), reference, fmt=fmt, bound=bound, policy=policy,
                   zero_sign_specified=zero_sign)


# ------------------------------------------------------------ ulp() and ulp_error() vs mpmath


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
@given(data=st.data())
@settings(max_examples=12, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_ulp_and_ulp_error_agree_with_mpmath(fmt: FloatFormat, name: str,
                                             data: st.DataObject) -> None:
    # Inputs from the suite's own strategy (subnormals, thresholds, huge values); outputs are
    # torch's result and its two neighbours, so errors from ~0 to ~2 ulps are all exercised.
    mp_f, torch_f = FUNCTIONS[name]
    spec = get_spec(name)
    xs = data.draw(st.lists(floats(fmt, allow_nan=False, allow_infinity=False,
                                   thresholds=spec.thresholds(fmt)), min_size=1, max_size=30))
    x = in_format(fmt, xs)
    y = torch_f(x)
    bits = fmt.bits_of(y)
    around = torch.stack([y, fmt.from_bits(bits - 1), fmt.from_bits(bits + 1)], dim=1)
    keep = torch.isfinite(around)  # the neighbour of max is inf, of +0 a NaN pattern
    candidates = around[keep]
    sources = x[:, None].expand(-1, 3)[keep].double().tolist()

    with mpmath.workprec(PREC):
        exact = [mp_f(mpmath.mpf(v)) for v in sources]
        reference = to_reference_type(fmt, exact)

        lib_ulp = ulp(reference, fmt)
        lib_err = ulp_error(candidates, reference, fmt)

        for i, f in enumerate(exact):
            stored = mp_value(reference[i])
            # ulp() of the stored reference is exactly the definition's, always.
            assert mp_value(lib_ulp[i]) == mp_ulp(fmt, stored), (sources[i], stored)
            # Where f lies within the reference type's rounding of a power of two (sigmoid of
            # a tiny negative x: 0.5 - 1e-40), the stored value sits in the next binade and the
            # library cannot know better: its unit is then ulp(stored).
            unit = mp_ulp(fmt, f) if mp_ulp(fmt, stored) == mp_ulp(fmt, f) else mp_ulp(fmt, stored)
            y = mpmath.mpf(float(candidates[i]))
            expected = abs(y - f) / unit
            # The stored reference is f rounded to 53 (64) bits: that is the library's only
            # source of error, and reference_uncertainty bounds it.
            tolerance = reference_uncertainty(fmt) * (1 + expected)
            assert abs(lib_err[i] - expected) <= tolerance, (sources[i], float(y), expected)


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_ulp_at_every_binade_edge_is_the_definition(fmt: FloatFormat) -> None:
    # `ulp`'s fast paths (a table indexed by the float64 exponent field; for extended
    # references, that of their float64 rounding, corrected where it crossed into the next
    # binade or past float64's range) against mpmath's definition, clipped to the format's
    # binades as `ulp` is: every power of two from below the format's subnormals to above its
    # largest value, each with its neighbours in the reference type, both signs.
    rt = reference_dtype(fmt)
    exponents = np.arange(fmt.emin - fmt.precision - 40, fmt.emax + 9)
    powers = np.ldexp(np.ones(exponents.shape, dtype=rt), exponents)
    edges = np.concatenate([powers, np.nextafter(powers, rt(0)), np.nextafter(powers, rt(np.inf))])
    r = np.concatenate([edges, -edges, np.array([0.0, -0.0], dtype=rt)])
    r = r[np.isfinite(r)]
    top = mp_ulp(fmt, mpmath.mpf(fmt.max))

    got = ulp(r, fmt)

    with mpmath.workprec(PREC):
        wrong = [(float(v), float(u)) for v, u in zip(r, got)
                 if mp_value(u) != min(mp_ulp(fmt, mp_value(v)), top)]
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_ulp_in_the_subnormal_range_is_the_quantum(fmt: FloatFormat) -> None:
    rt = reference_dtype(fmt)
    q = fmt.smallest_subnormal
    r = np.array([0.0, -0.0, q, -q, 3 * q, fmt.tiny / 2, fmt.tiny - q, fmt.tiny, -fmt.tiny,
                  q / 3], dtype=rt)

    quantum = ulp(r, fmt)

    # Below 2 tiny every ulp is the subnormal quantum, ulp(0) included (also values between
    # zero and the smallest subnormal, which only a reference can hold).
    assert (quantum == q).all(), quantum
    assert ulp(np.array([2 * fmt.tiny], dtype=rt), fmt)[0] == 2 * q


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_ulp_of_normal_values(fmt: FloatFormat) -> None:
    rt = reference_dtype(fmt)
    r = np.array([1.0, -1.0, 1.5, 2.0, -3.0, 1.0 - fmt.eps / 2, 0.75], dtype=rt)

    assert ulp(r, fmt).tolist() == [fmt.eps, fmt.eps, fmt.eps, 2 * fmt.eps, 2 * fmt.eps,
                                    fmt.eps / 2, fmt.eps / 2]


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_ulp_above_max_is_the_top_binades(fmt: FloatFormat) -> None:
    rt = reference_dtype(fmt)
    top = rt(2.0) ** (fmt.emax - fmt.precision + 1)
    with np.errstate(over="ignore"):
        r = np.array([fmt.max, rt(fmt.max) * 4, -rt(fmt.max) * 3], dtype=rt)

    assert (ulp(r, fmt) == top).all()


def test_ulp_of_a_float16_value_above_max() -> None:
    # 1e6 is far past float16's 65504: still measured in the top binade's ulp, 2^(15-10).
    assert ulp(np.array([1e6]), FORMATS["float16"])[0] == 32.0


# ---------------------------------------------------------------------- overflow to infinity


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_overflow_threshold_is_max_plus_half_an_ulp(fmt: FloatFormat) -> None:
    rt = reference_dtype(fmt)
    half_top_ulp = rt(2.0) ** (fmt.emax - fmt.precision)

    threshold = overflow_threshold(fmt)

    assert threshold == rt(fmt.max) + half_top_ulp
    assert np.isfinite(threshold)


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_overflow_threshold_is_where_rounding_goes_to_infinity(fmt: FloatFormat) -> None:
    # Round to nearest even at the threshold (a tie: max has an odd significand) gives inf,
    # the value just below gives max.  Converted with a single correct rounding each time
    # (numpy for IEEE formats, float32 -> bfloat16 in torch, where the threshold is exact).
    threshold = overflow_threshold(fmt)
    rounders: dict[str, Callable[[np.floating], float]] = {
        "float16": lambda v: float(np.float16(v)),
        "float32": lambda v: float(np.float32(v)),
        "float64": lambda v: float(np.float64(v)),
        "bfloat16": lambda v: float(torch.tensor(np.float32(v)).to(torch.bfloat16)),
    }
    narrow = np.float32 if fmt.name == "bfloat16" else type(threshold)
    below = np.nextafter(narrow(threshold), narrow(0))

    with np.errstate(over="ignore"):
        assert rounders[fmt.name](narrow(threshold)) == math.inf
        assert rounders[fmt.name](below) == fmt.max


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_ulp_error_near_and_past_overflow(fmt: FloatFormat) -> None:
    rt = reference_dtype(fmt)
    top = rt(2.0) ** (fmt.emax - fmt.precision + 1)
    threshold = overflow_threshold(fmt)
    with np.errstate(over="ignore"):
        r = np.array([rt(fmt.max) + top / 4,  # above max, rounds to max
                      rt(fmt.max) + top / 4,
                      threshold,  # rounds to inf
                      threshold * 2,
                      threshold * 2,
                      np.inf,
                      np.inf,
                      -np.inf], dtype=rt)
    y = in_format(fmt, [fmt.max, math.inf, math.inf, math.inf, -math.inf, math.inf, fmt.max,
                        -math.inf])

    err = ulp_error(y, r, fmt)

    assert err.tolist() == [0.25, math.inf, 0.0, 0.0, math.inf, 0.0, math.inf, 0.0]


# --------------------------------------------------------------------------- NaN and infinity


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_nan_rules(fmt: FloatFormat) -> None:
    rt = reference_dtype(fmt)
    # NaNs with other payloads and signs than the canonical one: payload never matters.
    # (A quiet NaN: numpy warns when it converts a signalling one to longdouble.)
    quiet_bit = 1 << (fmt.precision - 2)
    all_ones_exponent = ((1 << (fmt.bits - fmt.precision)) - 1) << (fmt.precision - 1)
    quiet_payload = fmt.from_bits(torch.tensor([fmt.signed(
        all_ones_exponent | quiet_bit | 3, fmt.bits)]))
    y = torch.cat([in_format(fmt, [math.nan, -math.nan, 1.0, math.nan, math.inf, -math.inf]),
                   quiet_payload])
    r = np.array([np.nan, np.nan, np.nan, 1.0, np.nan, np.nan, -np.nan], dtype=rt)

    err = ulp_error(y, r, fmt)

    assert err.tolist() == [0.0, 0.0, math.inf, math.inf, math.inf, math.inf, 0.0]


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_infinities_must_match_exactly(fmt: FloatFormat) -> None:
    y = in_format(fmt, [math.inf, -math.inf, math.inf, -math.inf, fmt.max, 1.0])
    r = np.array([np.inf, -np.inf, -np.inf, np.inf, np.inf, -np.inf], dtype=reference_dtype(fmt))

    assert ulp_error(y, r, fmt).tolist() == [0.0, 0.0, math.inf, math.inf, math.inf, math.inf]


@pytest.mark.parametrize("policy", [DEFAULT, STRICT], ids=POLICY_IDS)
@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_compare_nan_and_infinity_verdicts(fmt: FloatFormat, policy: Policy) -> None:
    cmp = check([math.nan, math.nan, 1.0, math.inf, fmt.max, math.inf],
                [math.nan, 1.0, math.nan, 1.0, math.inf, math.inf], fmt, policy)

    assert cmp.bad.tolist() == [False, True, True, True, True, False]
    assert cmp.reason.tolist() == ["", "unexpected NaN", "expected NaN", "infinity mismatch",
                                   "infinity mismatch", ""]
    assert cmp.max_error == math.inf


# ---------------------------------------------------------------------------- compare() rules


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_flush_to_zero_is_accepted_under_default_only(fmt: FloatFormat) -> None:
    # True values in the subnormal range (either sign) returned as zero, e.g. PyTorch's CPU
    # sigmoid for float32 x <= -89.
    q = fmt.smallest_subnormal
    y = [0.0, -0.0, 0.0]
    r = [5 * q, -(fmt.tiny - q), fmt.tiny / 2]

    lax = check(y, r, fmt, DEFAULT)
    strict = check(y, r, fmt, STRICT)

    assert lax.ok and lax.excused.all()
    assert lax.counted_max() is None  # flushed results do not count as the worst error
    assert not strict.ok and strict.bad.all()
    assert set(strict.reason.tolist()) == {"ulp error above bound"}


@pytest.mark.parametrize("policy", [DEFAULT, STRICT], ids=POLICY_IDS)
@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_flushing_a_normal_true_value_is_never_accepted(fmt: FloatFormat,
                                                        policy: Policy) -> None:
    cmp = check([0.0], [fmt.tiny * 1.5], fmt, policy)

    assert not cmp.ok and not cmp.excused.any()
    assert cmp.reason.tolist() == ["ulp error above bound"]


@pytest.mark.parametrize(("policy", "specified", "counted"), [
    (DEFAULT, False, False),  # relu(-0): either zero is fine by default
    (DEFAULT, True, True),  # tanh(-0) = -0 is specified
    (STRICT, False, True),  # strict: IEEE signs everywhere
    (STRICT, True, True),
])
@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_sign_of_zero(fmt: FloatFormat, policy: Policy, specified: bool, counted: bool) -> None:
    cmp = check([-0.0, 0.0, -0.0, 0.0], [0.0, -0.0, -0.0, 0.0], fmt, policy, bound=0.0,
                zero_sign=specified)

    assert cmp.bad.tolist() == [counted, counted, False, False]
    assert cmp.reason.tolist()[:2] == ["sign of zero differs" if counted else ""] * 2


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_correct_rounding_is_required_under_strict_only(fmt: FloatFormat) -> None:
    # r = 1 + 0.75 ulp: 1 + ulp is 0.25 ulp away (correctly rounded), 1 is 0.75 (faithful).
    rt = reference_dtype(fmt)  # float64 references need longdouble to hold 1 + 0.75 ulp
    r = np.array([rt(1) + rt(0.75) * rt(fmt.eps)] * 2)
    y = [1.0 + fmt.eps, 1.0]

    lax = check(y, r, fmt, DEFAULT, bound=1.0)
    strict = check(y, r, fmt, STRICT, bound=1.0)

    assert lax.ok
    assert strict.bad.tolist() == [False, True]
    assert strict.error.tolist() == [0.25, 0.75]
    assert strict.bound.tolist() == [0.5 + reference_uncertainty(fmt)] * 2


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_bound_is_per_element_plus_the_reference_uncertainty(fmt: FloatFormat) -> None:
    # Both results are exactly 1 ulp off.  The second bound is short of 1 ulp by less than the
    # reference's own uncertainty, so the verdict does not hinge on the reference's last bits.
    margin = reference_uncertainty(fmt)
    bound = np.array([0.0, 1.0 - margin / 2, 2.0, 1.0 - 2 * margin])

    cmp = check([1.0 + fmt.eps] * 4, [1.0] * 4, fmt, DEFAULT, bound=bound)

    assert cmp.error.tolist() == [1.0] * 4
    assert cmp.bad.tolist() == [True, False, False, True]


def test_infinite_bound_is_no_limit() -> None:
    fmt = FORMATS["float32"]

    cmp = check([2.0], [1.0], fmt, DEFAULT, bound=math.inf)

    assert cmp.ok


def test_compare_rejects_shape_mismatch() -> None:
    fmt = FORMATS["float32"]
    with pytest.raises(ValueError, match="shape mismatch"):
        compare(in_format(fmt, [1.0, 2.0]), np.array([1.0]), fmt=fmt, bound=1.0,
                policy=DEFAULT, zero_sign_specified=False)


def test_worst_index_and_counted_max() -> None:
    fmt = FORMATS["float16"]
    # errors: 0, 2 (bad), 0.5, flushed (excused under default)
    cmp = check([1.0, 1.0 + 2 * fmt.eps, 1.0, 0.0],
                [1.0, 1.0, 1.0 + fmt.eps / 2, 3 * fmt.smallest_subnormal], fmt, DEFAULT)

    assert cmp.worst_index() == 1
    assert cmp.counted_max() == (2.0, 1)
    assert cmp.counted_max(np.array([False, True, False, False])) == (0.5, 2)
    assert cmp.max_error == 3.0  # the flushed element is 3 quanta off: excused, not hidden


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_strict_rejects_the_predecessor_of_an_exact_power_of_two(fmt: FloatFormat) -> None:
    # sigmoid(0) = 0.5 and relu(1) = 1 are exact: the correctly rounded result is r itself.
    below_half, below_one = 0.5 - fmt.eps / 4, 1.0 - fmt.eps / 2

    strict = check([below_half, below_one], [0.5, 1.0], fmt, STRICT, bound=0.0)
    lax = check([below_half, below_one], [0.5, 1.0], fmt, DEFAULT, bound=0.0)

    assert not lax.ok  # bound 0: DEFAULT rejects both
    assert strict.bad.tolist() == [True, True]


def test_reason_is_empty_for_an_accepted_result_past_max() -> None:
    # True value 65521 (past float16's overflow threshold 65520, so it rounds to inf); max
    # 65504 is 0.53 ulp away, within a 1-ulp (faithful) bound.
    fmt = FORMATS["float16"]

    cmp = check([fmt.max], [65521.0], fmt, DEFAULT, bound=1.0)

    assert cmp.ok
    assert cmp.reason.tolist() == [""]


# ------------------------------------------------------------ the double-rounding tie (pinned)


def test_double_rounding_tie_case_for_float16_sigmoid() -> None:
    # float16 x = -0.00146484375: sigmoid(x) lies just above the float16 midpoint
    # 0.4996337890625 between 0.49951171875 and 0.499755859375 (ulp 2^-12 there).  Rounded once
    # it is 0.499755859375; rounded to float32 first it lands on the midpoint, and the tie then
    # goes to even, 0.49951171875.  Measuring against the real value tells them apart.
    fmt = FORMATS["float16"]
    spec = get_spec("sigmoid")
    x = torch.tensor([-0.00146484375], dtype=torch.float16)
    midpoint = mpmath.mpf("0.4996337890625")
    with mpmath.workprec(PREC):
        true = mp_sigmoid(mpmath.mpf(-0.00146484375))
        assert midpoint < true < midpoint + mpmath.mpf(2) ** -33
        assert mpmath.nstr(true, 14) == "0.49963378912798"

    correctly_rounded = torch.sigmoid(x)
    double_rounded = torch.sigmoid(x.double()).half()
    assert correctly_rounded.item() == 0.499755859375
    assert double_rounded.item() == 0.49951171875

    reference = spec.reference(to_reference(x, fmt))
    good = ulp_error(correctly_rounded, reference, fmt)[0]
    bad = ulp_error(double_rounded, reference, fmt)[0]
    assert 0.4999997 < good < 0.5 < bad < 0.5000003  # docs/accuracy.md: 0.49999973, 0.50000027
    # The gap to the midpoint (2.7e-7 ulp) dwarfs the reference's own uncertainty.
    assert 0.5 - good > 1000 * reference_uncertainty(fmt)

    bound = spec.bound(fmt).evaluate(reference, {}, fmt)
    assert bound == 1.0  # 16-bit sigmoid: faithful rounding by default
    for y, strict_ok in ((correctly_rounded, True), (double_rounded, False)):
        assert compare(y, reference, fmt=fmt, bound=bound, policy=STRICT,
                       zero_sign_specified=False).ok is strict_ok
        assert compare(y, reference, fmt=fmt, bound=bound, policy=DEFAULT,
                       zero_sign_specified=False).ok


# ------------------------------------------------------------------- the reference's own error


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_reference_uncertainty_is_tiny_next_to_half_an_ulp(fmt: FloatFormat) -> None:
    if fmt.bits == 64 and np.finfo(np.longdouble).nmant < 63:
        pytest.skip("longdouble is plain double here: float64 references are only float64")

    # At most 2^-8 ulp (float64 against x87 extended): a verdict at 0.5 ulp cannot flip
    # because of the reference's last bits unless the true value is within 2^-8 ulp of a tie.
    # 8 units of the reference type: GELU's tail reference measured 5 (test_references.py).
    assert 0 < reference_uncertainty(fmt) <= 2.0**-8
    assert reference_uncertainty(fmt) == 8.0 * 2.0 ** (
        fmt.precision - (np.finfo(reference_dtype(fmt)).nmant + 1))


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
@given(data=st.data())
@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_spec_reference_is_within_its_stated_uncertainty(fmt: FloatFormat, name: str,
                                                         data: st.DataObject) -> None:
    # reference_uncertainty claims the spec's reference (numpy in float64 / longdouble) is that
    # close to the real value, in ulps of the format: check it against mpmath.
    mp_f, _ = FUNCTIONS[name]
    spec = get_spec(name)
    xs = data.draw(st.lists(floats(fmt, allow_nan=False, allow_infinity=False,
                                   thresholds=spec.thresholds(fmt)), min_size=1, max_size=30))
    x = in_format(fmt, xs)

    reference = spec.reference(to_reference(x, fmt))

    with mpmath.workprec(PREC):
        for v, r in zip(xs, reference):
            f = mp_f(mpmath.mpf(v))
            off = abs(mp_value(r) - f) / mp_ulp(fmt, f)
            assert off <= reference_uncertainty(fmt), (v, float(off))
