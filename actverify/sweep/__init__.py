"""Exhaustive sweeps: every bit pattern of a 16-bit format, or chosen ranges of float32.

Hypothesis finds bugs by searching; a sweep proves the absence of some by enumeration.  For
float16 and bfloat16 there are only 65,536 inputs, so the target is evaluated on all of them,
forward and backward, and judged by the functions the property suite's verdicts come from
(`actverify.judgement`: `judge`, `judge_gradient`, `point_symmetry_bad`): a sweep and a
property can never disagree about what counts as wrong.  On top of the per-input verdicts a
sweep reports what only the whole input space shows: the maximum error and where it is
reached, a histogram of errors, monotonicity over every adjacent pair of the sorted inputs,
the point-symmetry identity at every input, and every input whose result differs bit for bit
from PyTorch's canonical kernel.

float32 has 2^32 inputs.  `bit_range` and `stride` choose a subset; by default a CI subset (a
stride of 2^12 through the whole space plus +-2^12 bit patterns around each of the spec's
thresholds); `all_float32=True` goes through all of them in chunks on all cores.  Large float32
sweeps use a fused pass: the kernel runs eagerly (that is what users call), and the float64
reference, the ULP error (integer bit arithmetic on the reference's exponent), the verdicts and
the running reductions are one `torch.compile`d function.  Inputs the fused pass flags are
judged again by the library's own `compare`, so counts of violations always come from the
library's rules.  See docs/sweep.md.

Softmax is not element-wise; `sweep_softmax` builds rows from every value of a 16-bit format in
three patterns (docs/sweep.md says exactly which).

The package follows a sweep's flow, one module per step:

    plan        which inputs: key space in value order, bit ranges, the CI subset, chunking,
                the parameter sets a spec's sweep covers
    exact       the exact engine: every input judged by the library's `compare`
    fused       the fused float32 engine (one compiled pass per chunk)
    softmax     softmax rows built from every value of a 16-bit format
    histogram   ULP-error bins
    accumulate  per-pass and per-check accumulators, chunk by chunk
    checks      whole-space checks: monotonicity carry, point symmetry, bitwise diff
    results     SweepResult and its JSON form
    report      Markdown and HTML (a jinja2 template) with plots
    driver      run_sweep, sweep_elementwise, sweep_softmax, progress
"""

from actverify.sweep.driver import (builtin_sweep_targets, run_sweep, sweep_elementwise,
                                    sweep_softmax)
from actverify.sweep.histogram import HIST_EDGES, HIST_LABELS, N_BINS, histogram, histogram_bins
from actverify.sweep.plan import bits_of_key, order_key, param_sets, parse_bit_range, plan_inputs
from actverify.sweep.report import write_report
from actverify.sweep.results import CheckStats, PassStats, SweepResult
from actverify.sweep.softmax import SOFTMAX_PATTERNS, softmax_rows

__all__ = ["sweep_elementwise", "sweep_softmax", "run_sweep", "write_report", "SweepResult",
           "PassStats", "CheckStats", "builtin_sweep_targets", "parse_bit_range",
           "plan_inputs", "param_sets", "order_key", "bits_of_key", "histogram", "histogram_bins",
           "HIST_EDGES", "HIST_LABELS", "N_BINS", "SOFTMAX_PATTERNS", "softmax_rows"]
