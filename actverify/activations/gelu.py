"""GELU: x * Phi(x) (the exact erf form) and its tanh approximation, the gate of GeGLU."""

import collections
import functools

import numpy as np
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

from actverify.accuracy import ulp, value_digest
from actverify.activations.sigmoid import reference as sigmoid
from actverify.activations.sigmoid import thresholds as sigmoid_thresholds
from actverify.spec import (ActivationSpec, Bound, Derivative, EntryPoint, Param, Relation,
                            every_dtype, nan_at_infinity, odd_part_is_x,
                            with_limits)

# The error of the gate (1 + erf(x / sqrt 2), 1 + tanh u) allowed in units of the working
# precision: PyTorch's vectorised CPU GELU needs 9.2 (float32, x = -3.4796, findings); CUDA's
# erff is within 2 ulp.  A kernel that evaluates the gate without cancellation (x/2 erfc) is
# far inside.  Note the factor 1/2: the gate enters the result as |x|/2 times its error.
GATE_UNITS = 4  # 2^4 = 16 units

# The tanh form's constants, as PyTorch writes them: sqrt(2/pi) and the cubic coefficient.
KAPPA = 0.044715
F32_MAX = float(np.finfo(np.float32).max)
F32_HALF_MAX = F32_MAX / 2
BETA = float(np.sqrt(2 / np.pi))


def _continued_fraction(v: np.ndarray) -> np.ndarray:
    """f(v) with erfc(v) = e^(-v^2) / (sqrt(pi) f(v)), v >= 1, to the array's precision:
    v + (1/2) / (v + 1 / (v + (3/2) / (v + ...))).  It converges slower near v = 1, so each
    band gets the depth that reaches below an ulp of x87 extended precision there (checked
    against mpmath in tests/test_references.py; 150 steps reach it at v = 1.5, so 200 there).
    Below 1.5 only the Taylor coefficients' a_0 uses it, once per centre."""
    out = np.empty_like(v)
    for lo, hi, depth in ((0.5, 1.0, 4000), (1.0, 1.5, 500), (1.5, 2.0, 200), (2.0, 4.0, 150),
                          (4.0, np.inf, 50)):
        band = (v >= lo) & ((v < hi) | (hi == np.inf))  # the last band takes +inf too
        if band.any():
            w = v[band]
            f = w.copy()
            for k in range(depth, 0, -1):
                f = w + (w.dtype.type(k) / 2) / f
            out[band] = f
    return out


# erfc's Taylor expansion points for 1/2 <= v < 2, each serving |h| <= 1/4: the continued
# fraction needs 500 to 4000 steps there, 32 terms of the series reach below an ulp of x87
# extended precision, and the terms' growth (2 c h)^n / n! stays below 1 (no cancellation).
CENTRES = (0.75, 1.25)


@functools.lru_cache(maxsize=16)
def _erfc_taylor(dtype: type, centre: float) -> tuple:
    """Coefficients of erfc(centre + h) = sum a_n h^n in `dtype`: a_0 from the continued
    fraction (once, at its full depth), a_n = (-1)^n 2/sqrt(pi) e^(-c^2) H_(n-1)(c) / n!
    with the Hermite recurrence H_(k+1) = 2c H_k - 2k H_(k-1)."""
    t = dtype
    c, pi = t(centre), np.arccos(t(-1))
    f = _continued_fraction(np.array([c], dtype=t))[0]
    coefficients = [np.exp(-c * c) / np.sqrt(pi) / f]
    scale = 2 / np.sqrt(pi) * np.exp(-c * c)
    h_prev, h = t(0), t(1)  # H_(-1) (unused), H_0
    factorial = t(1)
    for n in range(1, 32):
        factorial *= n
        coefficients.append((-1) ** n * scale * h / factorial)
        h_prev, h = h, 2 * c * h - 2 * (n - 1) * h_prev
    return tuple(coefficients)


def _erfc_taylor_sum(v: np.ndarray, centre: float) -> np.ndarray:
    """erfc(v) for |v - centre| <= 1/4 by its Taylor series about `centre`."""
    h = v - v.dtype.type(centre)
    total = np.zeros_like(v)
    for a in reversed(_erfc_taylor(v.dtype.type, centre)):
        total = total * h + a
    return total


