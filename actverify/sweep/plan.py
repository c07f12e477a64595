"""Which inputs a sweep visits: keys in value order, bit ranges, strides, the float32 CI
subset, and the sizes a sweep works in."""

from __future__ import annotations

from collections.abc import Mapping, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from actverify.dtypes import FloatFormat
from actverify.errors import UsageError
from actverify.spec import ActivationSpec


CHECKS = ("monotonic", "point_symmetry", "canonical")  # whole-space checks of element-wise sweeps
MAX_EXAMPLES = 20  # examples kept per pass / check
N_WORST = 10  # worst inputs kept per pass
N_WORST_CHUNKS = 3  # fused pass: the chunks whose worst input is located (their kernel reruns)
KEEP_ARRAYS = 1 << 22  # per-input arrays are kept for sweeps up to this many inputs
EXACT_CHUNK = 1 << 18
FAST_CHUNK = 1 << 22
CI_STRIDE = 1 << 12
CI_NEIGHBOURHOOD = 1 << 12


def _sign(fmt: FloatFormat) -> int:
    return 1 << (fmt.bits - 1)


def _mask(fmt: FloatFormat) -> int:
    return (1 << fmt.bits) - 1


def order_key(bits, fmt: FloatFormat):
    """Map unsigned bit patterns to keys that sort like the values: -NaNs, -inf, ..., -0, +0,
    ..., +inf, +NaNs.  Works on ints, numpy arrays and torch tensors (int64)."""
    sign, mask = _sign(fmt), _mask(fmt)
    if isinstance(bits, int):
        return (mask - bits) if bits & sign else (bits | sign)
    neg = (bits & sign) != 0
    if isinstance(bits, torch.Tensor):
        return torch.where(neg, mask - bits, bits | sign)
    return np.where(neg, mask - bits, bits | sign)


def bits_of_key(key, fmt: FloatFormat):
    """Inverse of `order_key`."""
    sign, mask = _sign(fmt), _mask(fmt)
    if isinstance(key, int):
        return (key & (sign - 1)) if key & sign else (mask - key)
    pos = (key & sign) != 0
    if isinstance(key, torch.Tensor):
        return torch.where(pos, key & (sign - 1), mask - key)
    return np.where(pos, key & (sign - 1), mask - key)


def _hex(bits: int, fmt: FloatFormat) -> str:
    return f"0x{int(bits) & _mask(fmt):0{fmt.bits // 4}x}"


def _hex_at(t: torch.Tensor, i: int, fmt: FloatFormat) -> str:
    """The bit pattern of element i of a flat tensor."""
    return _hex(int(fmt.bits_of(t.detach()[i:i + 1].cpu())[0]), fmt)


def parse_bit_range(text: str) -> tuple[int, int]:
    """'LO:HI' (decimal or 0x hex) -> (lo, hi), the half-open range of bit patterns [LO, HI)."""
    try:
        lo, hi = (int(part.strip(), 0) for part in text.split(":"))
    except ValueError:
        raise UsageError(f"--range {text!r}: use LO:HI, bit patterns in decimal or 0x hex, "
                         "e.g. 0x3f800000:0x40000000") from None
    if not 0 <= lo < hi:
        raise UsageError(f"--range {text!r}: need 0 <= LO < HI")
    return lo, hi


@dataclass(frozen=True)
class _Run:
    """An ascending arithmetic progression of keys."""

    start: int
    count: int
    step: int


class _KeySet:
    """The inputs of a sweep, as keys in value order: either disjoint progressions (cheap for
    2^32 inputs) or one sorted tensor of distinct keys (unions such as the CI subset)."""

    def __init__(self, fmt: FloatFormat, runs: Sequence[_Run] = (),
                 keys: torch.Tensor | None = None, description: str = "") -> None:
        self.fmt, self.runs, self.keys, self.description = fmt, tuple(runs), keys, description

    @property
    def count(self) -> int:
        return int(self.keys.numel()) if self.keys is not None else sum(r.count for r in self.runs)

    def chunks(self, size: int) -> Iterator[tuple[int, int, int, torch.Tensor | None]]:
        """(start, step, n, keys-or-None) per chunk, in value order."""
        if self.keys is not None:
            for i in range(0, self.keys.numel(), size):
                part = self.keys[i:i + size]
                yield int(part[0]), 0, int(part.numel()), part
            return
        for r in self.runs:
            for i in range(0, r.count, size):
                n = min(size, r.count - i)
                yield r.start + i * r.step, r.step, n, None

    def mirrored(self) -> bool:
        """Whether the set holds -x for every x it holds (same count and stride on each side
        of zero): the whole space, or any stride of it that divides 2^(bits-1)."""
        if self.keys is not None or len(self.runs) != 2:
            return False
        neg, pos = self.runs
        sign = _sign(self.fmt)
        last = pos.start - sign + (pos.count - 1) * pos.step  # the largest positive pattern
        return pos.start >= sign and neg == _Run(sign - 1 - last, pos.count, pos.step)

    def mirror_chunks(self, size: int) -> Iterator[tuple[tuple[int, int, int],
                                                         tuple[int, int, int]]]:
        """For a `mirrored` set: pairs of chunks of at most `size` inputs each, a chunk of
        non-negative inputs with the chunk of their negatives, outward from zero (the
        positive chunks ascending, the negative ones descending).  Each chunk is given as
        (start key, step, n), in value order like `chunks`."""
        neg, pos = self.runs
        sign = _sign(self.fmt)
        for i in range(0, pos.count, size):
            n = min(size, pos.count - i)
            first = pos.start + i * pos.step  # key of the pair's smallest positive input
            last_bits = first - sign + (n - 1) * pos.step
            yield (sign - 1 - last_bits, pos.step, n), (first, pos.step, n)

    def all_keys(self) -> torch.Tensor:
        if self.keys is not None:
            return self.keys
        return torch.cat([r.start + r.step * torch.arange(r.count, dtype=torch.int64)
                          for r in self.runs]) if self.runs else torch.zeros(0, dtype=torch.int64)


