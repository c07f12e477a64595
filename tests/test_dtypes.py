"""The format table in actverify.dtypes: bit views, special values, and lookups by name.

Everything else (ULP sizes, strategies drawn by bit pattern, hex in failure reports) reads the
formats from here, so a wrong constant or a lossy bit view would corrupt every verdict.
"""

from __future__ import annotations

import math

import pytest
import torch

from actverify.dtypes import DTYPE_NAMES, FORMATS, FloatFormat, float_format
from actverify.errors import UsageError

FMTS = [FORMATS[name] for name in DTYPE_NAMES]
FMT_IDS = list(DTYPE_NAMES)


def exponent_bits(fmt: FloatFormat) -> int:
    return fmt.bits - fmt.precision  # sign + exponent + (precision - 1) fraction bits


def pattern(fmt: FloatFormat, *, sign: int = 0, exponent: int = 0, fraction: int = 0) -> int:
    """An unsigned bit pattern assembled from its fields."""
    return (sign << (fmt.bits - 1)) | (exponent << (fmt.precision - 1)) | fraction


def from_pattern(fmt: FloatFormat, unsigned: int) -> torch.Tensor:
    # int64 cannot hold a float64 pattern with the sign bit set: pass its signed reading.
    return fmt.from_bits(torch.tensor([fmt.signed(unsigned, fmt.bits)]))


def value_of(fmt: FloatFormat, unsigned: int) -> float:
    return float(from_pattern(fmt, unsigned)[0])


# ------------------------------------------------------------------------- bit round trips


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_every_16_bit_pattern_round_trips(name: str) -> None:
    # 65,536 patterns is cheap enough to be exhaustive: every NaN payload, both zeros, every
    # subnormal.
    fmt = FORMATS[name]
    patterns = torch.arange(1 << 16)

    values = fmt.from_bits(patterns)

    assert values.dtype == fmt.dtype
    assert torch.equal(fmt.bits_of(values), patterns)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32"])
def test_from_bits_accepts_the_signed_reading_of_a_pattern(name: str) -> None:
    # bits_of gives unsigned patterns but callers (neighbourhood, strategies) also pass signed
    # ones, e.g. after stepping below zero: both must denote the same value.
    fmt = FORMATS[name]
    unsigned = torch.tensor([0x0, 0x1, (1 << fmt.bits) - 1, 1 << (fmt.bits - 1),
                             (1 << (fmt.bits - 1)) | 5])
    signed = torch.tensor([fmt.signed(int(b), fmt.bits) for b in unsigned])

    assert torch.equal(fmt.bits_of(fmt.from_bits(signed)), unsigned)
    assert torch.equal(fmt.bits_of(fmt.from_bits(unsigned)), unsigned)


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_random_patterns_round_trip(fmt: FloatFormat) -> None:
    # Random patterns over the whole width, sign bit included (int64's sign bit for float64).
    g = torch.Generator().manual_seed(1234)
    if fmt.bits == 64:  # bits 0-31, 32-62 and the sign: int64 arithmetic wraps into the sign
        low = torch.randint(0, 1 << 32, (4096,), generator=g)
        high = torch.randint(0, 1 << 31, (4096,), generator=g)
        sign = torch.randint(0, 2, (4096,), generator=g)
        patterns = (high << 32) | low | (sign << 63)
    else:
        patterns = torch.randint(0, 1 << fmt.bits, (4096,), generator=g)

    values = fmt.from_bits(patterns)

    assert torch.equal(fmt.bits_of(values), patterns)
    assert bool((values < 0).any()) and bool((values > 0).any())


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_values_round_trip_through_their_bits(fmt: FloatFormat) -> None:
    # The other direction: value -> bits -> value is the identity, bit for bit (NaN included).
    values = torch.tensor([0.0, -0.0, 1.0, -1.0, fmt.tiny, -fmt.tiny, fmt.smallest_subnormal,
                           -fmt.smallest_subnormal, fmt.max, -fmt.max, math.inf, -math.inf,
                           math.nan, 1.0 / 3.0], dtype=torch.float64).to(fmt.dtype)

    back = fmt.from_bits(fmt.bits_of(values))

    assert torch.equal(fmt.bits_of(back), fmt.bits_of(values))
    assert torch.equal(torch.signbit(back), torch.signbit(values))


