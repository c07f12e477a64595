"""Exhaustive sweeps (actverify/sweep/): planted bugs are found at their exact input, the ULP
figures agree with mpmath, and PyTorch's builtins pass the default policy on every float16 and
bfloat16 input, forward and backward."""

from __future__ import annotations

import json
import math
import os

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import actverify.sweep as sweep
from actverify.accuracy import STRICT, reference_uncertainty
from actverify.dtypes import float_format
from actverify.spec import registry
from actverify.sweep import (HIST_LABELS, N_BINS, bits_of_key, builtin_sweep_targets,
                             order_key, parse_bit_range, plan_inputs, run_sweep,
                             sweep_elementwise, sweep_softmax, write_report)
from actverify.sweep import driver, fused, plan
from actverify.targets import target_from_callable

F16, BF16, F32 = (float_format(n) for n in ("float16", "bfloat16", "float32"))
ELEMENTWISE = [name for name, spec in registry().items() if spec.elementwise]


def _bits(x: torch.Tensor, fmt) -> torch.Tensor:
    return fmt.bits_of(x)


# ------------------------------------------------------------------------------ planted bugs

PLANTED = 0x3C00  # float16 1.0


def sigmoid_one_wrong_value(x: torch.Tensor) -> torch.Tensor:
    """torch.sigmoid, except at one float16 bit pattern, where it is 8 ulps high."""
    y = torch.sigmoid(x)
    hit = _bits(x, F16) == PLANTED
    return torch.where(hit, (y.double() + 8 * 2.0**-11).to(x.dtype), y)


SEAM = 4.0  # sigmoid(3.998...) and sigmoid(4.0) fall in the same float16 output interval


def sigmoid_faithful_with_seam(x: torch.Tensor) -> torch.Tensor:
    """Faithfully rounded sigmoid (within 1 ulp everywhere: the accuracy bound holds) that
    rounds up below x = 4 and down from x = 4 on: the output drops by one ulp at the seam."""
    t = torch.sigmoid(x.double())
    near = t.to(x.dtype)
    bits = _bits(near, F16)
    nd = near.double()
    up = torch.where(nd < t, F16.from_bits(bits + 1), near)
    down = torch.where(nd > t, F16.from_bits(bits - 1), near)
    return torch.where(x < SEAM, up, down)


def test_a_single_wrong_float16_value_is_found_at_its_exact_input():
    target = target_from_callable(sigmoid_one_wrong_value, "sigmoid", name="planted")
    r = sweep_elementwise(target, fmt="float16")
    assert not r.ok
    fwd = r.passes["forward"]
    assert fwd.n == 65536 and fwd.policy_violations == 1
    assert [e["bits"] for e in fwd.examples] == ["0x3c00"]
    assert fwd.examples[0]["x"] == 1.0 and fwd.examples[0]["ulp_error"] > 7
    assert fwd.max_at["bits"] == "0x3c00"
    # y + c has sigmoid's derivative: the backward is right everywhere, and is judged so
    for name in ("backward g=1", "backward g=random"):
        assert r.passes[name].policy_violations == 0, name
    diff = r.checks["differs_from_canonical"]
    assert diff.violations == 1 and diff.examples[0]["bits"] == "0x3c00"
    assert not diff.counts_for_ok
    # the per-input arrays say the same
    assert int(np.argmax(np.nan_to_num(r.arrays["forward"], posinf=0))) == \
        int(np.flatnonzero(r.arrays["x"] == 1.0)[0])


def test_a_non_monotone_seam_is_found_although_every_value_is_within_the_bound():
    target = target_from_callable(sigmoid_faithful_with_seam, "sigmoid", name="seam")
    r = sweep_elementwise(target, fmt="float16", backward=False)
    assert r.passes["forward"].policy_violations == 0  # faithful: within the 1-ulp bound
    assert r.passes["forward"].max_ulp <= 1
    mono = r.checks["monotonic"]
    assert mono.violations == 1, mono.examples
    (pair,) = mono.examples
    assert (pair["bits_lo"], pair["bits_hi"]) == ("0x43ff", "0x4400")
    assert pair["x_hi"] == SEAM and pair["y_hi"] < pair["y_lo"]
    assert not r.ok