def _by_values(compute):
    """`compute` (a function of one array) remembered for its last few inputs, by their exact
    values; each caller gets new arrays.  Why: for float64 outputs GELU's references run in
    x87 extended precision (tens of microseconds per element), and one example asks for them
    at the same x several times (the reference x Phi(x), the derivative Phi(x) + x phi(x), the
    bound's true value, each tolerance): that was half the time of `report --activation gelu
    --dtype float64`.  Keyed by a digest of the exact values (`value_digest`: dtype, shape and
    the bits), so a hit is the array a fresh computation gives."""
    cache: collections.OrderedDict[tuple, object] = collections.OrderedDict()

    @functools.wraps(compute)
    def remembered(x: np.ndarray):
        x = np.asarray(x)
        key = value_digest(x)
        found = cache.get(key)
        if found is None:
            found = cache[key] = compute(x)
            if len(cache) > 16:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return tuple(a.copy() for a in found) if isinstance(found, tuple) else found.copy()

    return remembered


@_by_values
def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x) in x's precision (float64, or x87 extended for float64 outputs): numpy has no
    erf.  -1/2 < w = x / sqrt 2 < 1: the series erf(w) = 2/sqrt(pi) e^(-w^2) sum 2^n w^(2n+1) /
    (2n+1)!! (positive terms; 1 + erf(w) loses one bit at w = -1/2).  -1 < w <= -1/2: erfc's
    Taylor series about 3/4.  Beyond: erfc by its continued fraction, with e^(-x^2/2) from an
    exact split of x, so the tail keeps its relative accuracy down to the underflow of the
    format."""
    t = x.dtype.type
    pi, rt2 = np.arccos(t(-1)), np.sqrt(t(2))
    eps = np.finfo(x.dtype).eps
    out = np.empty_like(x)
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        w = x / rt2
        near = ~((w <= -0.5) | (w >= 1))  # NaN goes here and propagates
        v = np.abs(w)
        taylor = ~near & (v < CENTRES[-1] + 0.25)
        tails = ~near & ~taylor
        wn = w[near]
        w2, term = wn * wn, wn.copy()
        total = wn.copy()
        for n in range(1, 60):  # |w| < 1: below an ulp of the sum after about 25 terms
            term = term * (2 * w2) / t(2 * n + 1)
            total = total + term
            if not np.any(np.abs(term) > eps * np.abs(total)):
                break
        out[near] = (1 + 2 / np.sqrt(pi) * np.exp(-w2) * total) / 2
        vt, erfc_t = v[taylor], np.empty(int(taylor.sum()), dtype=x.dtype)
        for centre in CENTRES:
            band = (vt >= centre - 0.25) & (vt < centre + 0.25)
            erfc_t[band] = _erfc_taylor_sum(vt[band], centre)
        out[taylor] = np.where(w[taylor] < 0, erfc_t / 2, 1 - erfc_t / 2)
        a = np.abs(x[tails])
        exponent = np.frexp(a)[1]
        hi = np.ldexp(np.round(np.ldexp(a, 26 - exponent)), exponent - 26)  # 26 bits: hi^2 exact
        gauss = np.where(a < 160, np.exp(-(hi * hi) / 2) * np.exp(-((a - hi) * (a + hi)) / 2),
                         t(0))  # e^(-160^2/2) underflows every reference type
        tail = gauss / np.sqrt(pi) / _continued_fraction(a / rt2) / 2
        out[tails] = np.where(x[tails] < 0, tail, 1 - tail)
    return out


def _tanh_argument(x):
    """sqrt(2/pi) (x + 0.044715 x^3): torch tensors in their format (with the float64
    constants, as PyTorch's kernels), numpy arrays with the constants in their precision."""
    if isinstance(x, np.ndarray):
        t = x.dtype.type
        beta, kappa = np.sqrt(t(2) / np.arccos(t(-1))), t("0.044715")
        return beta * (x + kappa * x * x * x)
    return BETA * (x + KAPPA * x * x * x)


@_by_values
def _tanh_gate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid(2u), sigmoid(-2u)) with u = sqrt(2/pi) (x + 0.044715 x^3): the tanh form's
    gate (1 + tanh u) / 2 and its complement, which the reference, the derivative and the
    backward's allowance all take."""
    with np.errstate(invalid="ignore", over="ignore"):
        u = _tanh_argument(x)
        return sigmoid(2 * u), sigmoid(-2 * u)


