"""Floating-point formats under test, described once.

Everything that depends on a format's bit layout (ULP size, bit views, special values) reads
it from here, so bfloat16 is handled exactly like the IEEE formats even though NumPy and
Hypothesis do not know it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from actverify.errors import UsageError
from actverify.names import dtype_name


@dataclass(frozen=True)
class FloatFormat:
    name: str
    dtype: torch.dtype
    bits: int
    precision: int  # significand bits including the implicit one (p)
    emin: int  # exponent of the smallest normal: tiny = 2**emin
    emax: int  # exponent of the largest finite value
    int_dtype: torch.dtype  # same-width integer type, for bit views

    @property
    def tiny(self) -> float:
        return 2.0**self.emin

    @property
    def max(self) -> float:
        return float(torch.finfo(self.dtype).max)

    @property
    def eps(self) -> float:
        return 2.0 ** (1 - self.precision)

    @property
    def smallest_subnormal(self) -> float:
        return 2.0 ** (self.emin - self.precision + 1)

    def bits_of(self, t: torch.Tensor) -> torch.Tensor:
        """The bit patterns of `t` (same shape) in an int64: unsigned for 16/32-bit formats,
        the signed reinterpretation for float64 (int64 has no room for more)."""
        raw = t.detach().contiguous().view(self.int_dtype).to(torch.int64)
        return raw if self.bits == 64 else raw & ((1 << self.bits) - 1)

    def from_bits(self, bits: torch.Tensor) -> torch.Tensor:
        """Inverse of `bits_of`: integers holding bit patterns -> tensor of this format."""
        b = bits.to(torch.int64)
        if self.bits < 64:
            b = b & ((1 << self.bits) - 1)
            # Reinterpret as the signed integer of the same width before the view.
            b = torch.where(b >= (1 << (self.bits - 1)), b - (1 << self.bits), b)
        return b.to(self.int_dtype).view(self.dtype)

    @staticmethod
    def signed(pattern: int, bits: int) -> int:
        """An unsigned bit pattern as the signed integer of the same width."""
        return pattern - (1 << bits) if pattern >= 1 << (bits - 1) else pattern

    def hex(self, value: float) -> str:
        """The bit pattern of one value, e.g. '0x3f80' for bfloat16 1.0."""
        t = torch.tensor([value], dtype=torch.float64).to(self.dtype)
        pattern = int(self.bits_of(t)[0]) & ((1 << self.bits) - 1)
        return f"0x{pattern:0{self.bits // 4}x}"


FORMATS: dict[str, FloatFormat] = {
    f.name: f
    for f in (
        FloatFormat("float16", torch.float16, 16, 11, -14, 15, torch.int16),
        FloatFormat("bfloat16", torch.bfloat16, 16, 8, -126, 127, torch.int16),
        FloatFormat("float32", torch.float32, 32, 24, -126, 127, torch.int32),
        FloatFormat("float64", torch.float64, 64, 53, -1022, 1023, torch.int64),
    )
}
DTYPE_NAMES: tuple[str, ...] = tuple(FORMATS)
_BY_DTYPE = {f.dtype: f for f in FORMATS.values()}


def float_format(dtype: torch.dtype | str | FloatFormat) -> FloatFormat:
    """Look up a format by torch dtype or by name ('float16', 'bf16', 'torch.float32', ...)."""
    if isinstance(dtype, FloatFormat):
        return dtype
    if isinstance(dtype, torch.dtype):
        try:
            return _BY_DTYPE[dtype]
        except KeyError:
            raise UsageError(
                f"dtype {dtype} is not a floating-point format actverify checks; "
                f"use one of {', '.join(DTYPE_NAMES)}"
            ) from None
    if not isinstance(dtype, str):
        raise UsageError(f"dtype must be a torch.dtype or a name, got {dtype!r}")
    return FORMATS[dtype_name(dtype)]