def test_planted_float32_values_are_found_by_both_engines(monkeypatch):
    """Both the exact engine and the fused pass (run eagerly here) find wrong values in a
    strided float32 sweep (one inside a chunk of the fused pass, one on a chunk boundary), and
    agree with each other on every figure."""
    planted = (0x40400000, 0x40000000)  # 3.0, and 2.0: the first input of a fused chunk

    def kernel(x):
        y = torch.sigmoid(x)
        bits = _bits(x, F32)
        hit = (bits == planted[0]) | (bits == planted[1])
        return torch.where(hit, torch.full_like(y, 0.5), y)

    target = target_from_callable(kernel, "sigmoid", name="planted32")
    monkeypatch.setattr(driver, "FAST_CHUNK", 1 << 16)
    kw = dict(fmt="float32", backward=False, bit_range=(0, 1 << 32), stride=1 << 14)
    exact = sweep_elementwise(target, engine="exact", **kw)
    fast = sweep_elementwise(target, engine="fast", use_compile=False, **kw)
    assert fast.engine == "fused-eager" and exact.engine == "exact"
    for r in (exact, fast):
        assert r.n_inputs == 1 << 18
        assert r.passes["forward"].policy_violations == 2
        assert ({e["bits"] for e in r.passes["forward"].examples}
                == {"0x40400000", "0x40000000"})
        assert r.checks["differs_from_canonical"].violations == 2
    a, b = exact.passes["forward"], fast.passes["forward"]
    assert a.max_ulp == pytest.approx(b.max_ulp, rel=1e-9)
    assert a.max_at["bits"] == b.max_at["bits"]
    assert a.excused == b.excused
    # The engines use different float64 references (numpy's and torch's exp), which may
    # differ in a last bit: a result may change bins only if its error is within twice the
    # reference's uncertainty u of a bin edge (near x = 0, sigmoid's errors sit within 1e-8
    # ulp of multiples of 0.5).
    u = reference_uncertainty(F32)
    err = exact.arrays["forward"]
    edges = np.asarray(sweep.HIST_EDGES) + u
    near = int((np.min(np.abs(err[:, None] - edges[None, :]), axis=1) <= 2 * u).sum())
    assert sum(a.histogram) == sum(b.histogram) == 1 << 18
    assert sum(abs(p - q) for p, q in zip(a.histogram, b.histogram)) <= 2 * near
    assert abs(a.not_correctly_rounded - b.not_correctly_rounded) <= near
    assert a.histogram[4:] == b.histogram[4:]  # nothing sits near 2, 4, ... ulps
    # 0.5 at x = 2 and x = 3 also breaks monotonicity twice (once across the fused chunks'
    # boundary) and the symmetry at +-2 and +-3
    for name, count in (("monotonic", 2), ("point_symmetry", 4)):
        assert exact.checks[name].violations == fast.checks[name].violations == count
        assert exact.checks[name].n == fast.checks[name].n
    for r in (exact, fast):
        assert ({e["bits_hi"] for e in r.checks["monotonic"].examples}
                == {"0x40400000", "0x40000000"})
        assert ({e["bits"] for e in r.checks["point_symmetry"].examples}
                == {"0x40400000", "0xc0400000", "0x40000000", "0xc0000000"})