def _range_runs(fmt: FloatFormat, lo: int, hi: int, stride: int) -> list[_Run]:
    """Bit patterns lo, lo + stride, ... < hi as key progressions (negative half first)."""
    sign, mask = _sign(fmt), _mask(fmt)
    runs = []
    # negative patterns [max(lo, sign), hi): keys = mask - bits, descending in bits
    start = max(lo, sign)
    if start < hi:
        i0 = -(-(start - lo) // stride)
        i1 = (hi - 1 - lo) // stride
        if i1 >= i0:
            runs.append(_Run(mask - (lo + i1 * stride), i1 - i0 + 1, stride))
    # non-negative patterns [lo, min(hi, sign))
    end = min(hi, sign)
    if lo < end:
        count = (end - 1 - lo) // stride + 1
        runs.append(_Run(lo | sign, count, stride))
    return runs


def _float_to_key(value: float, fmt: FloatFormat) -> int:
    t = torch.tensor([value], dtype=torch.float64).to(fmt.dtype)
    return int(order_key(int(fmt.bits_of(t)[0]), fmt))


def plan_inputs(fmt: FloatFormat, *, spec: ActivationSpec | None = None,
                bit_range: tuple[int, int] | None = None, stride: int = 1,
                all_float32: bool = False) -> _KeySet:
    """Which bit patterns a sweep visits (see `sweep_elementwise`)."""
    if fmt.bits not in (16, 32):
        raise UsageError(f"sweeps cover 16-bit formats and float32, not {fmt.name}")
    if stride < 1:
        raise UsageError(f"stride must be >= 1, got {stride}")
    space = 1 << fmt.bits
    if bit_range is not None:
        lo, hi = bit_range
        if not 0 <= lo < hi <= space:
            raise UsageError(f"bit range [{lo:#x}, {hi:#x}) is not inside [0, {space:#x}) "
                             f"for {fmt.name}")
        runs = _range_runs(fmt, lo, hi, stride)
        n = sum(r.count for r in runs)
        what = (f"bit patterns [{_hex(lo, fmt)}, {_hex(hi - 1, fmt)}]"
                + (f", every {stride}th" if stride > 1 else "") + f" ({n:,} values)")
        return _KeySet(fmt, runs, description=what)
    if fmt.bits == 16 or all_float32 or stride > 1:
        runs = _range_runs(fmt, 0, space, stride)
        n = sum(r.count for r in runs)
        what = (f"all {n:,} bit patterns" if stride == 1 else
                f"every {stride}th bit pattern of the {fmt.name} space ({n:,} values)")
        return _KeySet(fmt, runs, description=what)
    # float32 CI subset: a stride through the whole space plus the thresholds' neighbourhoods
    strided = _KeySet(fmt, _range_runs(fmt, 0, space, CI_STRIDE)).all_keys()
    parts = [strided]
    thresholds = tuple(spec.thresholds(fmt)) if spec is not None else (0.0,)
    for t in thresholds:
        k = _float_to_key(float(t), fmt)
        parts.append(torch.arange(max(0, k - CI_NEIGHBOURHOOD),
                                  min(space, k + CI_NEIGHBOURHOOD + 1), dtype=torch.int64))
    keys = torch.unique(torch.cat(parts))  # sorted
    what = (f"CI subset of float32: every {CI_STRIDE}th bit pattern ({strided.numel():,}) plus "
            f"+-{CI_NEIGHBOURHOOD} bit patterns around each threshold "
            f"({', '.join(format(float(t), '.6g') for t in thresholds)}); "
            f"{keys.numel():,} distinct values")
    return _KeySet(fmt, keys=keys, description=what)


def _keys_to_x(keys: torch.Tensor, fmt: FloatFormat, device: str) -> torch.Tensor:
    return fmt.from_bits(bits_of_key(keys, fmt)).to(device)


def param_sets(spec: ActivationSpec, *, given: Mapping[str, object] | None = None
               ) -> list[dict]:
    """The parameter sets a 16-bit sweep of `spec` covers: the defaults, and every mode of a
    parameter that names one.

    A parameter whose default is a string selects a different function (an approximation's
    form, say), and its spec draws it from a finite list (`param_strategies`, a
    `sampled_from`): each of those modes is swept.  Numeric parameters (a slope) have no
    finite list and keep their defaults.  Values in `given` are fixed and not varied."""
    given = dict(given or {})
    base = {**spec.default_params(), **given}
    sets = [base]
    for p in spec.params:
        if p.name in given or not isinstance(p.default, str) or p.name not in (
                spec.param_strategies or {}):
            continue
        # hypothesis' sampled_from keeps its values in `elements`; other strategies do not
        # list their values, and the default is all a sweep can take from them
        modes = getattr(spec.param_strategies[p.name](1), "elements", ())
        sets += [{**s, p.name: m} for s in list(sets) for m in modes if m != s[p.name]]
    return sets
