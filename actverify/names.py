"""Names the command line and `actverify check`'s supervising parent use, written out: the
modules that define them import torch, which those processes leave to their workers
(tests/test_cli.py keeps each equal to its source)."""

from __future__ import annotations

from actverify.errors import UsageError

DTYPE_NAMES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")  # dtypes.py
POLICY_NAMES: tuple[str, ...] = ("default", "strict")  # accuracy.POLICIES
KINKS: tuple[str, ...] = ("pytorch", "math")  # accuracy.KINKS

_DTYPE_ALIASES = {"half": "float16", "fp16": "float16", "f16": "float16", "bf16": "bfloat16",
                  "float": "float32", "fp32": "float32", "f32": "float32",
                  "double": "float64", "fp64": "float64", "f64": "float64"}


def dtype_name(spelling: str) -> str:
    """The format a dtype's spelling names ('bf16', 'torch.float32', 'double', ...);
    UsageError for any other.  Torch-free, so that a misspelt --dtype is reported by the
    supervising parent at once, before any worker has imported torch."""
    key = spelling.strip().lower().removeprefix("torch.")
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_NAMES:
        raise UsageError(f"unknown dtype {spelling!r}; use one of {', '.join(DTYPE_NAMES)}")
    return key