@pytest.mark.slow
def test_the_compiled_fused_pass_matches_the_exact_engine(monkeypatch, request):
    """torch.compile takes 5-20 s on 2 cores: run with `-m slow` or ACTVERIFY_SLOW=1 (every
    fused sweep also checks itself against the exact engine before it starts)."""
    if "slow" not in (request.config.getoption("markexpr") or "") and not os.environ.get(
            "ACTVERIFY_SLOW"):
        pytest.skip("compiles a kernel; run with -m slow or ACTVERIFY_SLOW=1")
    monkeypatch.setattr(driver, "FAST_CHUNK", 1 << 16)
    target = builtin_sweep_targets(["tanh"])[0]
    kw = dict(fmt="float32", backward=False, bit_range=(0x3C000000, 0x3C000000 + (1 << 17)))
    fast = sweep_elementwise(target, engine="fast", use_compile=True, **kw)
    exact = sweep_elementwise(target, engine="exact", **kw)
    if fast.engine != "fused-compiled":
        pytest.skip(f"torch.compile unavailable here ({fast.notes})")
    assert fast.passes["forward"].max_ulp == pytest.approx(exact.passes["forward"].max_ulp)
    assert (fast.passes["forward"].not_correctly_rounded
            == exact.passes["forward"].not_correctly_rounded)
    assert fast.ok and exact.ok
    # the compiled pair screen of mirrored chunks, with bugs around the pairs
    target = target_from_callable(sigmoid_planted_around_the_pairs, "sigmoid", name="pairs")
    kw = dict(fmt="float32", backward=False, bit_range=(0, 1 << 32), stride=1 << 12)
    paired = sweep_elementwise(target, engine="fast", use_compile=True, **kw)
    exact = sweep_elementwise(target, engine="exact", **kw)
    assert paired.engine == "fused-compiled" and not paired.notes
    assert _figures(paired) == _figures(exact)
    _a_nan_result_is_flagged_by_the_screens(use_compile=True)


def test_a_planted_softmax_bug_is_found_with_its_row():
    def kernel(x, dim=-1):
        y = F.softmax(x, dim)
        hit = (_bits(x, F16) == 0x4500).any(dim=dim, keepdim=True)  # rows holding 5.0
        return torch.where(hit, y * 1.01, y)

    target = target_from_callable(kernel, "softmax", name="planted_softmax")
    r = sweep_softmax(target, fmt="float16", patterns=("spike",), dims=(-1,), backward=False)
    p = r.passes["forward spike dim=-1"]
    assert not r.ok and p.policy_violations > 0
    assert all(5.0 in e["row"] for e in p.examples)
    assert r.checks["sums_to_one spike dim=-1"].violations >= 1


# ------------------------------------------------------------------------------ figures


def _mp_ulp_error(y: float, true: mpmath.mpf, fmt) -> float:
    if true == 0:
        exponent = fmt.emin
    else:
        exponent = max(int(mpmath.floor(mpmath.log(abs(true), 2))), fmt.emin)
    exponent = min(exponent, fmt.emax)
    return float(abs(mpmath.mpf(y) - true) / mpmath.mpf(2) ** (exponent - fmt.precision + 1))


@pytest.mark.parametrize("activation,dtype", [("sigmoid", "float16"), ("tanh", "bfloat16"),
                                              ("sigmoid", "float32")])
def test_ulp_figures_agree_with_mpmath(activation, dtype):
    fmt = float_format(dtype)
    target = builtin_sweep_targets([activation])[0]
    bit_range = (0x3E000000, 0x3E000000 + (1 << 16)) if fmt.bits == 32 else None
    r = sweep_elementwise(target, fmt=fmt, backward=False, bit_range=bit_range)
    x, err = r.arrays["x"], r.arrays["forward"]
    finite = np.flatnonzero(np.isfinite(x) & (np.abs(x) < 30))
    rng = np.random.default_rng(0)
    picks = list(rng.choice(finite, 50, replace=False))
    picks.append(int(np.flatnonzero(x == r.passes["forward"].max_at["x"])[0]))
    y = target.fn(torch.from_numpy(x[picks]).to(fmt.dtype)).double().numpy()
    mpmath.mp.prec = 200
    f = {"sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)), "tanh": mpmath.tanh}[activation]
    for i, yi in zip(picks, y):
        want = _mp_ulp_error(float(yi), f(mpmath.mpf(float(x[i]))), fmt)
        # within the float64 reference's own uncertainty (2^-27 ulp for float32)
        assert err[i] == pytest.approx(want, abs=reference_uncertainty(fmt)), (x[i], yi)
    worst = picks[-1]
    assert r.passes["forward"].max_ulp == pytest.approx(err[worst], rel=1e-12)


def test_histogram_bins_and_labels():
    u = reference_uncertainty(F32)
    e = np.array([0.0, u, 2 * u, 0.25, 0.5, 0.5 + u / 2, 0.5000001, 1.0, 1.5, 2.0, 3.0, 2.0**30,
                  2.0**31, math.inf])
    assert sweep.histogram_bins(e, F32).tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 32, 33,
                                                      34]
    assert len(HIST_LABELS) == N_BINS
    fast = fused._fast_bins(torch.from_numpy(e), reference_uncertainty(F32))
    assert fast.tolist() == sweep.histogram_bins(e, F32).tolist()