def test_float64_sign_bit_reads_as_a_negative_int64() -> None:
    # int64 has no room for an unsigned 64-bit pattern: float64 bit views are signed.
    fmt = FORMATS["float64"]
    bits = fmt.bits_of(torch.tensor([-0.0, -1.0, 1.0], dtype=torch.float64))

    assert bits.tolist() == [-(1 << 63), fmt.signed(0xBFF0000000000000, 64), 0x3FF0000000000000]


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_bits_of_keeps_the_shape_of_non_contiguous_input(fmt: FloatFormat) -> None:
    x = torch.arange(12, dtype=torch.float64).reshape(3, 4).to(fmt.dtype).t()
    assert not x.is_contiguous()

    bits = fmt.bits_of(x)

    assert bits.shape == x.shape
    assert torch.equal(bits, fmt.bits_of(x.contiguous()))


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_bits_of_a_0d_tensor(fmt: FloatFormat) -> None:
    bits = fmt.bits_of(torch.tensor(1.0, dtype=fmt.dtype))

    assert bits.shape == ()
    assert int(bits) == pattern(fmt, exponent=(1 << (exponent_bits(fmt) - 1)) - 1)


# ------------------------------------------------------------------- constants and specials


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_format_constants_agree_with_torch_finfo(fmt: FloatFormat) -> None:
    info = torch.finfo(fmt.dtype)

    assert fmt.bits == info.bits
    assert fmt.tiny == info.tiny
    assert fmt.eps == info.eps
    assert fmt.max == info.max
    assert fmt.eps == 2.0 ** (1 - fmt.precision)  # precision counts the implicit bit
    assert fmt.emax == (1 << (exponent_bits(fmt) - 1)) - 1
    assert fmt.emin == 1 - fmt.emax
    assert torch.empty((), dtype=fmt.int_dtype).element_size() * 8 == fmt.bits


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_special_patterns_decode_to_the_format_constants(fmt: FloatFormat) -> None:
    # The classic landmarks of a binary interchange format, built from their bit fields.
    top = (1 << exponent_bits(fmt)) - 1  # the all-ones exponent: inf and NaN
    frac_max = (1 << (fmt.precision - 1)) - 1

    assert value_of(fmt, pattern(fmt, fraction=1)) == fmt.smallest_subnormal
    assert value_of(fmt, pattern(fmt, fraction=frac_max)) == fmt.tiny - fmt.smallest_subnormal
    assert value_of(fmt, pattern(fmt, exponent=1)) == fmt.tiny
    assert value_of(fmt, pattern(fmt, exponent=top - 1, fraction=frac_max)) == fmt.max
    assert value_of(fmt, pattern(fmt, exponent=top)) == math.inf
    assert value_of(fmt, pattern(fmt, sign=1, exponent=top)) == -math.inf
    assert math.isnan(value_of(fmt, pattern(fmt, exponent=top, fraction=1)))
    assert math.isnan(value_of(fmt, pattern(fmt, sign=1, exponent=top, fraction=frac_max)))
    negative_zero = value_of(fmt, pattern(fmt, sign=1))
    assert negative_zero == 0.0 and math.copysign(1.0, negative_zero) == -1.0
    assert fmt.smallest_subnormal == 2.0 ** (fmt.emin - fmt.precision + 1)
    assert fmt.max == 2.0**fmt.emax * (2 - fmt.eps)


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("float16", 1.0, "0x3c00"),
    ("float16", -2.0, "0xc000"),
    ("float16", -0.0, "0x8000"),
    ("float16", 65504.0, "0x7bff"),
    ("float16", 2.0**-24, "0x0001"),
    ("float16", math.inf, "0x7c00"),
    ("bfloat16", 1.0, "0x3f80"),
    ("bfloat16", -0.0, "0x8000"),
    ("bfloat16", 2.0**-133, "0x0001"),
    ("bfloat16", -math.inf, "0xff80"),
    ("bfloat16", float(torch.finfo(torch.bfloat16).max), "0x7f7f"),
    ("float32", 1.0, "0x3f800000"),
    ("float32", -0.0, "0x80000000"),
    ("float32", 2.0**-149, "0x00000001"),
    ("float64", 1.0, "0x3ff0000000000000"),
    ("float64", -1.0, "0xbff0000000000000"),
    ("float64", -0.0, "0x8000000000000000"),
    ("float64", 5e-324, "0x0000000000000001"),
    ("float64", -math.inf, "0xfff0000000000000"),
])
def test_hex_is_the_zero_padded_unsigned_pattern(name: str, value: float, expected: str) -> None:
    fmt = FORMATS[name]

    text = fmt.hex(value)

    assert text == expected
    decoded = value_of(fmt, int(text, 16))
    assert decoded == value and math.copysign(1.0, decoded) == math.copysign(1.0, value)


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_hex_of_nan_is_a_nan_pattern_of_full_width(fmt: FloatFormat) -> None:
    text = fmt.hex(math.nan)

    assert len(text) == 2 + fmt.bits // 4
    assert math.isnan(value_of(fmt, int(text, 16)))