def reference(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    # x Phi(x); the tanh form 0.5 x (1 + tanh(u)) = x sigmoid(2u), which does not cancel for
    # x < 0.  IEEE evaluation at -inf: -inf * 0 = NaN (PyTorch's value; 0 is accepted too).
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            return x * _tanh_gate(x)[0]
        return x * normal_cdf(x)


@_by_values
def _density(x: np.ndarray) -> np.ndarray:
    t = x.dtype.type
    with np.errstate(over="ignore", under="ignore"):
        return np.exp(-x * x / 2) / np.sqrt(2 * np.arccos(t(-1)))


def first(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        if approximate == "tanh":
            s, complement = _tanh_gate(x)  # (1 + tanh u) / 2 and 1 - s = sigmoid(-2u)
            # d/dx x s(2u) = s + x * 2 s (1 - s) * du/dx
            return s + x * 2 * s * complement * BETA * (1 + 3 * KAPPA * x * x)
        return normal_cdf(x) + x * _density(x)


# f' with its limits at -inf (0) and +inf (1), where the formula gives NaN.
_first = with_limits(first, minus=0.0, plus=1.0)


def _working_precision(fmt) -> int:
    # 16-bit kernels compute in float32 (or better) and round once.
    return max(fmt.precision, 24)


def _textbook_ulps(x_ref: np.ndarray, params, fmt) -> np.ndarray:
    """Ulps allowed at x: the format's B ulps of the result, plus the absolute error of the
    textbook formula x/2 (1 + erf(x/sqrt 2)) (or 1 + tanh u) in the working precision: for
    x < 0 the sum cancels, and the gate's error of up to 2^GATE_UNITS units of the working
    precision reaches the result as |x|/2 times that (findings: PyTorch's GELU)."""
    base = 1.0 if fmt.bits == 16 else 4.0
    true = np.abs(reference(x_ref, **params))
    absolute = np.abs(x_ref) * 2.0 ** (GATE_UNITS - 1 - _working_precision(fmt))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        extra = np.nan_to_num(absolute / ulp(true, fmt), nan=0.0)
    # Past float64's range an allowance is no limit at all: say so without overflowing.
    return base + np.minimum(extra, 1e300).astype(np.float64)


_FORWARD = Bound(
    _textbook_ulps,
    "16-bit: faithful (1 ulp, evaluated in float32 or better); float32/64: 4 ulp (erf or "
    "tanh within 2 ulp, three roundings). Plus, for the cancellation of 1 + erf (1 + tanh) "
    "at x < 0 in the working precision p_w (float32 for 16-bit formats), |x|/2 times 16 "
    "units of p_w: the gate's error in vectorised kernels (PyTorch CPU float32: 9.2 units)",
    formula="B + |x| 2^(3-p_w) / ulp(f(x)); B = 1 (16-bit), 4 (float32, float64)",
)


def _cancellation(x, g, y_true, forward_error, params, fmt):
    """The backward Phi(x) + x phi(x) (tanh form likewise) sums terms of opposite sign for
    x < 0 (they cancel at gelu's minimum): up to the rounding of the larger term in the
    working precision, plus the gate's cancellation as for the forward.  The tanh form's
    backward also takes 1 - tanh^2 u from the rounded tanh u: near tanh u = -1 its error is
    the gate's (two units of the working precision) times 2, carried by x/2 du/dx."""
    unit = 2.0 ** (1 - _working_precision(fmt))
    with np.errstate(invalid="ignore", over="ignore"):
        if params.get("approximate", "none") == "tanh":
            du = BETA * (1 + 3 * KAPPA * x * x)
            gate, complement = _tanh_gate(x)
            scale = 1 + np.abs(x) * 2 * du * gate * complement
            carried = 2 * np.abs(x) * du
        else:
            scale, carried = 1 + np.abs(x) * _density(x), 0.0
        return np.abs(g) * (3 * scale + np.abs(x) + carried) * unit


def _largest(fmt) -> float:
    """The largest value of the working format (float32 for 16-bit formats)."""
    return max(fmt.max, float(np.finfo(np.float32).max))


def _cube_overflows_where_nan(x: np.ndarray, gx: np.ndarray, params, fmt) -> np.ndarray:
    """Where the tanh form's gradient gx is NaN because x^3 overflows the working format:
    |x|^3 kappa beyond its largest value (evaluated at the NaN gradients only: in extended
    precision the power is the costly part)."""
    x, gx = np.broadcast_arrays(np.asarray(x), np.asarray(gx))
    found = np.zeros(x.shape, dtype=bool)
    nan = np.isnan(gx)
    if params.get("approximate", "none") == "tanh" and nan.any():
        found[nan] = np.abs(x[nan]) ** 3 * KAPPA > _largest(fmt)
    return found


def approximations(ndim: int) -> st.SearchStrategy[str]:
    return st.sampled_from(["none", "tanh"])


SPEC = ActivationSpec(
    name="gelu",
    summary="Gaussian error linear unit x Phi(x); approximate='tanh': "
            "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
    signature="gelu(x, approximate='none')",
    entry_points=(
        EntryPoint("F.gelu", lambda x, approximate="none": F.gelu(x, approximate=approximate)),
        EntryPoint("nn.GELU", lambda x, approximate="none": nn.GELU(approximate)(x)),
    ),
    reference=reference,
    bounds={"float16": _FORWARD, "bfloat16": _FORWARD, "float32": _FORWARD,
            "float64": _FORWARD},
    params=(Param("approximate", "none", "'none' (erf form) or 'tanh'"),),
    param_strategies={"approximate": approximations},
    # Not monotone (a minimum near x = -0.75); the range's ends are irrational.
    monotone=None,
    relations=(
        odd_part_is_x("gelu"),
        Relation(text="gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
                 partner="tanh", inner=_tanh_argument, outer=lambda x, t: x / 2 * (1 + t),
                 gain=lambda x: np.abs(x) / 2,
                 applies=lambda p: p.get("approximate", "none") == "tanh"),
    ),
    # PyTorch's CPU float32 and bfloat16 kernels return NaN for +inf, and +inf for x above
    # half float32's largest value (2x overflows inside; findings); the limit at -inf is 0
    # where IEEE evaluation gives NaN.
    accepted=lambda x, y, p: (((x == -np.inf) & (y == 0)) | ((x == np.inf) & np.isnan(y))
                              | ((y == np.inf) & (x > F32_HALF_MAX) & (x <= F32_MAX))),
    derivative=Derivative(
        vjp=lambda x, g, approximate="none": g * _first(x, approximate),
        first=_first,
        bounds=every_dtype(Bound(4.0, "Phi(x) + x phi(x) from the saved input: the gate "
                                      "within 2 ulp and two roundings; plus the cancellation "
                                      "term for x < 0")),
        extra=_cancellation,
        # PyTorch's tanh-form backward evaluates x^3 and 3 kappa x^2 in the format: they
        # overflow for |x| beyond the cube root of the largest value, and the gradient is NaN
        # there (findings) where the true derivative is 0 or 1.
        # And NaN at +-inf: Phi(x) + x phi(x) evaluates inf * 0 there (findings B10).
        accepted=lambda x, gx, p, fmt: (_cube_overflows_where_nan(x, gx, p, fmt)
                                        | nan_at_infinity(x, gx)),
    ),
    thresholds=lambda fmt: (0.0, -0.7517915246, *sigmoid_thresholds(fmt)),
    conventions=(
        "NaN propagates.",
        "gelu(-inf) is NaN (IEEE: -inf * 0, PyTorch) or 0 (the limit); both are accepted.",
        "gelu(+inf) may be NaN, and gelu(x) for x above half float32's largest value may be "
        "+inf (PyTorch's CPU float32 and bfloat16 kernels); the true values are accepted.",
        "Results whose true value is subnormal may be flushed to zero (default policy).",
    ),
)