# ------------------------------------------------------------------------------ PyTorch


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("activation", ELEMENTWISE)
def test_pytorch_builtins_pass_the_default_policy_exhaustively(activation, dtype):
    target = builtin_sweep_targets([activation])[0]
    r = sweep_elementwise(target, fmt=dtype)
    assert r.n_inputs == 65536 and r.passes["forward"].n == 65536
    assert r.ok, r.summary()
    spec = registry()[activation]
    if spec.derivative is not None:
        assert r.passes["backward g=1"].n == 65536 - (2046 if dtype == "float16" else 254)
    assert r.checks["monotonic"].checked == spec.is_monotone(spec.default_params())
    assert r.checks["point_symmetry"].checked == (spec.point_symmetry is not None)
    assert all(s["ok"] for s in r.specials)


def test_a_second_builtin_entry_point_matches_the_canonical_kernel_bitwise():
    from actverify.targets import builtin_targets

    t = builtin_targets(registry()["tanh"])[1]  # torch.tanh, compared with F.tanh
    r = sweep_elementwise(t, fmt="bfloat16")
    assert r.checks["differs_from_canonical"].checked
    assert r.checks["differs_from_canonical"].violations == 0
    assert r.checks["backward g=1 differs_from_canonical"].violations == 0


def test_pytorch_softmax_passes_on_every_float16_value():
    target = builtin_sweep_targets(["softmax"])[0]
    r = sweep_softmax(target, fmt="float16", dims=(-1,), row_length=8)
    assert r.ok, r.summary()
    assert {p.split(" dim")[0] for p in r.passes} >= {"forward spike", "forward background",
                                                     "forward consecutive"}
    assert all(s["ok"] for s in r.specials)


def test_strict_policy_reports_what_is_not_correctly_rounded():
    target = builtin_sweep_targets(["sigmoid"])[0]
    r = sweep_elementwise(target, fmt="float16", backward=False, policy=STRICT)
    fwd = r.passes["forward"]
    assert fwd.policy_violations == fwd.not_correctly_rounded > 0  # double rounding
    assert all(e["ulp_error"] > 0.5 for e in fwd.examples)


# ------------------------------------------------------------------------------ inputs


def test_order_keys_sort_like_values_and_invert():
    bits = torch.arange(65536, dtype=torch.int64)
    keys = order_key(bits, F16)
    assert torch.equal(bits_of_key(keys, F16), bits)
    assert torch.equal(torch.sort(keys).values, bits)
    x = F16.from_bits(bits_of_key(bits, F16)).double()  # inputs in key order
    ok = ~torch.isnan(x)
    xs = x[ok]
    assert bool((xs[1:] >= xs[:-1]).all())


def test_bit_ranges_strides_and_the_ci_subset():
    ks = plan_inputs(F32, bit_range=(0x7FFFFF00, 0x80000100), stride=16)
    keys = ks.all_keys()
    assert ks.count == keys.numel() == 32
    assert bool((keys[1:] > keys[:-1]).all())  # value order across the sign boundary
    spec = registry()["sigmoid"]
    ci = plan_inputs(F32, spec=spec)
    assert ci.count > (1 << 20)
    around_zero = plan._float_to_key(0.0, F32)
    k = ci.all_keys()
    assert bool(((k >= around_zero - 4096) & (k <= around_zero + 4096)).sum() == 8193)
    assert plan_inputs(F16).count == 65536
    assert parse_bit_range("0x3f800000:0x40000000") == (0x3F800000, 0x40000000)


