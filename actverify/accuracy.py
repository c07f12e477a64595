"""The accuracy model: how far a result may be from the true value, in ULPs.

All rules live here (the numbers per activation live in each spec, and docs/accuracy.md
states both):

* The true value f(x) is evaluated by the spec's reference in higher precision (float64 for
  16- and 32-bit outputs, x87 extended precision for float64 outputs), and the error is the
  real number |y - f(x)| / ulp(f(x)).  We never round the reference to the output format
  first: torch casts float64 to float16 through float32, which double-rounds at ties.
* ulp(r) = 2**(max(floor(log2|r|), emin) - (p - 1)), so subnormal results are measured in the
  subnormal quantum and ulp(0) is the smallest subnormal; |r| above the largest finite value
  uses the top binade's ulp.
* NaN against NaN passes whatever the payload; NaN against a number fails either way.
  Infinities must match exactly (an infinite error otherwise).
* A zero's sign counts where the activation specifies it (`ActivationSpec.zero_sign`), and
  always under the strict policy.
* `default` policy: results whose true value is subnormal may be flushed to zero (PyTorch's
  CPU sigmoid returns 0 for float32 x <= -89, where the true value is about 2e-39).
  `strict` policy: every result must be correctly rounded (error <= 0.5 ulp), no flush, zero
  signs and NaN as IEEE 754 prescribes; it reports every deviation, for findings, not verdicts.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from actverify.dtypes import FloatFormat
from actverify.errors import UsageError

# Extended precision for float64 outputs: the x87 80-bit format gives 11 extra bits.  Where
# numpy's longdouble is plain double (Windows, Apple silicon) the reference for float64 is only
# float64 itself and `reference_uncertainty` says how much that blurs a verdict.
_EXTENDED = np.longdouble if np.finfo(np.longdouble).nmant >= 63 else np.float64


def reference_dtype(fmt: FloatFormat) -> type:
    """The numpy type a reference for outputs of `fmt` is evaluated in."""
    return np.float64 if fmt.bits <= 32 else _EXTENDED


def reference_uncertainty(fmt: FloatFormat) -> float:
    """Error of the reference itself, in ulps of `fmt`: a few units of the reference type
    (8: GELU's tail takes two exponentials, a continued fraction and three roundings, 5
    units measured against mpmath; tests/test_references.py holds every reference to it)."""
    ref_bits = np.finfo(reference_dtype(fmt)).nmant + 1
    return 8.0 * 2.0 ** (fmt.precision - ref_bits)


def to_reference(x: torch.Tensor, fmt: FloatFormat) -> np.ndarray:
    """Exact conversion of a tensor of `fmt` (any device) to the reference's numpy type; a
    new array, never a view of x's memory."""
    # Every format we check converts exactly to float64; bfloat16 has no numpy type.
    t = x.detach()
    fresh = t.dtype != torch.float64 or t.device.type != "cpu"  # .to() below copies
    values = t.to("cpu", torch.float64).numpy()
    rt = reference_dtype(fmt)
    if rt is np.float64:
        return values if fresh else values.copy()
    with np.errstate(invalid="ignore"):  # a signalling NaN quietens on the way: still NaN
        return values.astype(rt)


# x87 extended values fill 10 of the bytes numpy stores each in (12 or 16); numpy leaves the
# others as it found the memory, so two arrays of equal values differ there.
_PADDED = (np.finfo(np.longdouble).nmant == 63 and np.dtype(np.longdouble).itemsize > 10)


def value_digest(values: np.ndarray) -> bytes:
    """A digest of an array's exact values (with its dtype and shape), for memos keyed by
    values: equal arrays give equal digests, extended precision too (its padding bytes are
    left out: hashing them made equal arrays converted apart miss every memo)."""
    a = np.ascontiguousarray(values)
    data = a.view(np.uint8)
    if _PADDED and a.dtype == np.longdouble:
        data = data.reshape(-1, a.dtype.itemsize)[:, :10]
    digest = hashlib.blake2b(np.ascontiguousarray(data).data, digest_size=16)
    digest.update(f"{a.dtype.str}{np.shape(values)}".encode())
    return digest.digest()


