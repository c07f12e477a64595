"""Names the command line and `actverify check`'s supervising parent use, written out: the
modules that define them import torch, which those processes leave to their workers
(tests/test_cli.py keeps each equal to its source)."""

from __future__ import annotations

DTYPE_NAMES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")  # dtypes.py
POLICY_NAMES: tuple[str, ...] = ("default", "strict")  # accuracy.POLICIES
KINKS: tuple[str, ...] = ("pytorch", "math")  # accuracy.KINKS