def test_a_float32_sweep_across_the_sign_checks_monotonicity_there():
    def kernel(x):  # a kink at zero: f(-0) = 1e-3 > f(+tiny)
        return torch.where(torch.signbit(x) & (x == 0), torch.full_like(x, 1e-3), F.relu(x))

    target = target_from_callable(kernel, "relu", name="minus_zero")
    # +0, every 2^27-th positive pattern, and -0 (0x80000000 = 16 * 2^27)
    r = sweep_elementwise(target, fmt="float32", bit_range=(0, 0x80000001), stride=1 << 27,
                          backward=False)
    assert r.n_inputs == 17
    assert r.checks["monotonic"].violations == 1
    (pair,) = r.checks["monotonic"].examples
    assert (pair["bits_lo"], pair["bits_hi"]) == ("0x80000000", "0x00000000")


# ------------------------------------------------------------------------------ reports


def test_run_sweep_writes_html_and_markdown_reports(tmp_path):
    targets = builtin_sweep_targets(["relu", "sigmoid"])
    planted = target_from_callable(sigmoid_one_wrong_value, "sigmoid", name="planted")
    results = run_sweep(targets=[*targets, planted], dtypes=["float16", "float64"],
                        device="cpu", bit_range=None, out_dir=tmp_path / "html",
                        all_float32=False, policy="default")
    assert [r.ok for r in results] == [True, True, True, True, False, True]
    assert results[1].skipped  # float64 is not swept
    html = (tmp_path / "html" / "sweep.html").read_text()
    assert html.count("data:image/png;base64,") >= 6 and "0x3c00" in html
    data = json.loads((tmp_path / "html" / "sweep.json").read_text())
    assert data["ok"] is False and len(data["results"]) == 6
    assert data["results"][4]["passes"]["forward"]["examples"][0]["bits"] == "0x3c00"
    md = write_report(results[:1], tmp_path / "md", fmt="md")
    assert "![" in md.read_text() and list((tmp_path / "md" / "plots").glob("*.png"))
    json.loads(results[0].to_json())  # strict JSON: no NaN / inf literals


# ------------------------------------------------------------- one verdict, property or sweep