@functools.lru_cache(maxsize=8)
def _ulp_by_exponent_field(fmt: FloatFormat) -> np.ndarray:
    """ulp in `fmt` of a float64 value, indexed by the value's 11-bit exponent field (what
    `ulp` computes with frexp, as a table: 0 holds zeros and float64 subnormals, 2047 the
    infinities; NaN, which shares 2047, is handled apart)."""
    field = np.arange(2048)
    exponent = np.clip(field - 1023, fmt.emin, fmt.emax)
    exponent[0] = fmt.emin
    exponent[2047] = np.clip(0, fmt.emin, fmt.emax)
    table = np.ldexp(1.0, exponent - (fmt.precision - 1))
    table.setflags(write=False)
    return table


def ulp(reference: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """ulp of each real value in `reference`, in the binade it falls in for `fmt`."""
    reference = np.asarray(reference)
    if reference.dtype == np.float64 and fmt.emin - fmt.precision + 1 >= -1022:
        # The exponent field of a float64 indexes a table: a third of the time of the frexp
        # form below, which ran several times per example (the allowances, every check).
        table = _ulp_by_exponent_field(fmt)
        field = (reference.view(np.uint64) >> np.uint64(52)) & np.uint64(0x7FF)
        nan = np.isnan(reference)
        if nan.any():  # NaN, not infinity: frexp's form gives it the smallest exponent
            return np.where(nan, table[0], table[field])
        return table[field]
    if (reference.dtype == _EXTENDED and reference.dtype != np.float64
            and fmt.emin - fmt.precision + 1 >= -1074 and fmt.emax <= 1023):
        return _ulp_of_extended(reference, fmt)
    mag = np.abs(reference)
    _, e = np.frexp(np.where(np.isfinite(mag) & (mag > 0), mag, 1.0))
    exponent = np.clip(e.astype(np.int64) - 1, fmt.emin, fmt.emax)
    exponent = np.where(mag > 0, exponent, fmt.emin)
    exponent = (exponent - (fmt.precision - 1)).astype(np.int32)
    if mag.dtype != np.float64 and fmt.emin - fmt.precision + 1 >= -1074 and fmt.emax <= 1023:
        # Every such ulp is a float64 (subnormal at worst): build it there, where ldexp is
        # several times faster than in extended precision, and convert exactly.
        return np.ldexp(np.ones(mag.shape), exponent).astype(mag.dtype)
    return np.ldexp(np.ones_like(mag), exponent)


_MANTISSA = np.uint64((1 << 52) - 1)


def _ulp_of_extended(reference: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """`ulp` of extended-precision values (the references of float64 outputs), exactly the
    frexp form's, by the exponent-field table of their float64 roundings: frexp, where and
    ldexp in extended precision were a tenth of a float64 property's time (3,000 calls per
    report of one activation).  Every such ulp is a float64 (2^-1074 at least), so only the
    binade can differ from the rounded value's:

    * rounding to nearest moves a value to another binade only upward, onto a power of two:
      where the float64 is a power of two above |r| the binade is the one below (the field
      minus one; field 1 minus one is field 0, which holds emin as field 1 does);
    * a finite |r| beyond float64's range rounds to infinity: its binade is at least 2^1024,
      clipped to emax (field 2046), while a true infinity keeps field 2047 (frexp's form
      gives it the exponent 0);
    * a value below float64's subnormals rounds to zero or a subnormal: field 0, emin, as
      the clipped exponent of the extended value is.
    NaN is handled as in the float64 table form."""
    table = _ulp_by_exponent_field(fmt)
    with np.errstate(over="ignore", invalid="ignore"):  # past float64's range: infinity
        nearest = reference.astype(np.float64)
        bits = nearest.view(np.uint64)
        field = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.intp)
        power = ((bits & _MANTISSA) == 0) & (field > 0) & (field < 2047)
        if power.any():
            lower = np.zeros(field.shape, dtype=bool)
            lower[power] = np.abs(reference[power]) < np.abs(nearest[power])
            field = field - lower
        beyond = field == 2047
        if beyond.any():
            finite = beyond & ~np.isnan(reference) & ~np.isinf(reference)
            field = np.where(finite, 2046, field)
            field = np.where(beyond & np.isnan(reference), 0, field)
    return table[field].astype(reference.dtype)


def ulp_error(actual: torch.Tensor, reference: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """|actual - reference| / ulp(reference) per element, as float64.

    NaN vs NaN is 0; a NaN on one side only, or mismatched infinities, is +inf.
    """
    return _ulp_error(to_reference(actual, fmt).reshape(reference.shape), reference, fmt)


def _ulp_error(y: np.ndarray, reference: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """`ulp_error` of results already in the reference precision (y, of reference's shape)."""
    r = reference.astype(y.dtype, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        err = (np.abs(y - r) / ulp(r, fmt)).astype(np.float64)
        # The rules below change only elements with a NaN or an infinity on either side or a
        # true value past the overflow threshold, whose error is then not finite (or the
        # true value's magnitude is): where there are none, err is the error as it stands.
        if np.isfinite(err).all() and not (np.abs(r) >= overflow_threshold(fmt)).any():
            return err
        y_nan, r_nan = np.isnan(y), np.isnan(r)
        err = np.where(y_nan & r_nan, 0.0, err)
        err = np.where(y_nan ^ r_nan, np.inf, err)
        # A true value past the overflow threshold (max + half an ulp) rounds to infinity.
        r = np.where(np.abs(r) >= overflow_threshold(fmt), np.copysign(np.inf, r), r)
        both_inf = np.isinf(y) & np.isinf(r)
        err = np.where(both_inf, np.where(y == r, 0.0, np.inf), err)
        err = np.where(np.isinf(y) ^ np.isinf(r), np.where(np.isinf(r), err, np.inf), err)
    return err


def overflow_threshold(fmt: FloatFormat) -> float:
    """Smallest magnitude that rounds to infinity in `fmt` (round to nearest even)."""
    rt = reference_dtype(fmt)  # float64 itself cannot hold the float64 threshold
    with np.errstate(over="ignore"):
        return rt(2.0) ** fmt.emax * (rt(2.0) - rt(2.0) ** -fmt.precision)


@dataclass(frozen=True)
class Policy:
    """How strictly results are judged; see the module docstring and docs/accuracy.md."""

    name: str
    correct_rounding: bool  # every bound becomes 0.5 ulp
    allow_flush: bool  # a subnormal true value may come back as zero
    zero_sign: Literal["spec", "always"]  # whose word decides whether a zero's sign counts
    nan: Literal["spec", "ieee"]  # spec conventions (step(NaN)=0 in PyTorch) or IEEE propagation
    # Derivative at a kink: PyTorch's value (relu'(0) = 0, leaky'(0) = slope), or any value of
    # the subdifferential ("math"), for kernels whose authors chose differently.
    kink: Literal["pytorch", "math"] = "pytorch"


DEFAULT = Policy("default", correct_rounding=False, allow_flush=True, zero_sign="spec", nan="spec")
STRICT = Policy("strict", correct_rounding=True, allow_flush=False, zero_sign="always", nan="ieee")
POLICIES = {p.name: p for p in (DEFAULT, STRICT)}


KINKS = ("pytorch", "math")


def policy_named(name: str | Policy, *, kink: str | None = None) -> Policy:
    """A policy by name, optionally with another kink convention for derivatives."""
    if isinstance(name, Policy):
        policy = name
    else:
        try:
            policy = POLICIES[name]
        except KeyError:
            raise UsageError(f"unknown policy {name!r}; use one of {', '.join(POLICIES)}") from None
    if kink is not None:
        if kink not in KINKS:
            raise UsageError(f"unknown kink convention {kink!r}; use one of {', '.join(KINKS)}")
        policy = dataclasses.replace(policy, kink=kink, name=policy.name if kink == "pytorch"
                                     else f"{policy.name}+kink={kink}")
    return policy


@dataclass(frozen=True)
class Comparison:
    """Element-wise verdict of results against a reference."""

    error: np.ndarray  # ulp error per element (inf for NaN/inf mismatches)
    bound: np.ndarray  # allowed ulp error per element
    bad: np.ndarray  # bool mask of elements that break the policy
    reason: np.ndarray  # object array: why each bad element is bad ('' where fine)
    excused: np.ndarray  # bool mask: flushed subnormals the policy accepts (left out of figures)

    def counted_max(self, extra_excused: np.ndarray | None = None) -> tuple[float, int] | None:
        """The largest error among elements the policy does not excuse, and where: infinite
        where a NaN or an infinity stands for a number (or the reverse), so that a maximum
        never hides NaN results behind the finite errors of the other elements."""
        skip = self.excused if extra_excused is None else self.excused | extra_excused
        err = np.where(~np.isnan(self.error) & ~skip, self.error, -1.0)
        if not err.size or err.max() < 0:
            return None
        i = int(np.argmax(err))
        return float(err.flat[i]), i

    @property
    def ok(self) -> bool:
        return not bool(self.bad.any())

    def worst_index(self) -> int:
        """Flat index of the element most worth showing: a bad one first, the largest error."""
        score = np.where(self.bad.ravel(), 1e300, 0.0) + np.nan_to_num(
            self.error.ravel(), posinf=1e299
        )
        return int(np.argmax(score)) if score.size else -1

    @property
    def max_error(self) -> float:
        finite = self.error[np.isfinite(self.error)]
        if self.error.size and not np.isfinite(self.error).all():
            return float("inf")
        return float(finite.max()) if finite.size else 0.0


def compare(
    actual: torch.Tensor,
    reference: np.ndarray,
    *,
    fmt: FloatFormat,
    bound: float | np.ndarray,
    policy: Policy,
    zero_sign_specified: bool,
) -> Comparison:
    """Judge `actual` against the high-precision `reference` under `policy`.

    `bound` is the spec's allowed error in ulps (scalar or per element); the reference's own
    uncertainty is added so that a verdict never hinges on the last bits of the reference.
    """
    if actual.shape != reference.shape:
        raise ValueError(f"shape mismatch: actual {tuple(actual.shape)}, reference {reference.shape}")
    # The results in the reference precision, once for every test below.
    y = to_reference(actual, fmt).reshape(reference.shape)
    err = _ulp_error(y, reference, fmt)
    if policy.correct_rounding:
        # Correctly rounded: within half an ulp of the *result's* binade too, so that the
        # predecessor of a power of two (exactly 0.5 ulp of 2^k away) does not pass.
        y_ref = y
        with np.errstate(invalid="ignore"):
            ratio = np.where(np.isfinite(y_ref) & (y_ref != 0),
                             ulp(reference, fmt) / ulp(y_ref, fmt), 1.0)
        err = np.where(ratio > 1, err * ratio, err)
        bound = np.minimum(bound, 0.5)
    allowed = bound
    with np.errstate(over="ignore"):  # a bound beyond float64's range is no limit at all
        allowed = np.broadcast_to(np.asarray(allowed, dtype=np.float64), err.shape)
    allowed = allowed + reference_uncertainty(fmt)
    reason = np.full(err.shape, "", dtype=object)
    bad = err > allowed
    reason[bad] = "ulp error above bound"

    r = reference.astype(y.dtype, copy=False)
    excused = np.zeros(err.shape, dtype=bool)
    if policy.allow_flush:
        # A flushed subnormal result is accepted: zero where the true value is below tiny.
        excused = (y == 0) & (np.abs(r) < fmt.tiny)
        bad &= ~excused
        reason[excused] = ""
    if zero_sign_specified or policy.zero_sign == "always":
        sign_wrong = (y == 0) & (r == 0) & (np.signbit(y) != np.signbit(r))
        bad |= sign_wrong
        reason[sign_wrong] = "sign of zero differs"
    # A finite error everywhere means no NaN and no infinity on either side: no reason below
    # applies unless a true value is past the overflow threshold.
    with np.errstate(invalid="ignore"):
        plain = np.isfinite(err).all() and not (np.abs(r) >= overflow_threshold(fmt)).any()
    if not plain:
        nan_wrong = np.isnan(y) ^ np.isnan(r)
        reason[nan_wrong] = np.where(np.isnan(r[nan_wrong]), "expected NaN", "unexpected NaN")
        r = np.where(np.abs(r) >= overflow_threshold(fmt), np.copysign(np.inf, r), r)
        inf_wrong = (np.isinf(y) | np.isinf(r)) & (y != r) & ~nan_wrong & bad
        reason[inf_wrong] = "infinity mismatch"
    return Comparison(error=err, bound=np.asarray(allowed), bad=bad, reason=reason,
                      excused=excused)


def bounds_markdown(*, backward: bool = False) -> str:
    """The bounds of every spec (or of every spec's derivative) as the Markdown table in
    docs/accuracy.md (kept in sync by a test, so the doc and the code cannot drift apart)."""
    from actverify.dtypes import DTYPE_NAMES
    from actverify.spec import registry

    what = "backward" if backward else "default"
    lines = [f"| activation | dtype | {what} bound (ulp) | why |", "| --- | --- | --- | --- |"]
    for spec in registry().values():
        bounds = (spec.derivative.bounds if spec.derivative else None) if backward else spec.bounds
        if bounds is None:
            lines.append(f"| {spec.name} | all | no gradient | PyTorch's backward raises |")
            continue
        for dtype in DTYPE_NAMES:
            b = bounds[dtype]
            reason = b.reason.replace("|", "\\|")
            lines.append(f"| {spec.name} | {dtype} | {b.describe()} | {reason} |")
    return "\n".join(lines)