def test_signed_reads_a_pattern_as_twos_complement() -> None:
    assert FloatFormat.signed(0x7FFF, 16) == 0x7FFF
    assert FloatFormat.signed(0x8000, 16) == -0x8000
    assert FloatFormat.signed(0xFFFF, 16) == -1
    assert FloatFormat.signed((1 << 64) - 1, 64) == -1


# ------------------------------------------------------------------------------- lookups


@pytest.mark.parametrize("fmt", FMTS, ids=FMT_IDS)
def test_lookup_by_torch_dtype_and_by_canonical_name(fmt: FloatFormat) -> None:
    assert float_format(fmt.dtype) is fmt
    assert float_format(fmt.name) is fmt
    assert float_format(str(fmt.dtype)) is fmt  # 'torch.float16', as torch prints it


@pytest.mark.parametrize(("alias", "name"), [
    ("half", "float16"), ("fp16", "float16"), ("f16", "float16"), ("bf16", "bfloat16"),
    ("float", "float32"), ("fp32", "float32"), ("f32", "float32"), ("double", "float64"),
    ("fp64", "float64"), ("f64", "float64"),
    # Case and surrounding blanks do not matter (command-line input).
    ("  BF16 ", "bfloat16"), ("Float64", "float64"), ("TORCH.HALF", "float16"),
])
def test_aliases(alias: str, name: str) -> None:
    assert float_format(alias) is FORMATS[name]


@pytest.mark.parametrize(("what", "expected"), [
    ("float8", "unknown dtype 'float8'; use one of float16, bfloat16, float32, float64"),
    ("", "unknown dtype ''; use one of float16, bfloat16, float32, float64"),
    ("int32", "unknown dtype 'int32'; use one of float16, bfloat16, float32, float64"),
    (torch.int32, "dtype torch.int32 is not a floating-point format actverify checks; "
                  "use one of float16, bfloat16, float32, float64"),
    (torch.complex64, "dtype torch.complex64 is not a floating-point format actverify checks"),
    (16, "dtype must be a torch.dtype or a name, got 16"),
    (None, "dtype must be a torch.dtype or a name, got None"),
])
def test_unknown_names_raise_a_one_line_usage_error(what: object, expected: str) -> None:
    with pytest.raises(UsageError) as info:
        float_format(what)  # type: ignore[arg-type]

    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)  # callers outside the CLI may catch ValueError