class _LeakyAveragedKink(torch.autograd.Function):
    """leaky_relu whose gradient at 0 is (1 + slope) / 2: a subgradient, not PyTorch's slope."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return F.leaky_relu(x, slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # In float64, rounded once: a slope rounded to a 16-bit g's format first is a second
        # rounding (up to 1.06 ulp where 1 is allowed), a bug this test is not about.
        wide = g.double()
        at_kink = torch.full_like(wide, (1 + ctx.slope) / 2)
        d = torch.where(x > 0, torch.ones_like(wide),
                        torch.where(x < 0, torch.full_like(wide, ctx.slope), at_kink))
        return (wide * d).to(g.dtype), None


def leaky_averaged_kink(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    return _LeakyAveragedKink.apply(x, negative_slope)


@pytest.mark.parametrize("kink", ["pytorch", "math"])
def test_a_property_and_a_sweep_give_one_verdict_at_a_kink(kink: str) -> None:
    """Both judge gradients at a kink with the same function (derivatives.
    at_kink_within_subdifferential): a subgradient at 0 is a violation under PyTorch's
    convention and accepted under kink='math', by the property and by the sweep alike."""
    from hypothesis import HealthCheck, Phase, settings

    from actverify.accuracy import policy_named
    from actverify.properties import Subject, all_properties
    from actverify.runner import run_property

    policy = policy_named("default", kink=kink)
    target = target_from_callable(leaky_averaged_kink, "leaky_relu", name="averaged_kink")
    search = settings(max_examples=30, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])

    outcome = run_property(all_properties()["gradient_accuracy"],
                           Subject(target, float_format("float16"), "cpu", policy),
                           settings=search)
    swept = sweep_elementwise(target, fmt="float16", policy=policy,
                              params={"negative_slope": 0.25})

    holds = kink == "math"
    assert (outcome.status == "passed") == holds, outcome.failure
    assert (swept.passes["backward g=1"].policy_violations == 0) == holds


def test_fused_screen_and_exact_engine_agree_on_a_bug_only_monotonicity_sees():
    """A kernel within its accuracy bound everywhere that steps down once inside a chunk and
    once on a chunk boundary: the fused pass's screen flags those two chunks and passes a
    clean third, and its verdicts (violations, checks, counts) are the exact engine's."""
    twenty = 0x41A00000  # 20.0: sigmoid rounds to 1; 1 - 2^-24 is within 1 ulp of the truth
    planted = (twenty, twenty + 100)

    def kernel(x):
        y = torch.sigmoid(x)
        bits = _bits(x, F32)
        hit = (bits == planted[0]) | (bits == planted[1])
        return torch.where(hit, torch.full_like(y, 1 - 2.0**-24), y)

    target = target_from_callable(kernel, "sigmoid", name="planted_step_down")
    kw = dict(fmt="float32", backward=False, bit_range=(twenty - (1 << 16), twenty + (1 << 17)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(driver, "FAST_CHUNK", 1 << 16)  # three full chunks, the last one clean
        fast = sweep_elementwise(target, engine="fast", use_compile=False, **kw)
    exact = sweep_elementwise(target, engine="exact", **kw)
    assert fast.engine == "fused-eager" and not fast.notes
    for r in (exact, fast):
        assert r.passes["forward"].policy_violations == 0
        assert r.checks["monotonic"].violations == 2 and not r.ok
        assert {e["bits_hi"] for e in r.checks["monotonic"].examples} == {
            f"0x{b:08x}" for b in planted}
    for name in ("monotonic", "point_symmetry", "differs_from_canonical"):
        assert (fast.checks[name].n, fast.checks[name].violations) == (
            exact.checks[name].n, exact.checks[name].violations), name
    a, b = exact.passes["forward"], fast.passes["forward"]
    assert (a.n, a.excused, a.not_correctly_rounded) == (b.n, b.excused, b.not_correctly_rounded)
    assert a.max_ulp == pytest.approx(b.max_ulp, rel=1e-9)


def test_sixteen_bit_sweeps_cover_every_mode_a_parameter_names():
    """GELU's approximate='tanh' is a function of its own: run_sweep covers it on 16-bit
    formats (taken from the spec's parameter, not from the activation's name), and judges its
    backward as the gradient property does (PyTorch's NaN gradients where x^3 overflows are
    a convention the spec states)."""
    found = run_sweep(targets=builtin_sweep_targets(["gelu", "leaky_relu"]), dtypes=["bfloat16"],
                      device="cpu")
    assert [(r.activation, r.params) for r in found] == [
        ("gelu", {"approximate": "none"}), ("gelu", {"approximate": "tanh"}),
        ("leaky_relu", {"negative_slope": 0.01})]
    assert all(r.ok for r in found), [r.summary() for r in found]
    assert "[gelu approximate=tanh]" in found[1].summary()


# ------------------------------------------------------------------------------ mirrored pairs

MINUS_THREE, TWO, FAR, MINUS_FAR = 0xC0400000, 0x40000000, 0x50000000, 0xD0000000
INSIDE, MINUS_INSIDE = 0x50800000, 0xE0800000  # inside the positive / negative half of a pair


def sigmoid_planted_around_the_pairs(x: torch.Tensor) -> torch.Tensor:
    """torch.sigmoid with bugs where a mirrored sweep (every 2^12-th float32 pattern, halves
    of 2^16 inputs) pairs its chunks: a wrong value on the negative half only (-3.0), one at
    the first input of a positive half (2.0, its mirror -2.0 the last of its negative half),
    f(-0) one ulp above f(+0) (only the pair across the seam at zero sees it), and two steps
    down across the boundaries between pairs within the bound, one on each side (1 - 2^-24
    at 2^33 after 1.0 below it, 2^-149 at -2^33 above 0.0 next to it), and two more inside
    the halves of two other pairs, one on each side, which only the pair screen's
    monotonicity test over that half can flag."""
    y = torch.sigmoid(x)
    bits = _bits(x, F32)
    y = torch.where((bits == MINUS_THREE) | (bits == TWO), torch.full_like(y, 0.5), y)
    y = torch.where(bits == 0x80000000, torch.full_like(y, 0.5 + 2.0**-24), y)
    y = torch.where((bits == FAR) | (bits == INSIDE), torch.full_like(y, 1 - 2.0**-24), y)
    return torch.where((bits == MINUS_FAR) | (bits == MINUS_INSIDE),
                       torch.full_like(y, 2.0**-149), y)


def _figures(r) -> dict:
    """Every figure of a sweep that the engines must agree on exactly."""
    fwd = r.passes["forward"]
    return {"n": fwd.n, "violations": fwd.policy_violations, "excused": fwd.excused,
            "examples": sorted(e["bits"] for e in fwd.examples), "max_at": fwd.max_at["bits"],
            # the engines describe a difference from the canonical kernel with other fields
            "checks": {name: (c.n, c.violations, c.examples if c.counts_for_ok
                              else [e["bits"] for e in c.examples])
                       for name, c in r.checks.items()}}


def test_mirrored_pairs_agree_with_the_unpaired_pass_and_the_exact_engine(monkeypatch):
    """A whole-space sweep with the symmetry check visits pairs of mirrored chunks (a kernel
    call per half, f(-x) the mirror half's own output): it finds the bugs planted on the negative half only, at a chunk's
    first input, at the seam at zero and across the boundaries between pairs on both sides,
    with the same counts, maxima and examples as the fused pass over chunks in value order
    and as the exact engine; and the kernel sees every swept input exactly once."""
    calls: list[torch.Tensor] = []

    def kernel(x):
        calls.append(_bits(x, F32).clone())
        return sigmoid_planted_around_the_pairs(x)

    target = target_from_callable(kernel, "sigmoid", name="planted_pairs")
    monkeypatch.setattr(driver, "FAST_CHUNK", 1 << 16)
    # without the bitwise comparison with torch.sigmoid, which would flag every planted value
    # by itself: the screens' own tests have to find them
    kw = dict(fmt="float32", backward=False, bit_range=(0, 1 << 32), stride=1 << 12,
              checks=("monotonic", "point_symmetry"))
    with monkeypatch.context() as mp:
        mp.setattr(driver, "_validate_fast", lambda engine, state: None)  # calls of its own
        paired = sweep_elementwise(target, engine="fast", use_compile=False, **kw)
    # 2^20 inputs in 8 pairs of halves of 2^16, one call per half (then `finish` calls the
    # kernel again on the chunks whose worst input it locates)
    pair_calls = calls[:16]
    assert [c.numel() for c in pair_calls] == [1 << 16] * 16
    swept = torch.sort(torch.cat(pair_calls).to(torch.int64) & 0xFFFFFFFF).values
    assert torch.equal(swept, torch.arange(0, 1 << 32, 1 << 12))  # each exactly once
    with monkeypatch.context() as mp:
        mp.setattr(plan._KeySet, "mirrored", lambda self: False)
        unpaired = sweep_elementwise(target, engine="fast", use_compile=False, **kw)
    exact = sweep_elementwise(target, engine="exact", **kw)
    assert paired.engine == unpaired.engine == "fused-eager" and not paired.notes
    fig = _figures(paired)
    assert fig["violations"] == 2 and fig["examples"] == ["0x40000000", "0xc0400000"]
    mono, sym = fig["checks"]["monotonic"], fig["checks"]["point_symmetry"]
    assert mono[1] == 7 and sym[1] == 4
    assert {(e["bits_lo"], e["bits_hi"]) for e in mono[2]} == {
        ("0xc0400000", "0xc03ff000"), ("0x3ffff000", "0x40000000"), ("0x80000000", "0x00000000"),
        ("0x4ffff000", "0x50000000"), ("0xd0000000", "0xcffff000"),
        ("0x507ff000", "0x50800000"), ("0xe0800000", "0xe07ff000")}
    assert {e["bits"] for e in sym[2]} == {"0xc0400000", "0x40400000", "0x40000000",
                                           "0xc0000000"}
    assert fig == _figures(unpaired) == _figures(exact)
    a, b = paired.passes["forward"], unpaired.passes["forward"]
    assert (a.max_ulp, a.histogram, a.not_correctly_rounded, a.worst) == (
        b.max_ulp, b.histogram, b.not_correctly_rounded, b.worst)
    assert np.array_equal(paired.arrays["chunk_max"], unpaired.arrays["chunk_max"])


MINUS_THREE_QUARTERS = 0xBF400000  # inside the negative half of a pair


def sigmoid_nan_at_a_finite_input(x: torch.Tensor) -> torch.Tensor:
    """torch.sigmoid with NaN at one finite input, -0.75, in the middle of a chunk."""
    y = torch.sigmoid(x)
    return torch.where(_bits(x, F32) == MINUS_THREE_QUARTERS, torch.full_like(y, math.nan), y)


def _a_nan_result_is_flagged_by_the_screens(*, use_compile: bool) -> None:
    """The screens flag a NaN result through their NaN-propagating maxima (no test of their
    own): accuracy only, where the chunk screen's error maximum alone can see it, and with
    every check, through the pair screen; both give the exact engine's figures."""
    target = target_from_callable(sigmoid_nan_at_a_finite_input, "sigmoid", name="nan_result")
    for checks in ((), None):
        kw = dict(fmt="float32", backward=False, bit_range=(0, 1 << 32), stride=1 << 12,
                  checks=checks)
        fast = sweep_elementwise(target, engine="fast", use_compile=use_compile, **kw)
        exact = sweep_elementwise(target, engine="exact", **kw)
        assert not fast.notes and fast.engine.startswith("fused")
        fig = _figures(fast)
        assert fig["violations"] == 1 and fig["examples"] == [f"{MINUS_THREE_QUARTERS:#010x}"]
        assert fast.passes["forward"].max_ulp == math.inf  # the NaN result, as exact gives it
        # as JSON: the check examples hold f(-x) = NaN, and NaN != NaN in a dict comparison
        assert json.dumps(fig, sort_keys=True) == json.dumps(_figures(exact), sort_keys=True)


def test_a_nan_result_is_flagged_by_the_screens(monkeypatch):
    monkeypatch.setattr(driver, "FAST_CHUNK", 1 << 16)  # full chunks: the screens run
    _a_nan_result_is_flagged_by_the_screens(use_compile=False)


def test_mirrored_pairs_are_only_for_mirrored_input_sets():
    """Pairs need -x swept with x: the whole space with a stride dividing 2^31, not a range
    on one side, a range across zero that is not symmetric, or the CI subset."""
    assert plan_inputs(F32, all_float32=True).mirrored()
    assert plan_inputs(F32, bit_range=(0, 1 << 32), stride=1 << 12).mirrored()
    assert plan_inputs(F16).mirrored()
    assert not plan_inputs(F32, bit_range=(0, 1 << 32), stride=3).mirrored()
    assert not plan_inputs(F32, bit_range=(0, 0x80000001)).mirrored()
    assert not plan_inputs(F32, bit_range=(0x3F000000, 0x40000000)).mirrored()
    assert not plan_inputs(F32, spec=registry()["sigmoid"]).mirrored()
    pairs = list(plan_inputs(F16).mirror_chunks(1 << 14))
    assert [(neg[2], pos[2]) for neg, pos in pairs] == [(1 << 14, 1 << 14)] * 2
    (neg, pos), _ = pairs
    assert bits_of_key(neg[0] + (neg[2] - 1) * neg[1], F16) == 0x8000  # -0 meets +0
    assert bits_of_key(pos[0], F16) == 0
