"""ULP-error histogram bins, shared by both engines and the report."""

from __future__ import annotations

import numpy as np

from actverify.accuracy import reference_uncertainty
from actverify.dtypes import FloatFormat


HIST_EDGES: tuple[float, ...] = (0.0, 0.5) + tuple(2.0**k for k in range(0, 31))
N_BINS = len(HIST_EDGES) + 2  # 35
HIST_LABELS: tuple[str, ...] = (
    ("0", "(0, 0.5]", "(0.5, 1]")
    + tuple(f"({2**(k - 1)}, {2**k}]" if k <= 10 else f"(2^{k - 1}, 2^{k}]"
            for k in range(1, 31))
    + ("> 2^30", "inf")
)


def histogram_bins(err: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Bin index (0 .. N_BINS-1) of each ULP error, see HIST_EDGES."""
    err = np.asarray(err, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        shifted = np.maximum(err - reference_uncertainty(fmt), 0.0)
    bins = np.searchsorted(np.asarray(HIST_EDGES), shifted, side="left")
    return np.where(np.isinf(err), N_BINS - 1, bins)


def histogram(err: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    return np.bincount(histogram_bins(err, fmt).ravel(), minlength=N_BINS)[:N_BINS
                                                                             ].astype(np.int64)
