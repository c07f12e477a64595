"""Hypothesis strategies: every input actverify draws comes from here.

One example is a tensor of many values.  Drawing each of 65,536 elements through Hypothesis
would be slow, so a tensor is built from a few choices Hypothesis controls and can shrink: a
shape, a fill recipe (a seeded random mix: bit patterns, normal values at a drawn scale, or
values near the activation's thresholds), and a short list of individually drawn values placed
at drawn positions.  Shrinking drives the shape small, the seed to 0 and the drawn values to
simple ones, so a failure ends on a small tensor whose offending values Hypothesis chose.

bfloat16 has no Hypothesis width: all formats are drawn as bit patterns, which covers every
subnormal, both zeros, infinities and NaN uniformly across formats.

The public strategies (`__all__`, docs/usage.md) work in anyone's `@given` test.  Like
`hypothesis.extra.numpy`, they take a format as a name ('float16', 'bf16', 'torch.float32')
or a torch dtype, an activation as a name or a spec, and raise
`hypothesis.errors.InvalidArgument` for a bad argument when the strategy is built.
"""

from __future__ import annotations

import dataclasses

import functools
import inspect
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from actverify.devices import resolve_device
from actverify.dtypes import FloatFormat, float_format
from actverify.errors import UsageError

__all__ = ["floats", "shapes", "tensors", "layouts", "cases", "special_values", "Case",
           "apply_layout", "LAYOUTS"]


def _format(fmt: FloatFormat | str | torch.dtype) -> FloatFormat:
    """A format from a name, a torch dtype or a FloatFormat; InvalidArgument otherwise."""
    try:
        return float_format(fmt)
    except UsageError as exc:
        raise InvalidArgument(str(exc)) from None


def _device(device: str) -> str:
    try:
        return resolve_device(device)
    except UsageError as exc:
        raise InvalidArgument(str(exc)) from None


def _spec(spec):
    """An activation spec from its name (or the spec itself); InvalidArgument otherwise."""
    from actverify.spec import ActivationSpec, get_spec

    if isinstance(spec, ActivationSpec):
        return spec
    try:
        return get_spec(spec)
    except (UsageError, KeyError, TypeError) as exc:
        raise InvalidArgument(str(exc)) from None

# ---------------------------------------------------------------------------------- values


def special_values(fmt: FloatFormat | str | torch.dtype, *, allow_nan: bool = True,
                   allow_infinity: bool = True) -> tuple[float, ...]:
    """+-0, +-1, the smallest subnormal, the largest subnormal, tiny, max, and inf/NaN if allowed."""
    fmt = _format(fmt)
    largest_sub = fmt.tiny - fmt.smallest_subnormal
    vals = [0.0, 1.0, fmt.smallest_subnormal, largest_sub, fmt.tiny, fmt.max, 0.5, 2.0]
    vals = vals + [-v for v in vals]
    if allow_infinity:
        vals += [math.inf, -math.inf]
    if allow_nan:
        vals.append(math.nan)
    return tuple(vals)


def _round_to(fmt: FloatFormat, values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float64).to(fmt.dtype)


def neighbourhood(fmt: FloatFormat, centres: Sequence[float], *, ulps: int = 3) -> tuple[float, ...]:
    """Every value within `ulps` steps of each centre (both signs), as Python floats."""
    return _neighbourhood(fmt, tuple(centres), ulps)


# Strategies and value tables are built once per argument set: Hypothesis validates every new
# strategy object on its first draw, which cost about a sixth of the drawing time of a check.
@functools.lru_cache(maxsize=256)
def _neighbourhood(fmt: FloatFormat, centres: tuple[float, ...], ulps: int) -> tuple[float, ...]:
    base = _round_to(fmt, [c for v in centres for c in (v, -v)])
    bits = fmt.bits_of(base)
    steps = torch.arange(-ulps, ulps + 1)
    near = fmt.from_bits((bits[:, None] + steps[None, :]).flatten())
    near = near[torch.isfinite(near)]
    # Deduplicate by bit pattern, not by value: a set of floats would merge -0.0 into +0.0.
    unique = fmt.from_bits(torch.unique(fmt.bits_of(near)))
    return tuple(sorted(unique.double().tolist()))


def floats(fmt: FloatFormat | str | torch.dtype, *, allow_nan: bool = True,
           allow_infinity: bool = True, allow_subnormal: bool = True,
           thresholds: Sequence[float] = ()) -> st.SearchStrategy[float]:
    """Floats exactly representable in `fmt`: any bit pattern, special values, or values within a
    few ulps of `thresholds` (where an activation saturates or a naive formula overflows)."""
    fmt = _format(fmt)
    return _floats(fmt, allow_nan, allow_infinity, allow_subnormal, tuple(thresholds))


# struct codes of each format's bit pattern and value; bfloat16 is the top half of a float32.
_STRUCT_CODES = {"float16": ("<H", "<e", 0), "bfloat16": ("<I", "<f", 16),
                 "float32": ("<I", "<f", 0), "float64": ("<Q", "<d", 0)}


def value_of_bits(fmt: FloatFormat) -> Callable[[int], float]:
    """The function from an unsigned bit pattern of `fmt` to its value as a Python float, in
    plain Python (`struct`): a drawn value used to cost a torch tensor, a bit view and a
    conversion back, about a tenth of the drawing time of a property run."""
    pattern, value, shift = _STRUCT_CODES[fmt.name]

    def from_bits(b: int) -> float:
        return struct.unpack(value, struct.pack(pattern, b << shift))[0]

    return from_bits


@functools.lru_cache(maxsize=256)
def _floats(fmt: FloatFormat, allow_nan: bool, allow_infinity: bool, allow_subnormal: bool,
            thresholds: tuple[float, ...]) -> st.SearchStrategy[float]:
    def allowed(v: float) -> bool:
        if math.isnan(v):
            return allow_nan
        if math.isinf(v):
            return allow_infinity
        return allow_subnormal or v == 0 or abs(v) >= fmt.tiny

    # One branch per kind of value, each holding only allowed values.  The table branches are
    # filtered here, once; the bit patterns are filtered per draw, and only when something is
    # excluded (Hypothesis pushes a filter of `one_of` into each branch, so this is the
    # distribution `one_of(...).filter(allowed)` draws from, without its cost per draw).
    specials = [v for v in special_values(fmt, allow_nan=allow_nan,
                                          allow_infinity=allow_infinity) if allowed(v)]
    bits = st.integers(0, (1 << fmt.bits) - 1).map(value_of_bits(fmt))
    if not (allow_nan and allow_infinity and allow_subnormal):
        bits = bits.filter(allowed)
    choices = [st.sampled_from(specials), bits]
    if thresholds:
        choices.append(st.sampled_from([v for v in neighbourhood(fmt, thresholds)
                                        if allowed(v)]))
    return st.one_of(choices)


# ---------------------------------------------------------------------------------- shapes

# Sizes that straddle SIMD widths (8, 16, 32, 64 lanes) and unroll factors by one.
ODD_SIZES = (1, 2, 3, 7, 9, 15, 17, 31, 33, 63, 65, 127, 129, 255, 257, 1023, 1025)
# Softmax rows wider than 1024 and odd widths between 513 and 1023: GPU softmax kernels switch
# strategy at these widths (PyTorch had bugs there).
WIDE_ROWS = (513, 577, 769, 1023, 1025, 2049, 4097)
# Over 65,536 elements: reaches multi-threaded paths and 16-bit index overflows.
LARGE_SHAPES = ((65537,), (257, 263), (3, 129, 171))


# Named functions, not lambdas, in strategies: when a filter rejects a draw, Hypothesis
# describes the strategy, and describing a lambda parses its module's source (about 0.06 s
# of CPU per lambda in each new process).
def _one_dim(n: int) -> tuple[int, ...]:
    return (n,)


@functools.lru_cache(maxsize=256)  # see _neighbourhood
def shapes(*, min_dims: int = 0, max_dims: int = 4, allow_empty: bool = True,
           allow_large: bool = True) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes from 0-d and empty through odd sizes to tensors of more than 65,536 elements.

    Most draws are tensors of hundreds to thousands of values (one example checks many
    values); small and degenerate shapes are the branches Hypothesis shrinks toward, and one
    draw in ten is large.
    """
    if not 0 <= min_dims <= max_dims <= 6:
        raise InvalidArgument(f"need 0 <= min_dims <= max_dims <= 6, got {min_dims}, {max_dims}")
    if max_dims == 0:
        return st.just(())

    def fits(shape: tuple[int, ...]) -> bool:
        return min_dims <= len(shape) <= max_dims

    side = st.one_of(st.integers(1, 9), st.sampled_from(ODD_SIZES))
    of_rank = {n: st.tuples(*[side] * n) for n in range(max(min_dims, 1), max_dims + 1)}
    nd = st.integers(max(min_dims, 1), max_dims).flatmap(of_rank.__getitem__)
    def small_enough(shape: tuple[int, ...]) -> bool:
        return fits(shape) and math.prod(shape) <= 20000

    small = st.one_of(st.integers(1, 64).map(_one_dim), nd).filter(small_enough)
    # Many values: sizes that straddle vector widths, as 1-d or rows, and wide softmax rows.
    many = st.one_of(st.sampled_from(ODD_SIZES[9:]).map(_one_dim),
                     st.tuples(st.integers(2, 9), st.sampled_from(ODD_SIZES[5:13])),
                     st.tuples(st.integers(1, 3), st.sampled_from(WIDE_ROWS)),
                     # 4-d, so that channels_last applies
                     st.tuples(st.integers(1, 3), st.integers(2, 9), st.integers(2, 9),
                               st.sampled_from(ODD_SIZES[2:8])))
    if not (min_dims <= 1 and max_dims >= 4):  # else all of these fit: no filter to run
        many = many.filter(fits)
    degenerate = [st.just(())] if min_dims == 0 else []
    if allow_empty:
        degenerate.append(st.sampled_from([(0,), (0, 3), (3, 0, 2)]).filter(fits))
    big = [s for s in LARGE_SHAPES if fits(s)] if allow_large else []
    # Branch 0 is where shrinking goes first: the degenerate shapes, then small ones.
    branches = ([st.one_of(degenerate)] if degenerate else []) + [small] * 2 + [many] * 6
    branches.append(st.sampled_from(big) if big else many)
    return st.integers(0, len(branches) - 1).flatmap(branches.__getitem__)


# --------------------------------------------------------------------------------- tensors

FILLS = ("normal", "bits", "thresholds", "uniform")


@functools.lru_cache(maxsize=256)
def _centres(fmt: FloatFormat, thresholds: tuple[float, ...]) -> torch.Tensor:
    """The values the 'thresholds' fill picks from (read only: `_fill` indexes it)."""
    return torch.tensor(neighbourhood(fmt, thresholds, ulps=16), dtype=torch.float64)


def _fill(fmt: FloatFormat, n: int, *, seed: int, recipe: str, scale_exp: int,
          thresholds: Sequence[float]) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if recipe == "bits":
        if fmt.bits == 64:  # randint cannot span 64 bits: two 32-bit halves
            bits = ((torch.randint(0, 1 << 32, (n,), generator=g) << 32)
                    | torch.randint(0, 1 << 32, (n,), generator=g))
        else:
            bits = torch.randint(0, 1 << fmt.bits, (n,), generator=g)
        return fmt.from_bits(bits)
    if recipe == "thresholds" and thresholds:
        centres = _centres(fmt, tuple(thresholds))
        pick = torch.randint(0, len(centres), (n,), generator=g)
        return centres[pick].to(fmt.dtype)
    if recipe == "uniform":
        return ((torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1)
                * 2.0**scale_exp).to(fmt.dtype)
    return (torch.randn(n, generator=g, dtype=torch.float64) * 2.0**scale_exp).to(fmt.dtype)


def upstream_gradient(shape: tuple[int, ...], *, seed: int,
                      scale_exponent: int | None = None) -> torch.Tensor:
    """A random upstream gradient in float64: normal values times 2^e, about 10% exact zeros
    (a backward that ignores or mis-scales g, or does not scale it element by element, shows).
    e is `scale_exponent` for the whole tensor (a property's draw), or when None drawn per
    element from -6..6 (a sweep's one tensor covers every scale)."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    if scale_exponent is None:
        g = g * torch.pow(2.0, torch.randint(-6, 7, shape, generator=gen).double())
    else:
        g = g * 2.0**scale_exponent
    return torch.where(torch.rand(shape, generator=gen) < 0.1, torch.zeros_like(g), g)


Knob = int | str | tuple[int, ...]


@dataclass
class Case:
    """One drawn example, everything a property needs to re-run it.

    `x`: the input, in its memory `layout` (a name from LAYOUTS); `params`: the activation's
    own parameters, exactly what the kernel is called with; `upstream`: the upstream gradient
    of backward properties; `other`: a second input a property relates to x (softmax's x + c);
    `knobs`: the property's own draws that are not tensors (a padding length, a seed, a
    shape), plain values so that a replay file holds them as data.
    """

    x: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)
    layout: str = "contiguous"
    upstream: torch.Tensor | None = None
    other: torch.Tensor | None = None
    knobs: dict[str, Knob] = field(default_factory=dict)

    def with_input(self, x: torch.Tensor, *, layout: str | None = None) -> Case:
        """The same case around another input (the one a violation is reported for)."""
        return dataclasses.replace(self, x=x, layout=self.layout if layout is None else layout)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The case's tensors by name, on the CPU (for a replay file)."""
        named = {"x": self.x, "upstream": self.upstream, "other": self.other}
        return {k: v.detach().cpu() for k, v in named.items() if v is not None}

    def __repr__(self) -> str:
        extra = "".join(f", {k}={tuple(v.shape)}" for k, v in
                        (("upstream", self.upstream), ("other", self.other)) if v is not None)
        knobs = f", knobs={self.knobs}" if self.knobs else ""
        return (f"Case(shape={tuple(self.x.shape)}, dtype={self.x.dtype}, "
                f"layout={self.layout}, params={self.params}{extra}{knobs})")


def tensors(*, fmt: FloatFormat | str | torch.dtype, device: str = "cpu",
            shape: st.SearchStrategy[tuple[int, ...]] | None = None,
            allow_nan: bool = True, allow_infinity: bool = True,
            thresholds: Sequence[float] = (), max_drawn: int = 8
            ) -> st.SearchStrategy[torch.Tensor]:
    """Contiguous tensors of `fmt` on `device`; see the module docstring for how they are
    built.  `shape`: a strategy of shapes (default `shapes()`)."""
    if shape is not None and not isinstance(shape, st.SearchStrategy):
        raise InvalidArgument(f"shape must be a strategy of shapes, e.g. st.just((3, 4)); "
                              f"got {shape!r}")
    if not isinstance(max_drawn, int) or max_drawn < 0:
        raise InvalidArgument(f"max_drawn must be an integer >= 0, got {max_drawn!r}")
    return _tensors(fmt=_format(fmt), device=_device(device), shape=shape, allow_nan=allow_nan,
                    allow_infinity=allow_infinity, thresholds=tuple(thresholds),
                    max_drawn=max_drawn)


# Strategies a draw takes every time, built once: Hypothesis validates every new strategy
# object on its first draw, and even `st.integers(a, b)` looks itself up in a cache per call.
_SEEDS = st.integers(0, 2**32 - 1)
_SCALE_EXPONENTS = st.integers(-12, 12)
_RECIPES = st.sampled_from(FILLS)


@functools.lru_cache(maxsize=1024)
def _below(n: int) -> st.SearchStrategy[int]:
    """The integers 0..n - 1 (n >= 1): how many values to draw, where to put each."""
    return st.integers(0, n - 1)


@functools.lru_cache(maxsize=256)
def _tensors(*, fmt: FloatFormat, device: str,
             shape: st.SearchStrategy[tuple[int, ...]] | None, allow_nan: bool,
             allow_infinity: bool, thresholds: tuple[float, ...], max_drawn: int
             ) -> st.SearchStrategy[torch.Tensor]:
    """The strategy of `tensors` (arguments checked), one object per argument set."""
    return _draw_tensor(fmt, device, shape if shape is not None else shapes(),
                        floats(fmt, allow_nan=allow_nan, allow_infinity=allow_infinity,
                               thresholds=thresholds),
                        allow_nan, allow_infinity, thresholds, max_drawn)


# Composites are defined once, here: Hypothesis reads a composite's source when it is defined.
@st.composite
def _draw_tensor(draw, fmt: FloatFormat, device: str, shape: st.SearchStrategy[tuple[int, ...]],
                 value: st.SearchStrategy[float], allow_nan: bool, allow_infinity: bool,
                 thresholds: tuple[float, ...], max_drawn: int) -> torch.Tensor:
    shp = draw(shape)
    n = math.prod(shp)
    recipe = draw(_RECIPES)
    flat = _fill(fmt, n, seed=draw(_SEEDS), recipe=recipe, scale_exp=draw(_SCALE_EXPONENTS),
                 thresholds=thresholds)
    if not allow_nan:
        flat = torch.where(torch.isnan(flat), torch.zeros_like(flat), flat)
    if not allow_infinity:
        flat = torch.where(torch.isinf(flat), torch.zeros_like(flat), flat)
    if n:
        # k values, then k positions, each drawn on its own (what a list of fixed size k
        # draws, without the list's own bookkeeping per draw)
        k = draw(_below(min(n, max_drawn) + 1))
        values = [draw(value) for _ in range(k)]
        where = [draw(_below(n)) for _ in range(k)]
        if k:
            flat[torch.tensor(where)] = torch.tensor(values, dtype=torch.float64).to(fmt.dtype)
    return flat.reshape(shp).to(device)


# --------------------------------------------------------------------------------- layouts

LAYOUTS = ("contiguous", "transposed", "strided", "offset", "expanded", "channels_last")


def apply_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """A tensor equal to `x` element for element but laid out in memory as `layout` says.

    'expanded' cannot keep arbitrary values (a stride-0 dim repeats one row), so it returns an
    expanded view of x's first row along dim 0; compare against `.contiguous()` of the result.
    """
    if layout == "contiguous" or x.ndim == 0 or x.numel() == 0:
        return x
    if layout == "transposed":
        return x.transpose(0, -1).contiguous().transpose(0, -1) if x.ndim >= 2 else x
    if layout == "strided":
        buf = torch.empty(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype, device=x.device)
        buf[..., ::2] = x
        return buf[..., ::2]
    if layout == "offset":
        buf = torch.empty(x.numel() + 3, dtype=x.dtype, device=x.device)
        buf[3:] = x.flatten()
        return buf[3:].view(x.shape)
    if layout == "expanded":
        return x[:1].expand(x.shape)
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
    raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")


@functools.lru_cache(maxsize=2)
def layouts(*, inplace: bool = False) -> st.SearchStrategy[str]:
    """Layout names; in-place targets cannot write into an expanded (self-overlapping) tensor."""
    return st.sampled_from([name for name in LAYOUTS if not (inplace and name == "expanded")])


# ------------------------------------------------------------------------------ parameters


def _param_strategy(make: Callable, ndim: int, fmt: FloatFormat | None):
    """A spec's strategy for one parameter; those that take `fmt` draw values in the
    target's precision (leaky ReLU's slope: float64 slopes for float64 kernels)."""
    if fmt is not None and "fmt" in inspect.signature(make).parameters:
        return make(ndim, fmt=fmt)
    return make(ndim)


def params_for(spec, ndim: int, *, monotone_only: bool = False,
               where: Callable[[dict, int], bool] | None = None,
               fmt: FloatFormat | None = None) -> st.SearchStrategy[dict]:
    """Parameter dicts for `spec`, drawn from the spec's own parameter strategies (in the
    precision of `fmt` where a strategy depends on it, and, with `where`, only those a target
    supports)."""
    if not spec.params:
        return st.just({})
    strategies = {p.name: _param_strategy(spec.param_strategies.get(
                      p.name, lambda nd, d=p.default: st.just(d)), ndim, fmt)
                  for p in spec.params}
    drawn = st.fixed_dictionaries(strategies)
    if where is not None:
        def supported(params: dict) -> bool:
            return where(params, ndim)

        drawn = drawn.filter(supported)
    return drawn.filter(spec.is_monotone) if monotone_only else drawn


def cases(*, spec, fmt: FloatFormat | str | torch.dtype, device: str = "cpu",
          shape: st.SearchStrategy[tuple[int, ...]] | None = None,
          allow_nan: bool = True, allow_infinity: bool = True, layout: bool = False,
          inplace: bool = False, monotone_only: bool = False,
          where: Callable[[dict, int], bool] | None = None) -> st.SearchStrategy[Case]:
    """Cases for `spec` (an activation's name or its spec): a tensor with values concentrated
    at the activation's thresholds, its parameters, and (if `layout`) a non-contiguous memory
    layout."""
    if shape is not None and not isinstance(shape, st.SearchStrategy):
        raise InvalidArgument(f"shape must be a strategy of shapes, got {shape!r}")
    return _cases(spec=_spec(spec), fmt=_format(fmt), device=_device(device), shape=shape,
                  allow_nan=allow_nan, allow_infinity=allow_infinity, layout=layout,
                  inplace=inplace, monotone_only=monotone_only, where=where)


def _cases(*, spec, fmt: FloatFormat, device: str,
           shape: st.SearchStrategy[tuple[int, ...]] | None, allow_nan: bool,
           allow_infinity: bool, layout: bool, inplace: bool, monotone_only: bool,
           where: Callable[[dict, int], bool] | None) -> st.SearchStrategy[Case]:
    # The strategies each draw takes, built once per `cases` call (the parameters' for each
    # number of dimensions on its first use), not once per draw.
    values = _tensors(fmt=fmt, device=device, shape=shape, allow_nan=allow_nan,
                      allow_infinity=allow_infinity, thresholds=tuple(spec.thresholds(fmt)),
                      max_drawn=8)
    params: dict[int, st.SearchStrategy[dict]] = {}

    def params_of(ndim: int) -> st.SearchStrategy[dict]:
        if ndim not in params:
            params[ndim] = params_for(spec, ndim, monotone_only=monotone_only, where=where,
                                      fmt=fmt)
        return params[ndim]

    return _draw_case(values, params_of, layouts(inplace=inplace) if layout else None)


@st.composite
def _draw_case(draw, values: st.SearchStrategy[torch.Tensor],
               params_of: Callable[[int], st.SearchStrategy[dict]],
               names: st.SearchStrategy[str] | None) -> Case:
    x = draw(values)
    params = draw(params_of(x.ndim))
    name = draw(names) if names is not None else "contiguous"
    laid = apply_layout(x, name)
    if laid is x and name != "contiguous":
        name = "contiguous"  # the layout does not apply to this shape (e.g. 2-d, channels_last)
    return Case(laid, params, name)


SEAM_EXPONENTS = range(-8, 11)  # |x| from 2^-8 to 2^10
SEAM_GRID = 1 / 8  # round numbers up to 32, every eighth
SEAM_ULPS = 24  # each side of a power of two or threshold, in ulps of the format


def seam_values(fmt: FloatFormat, thresholds: Sequence[float] = ()) -> torch.Tensor:
    """Inputs packed densely around the places a kernel may switch formulas (both signs,
    finite, in `fmt`): every ulp within SEAM_ULPS of each power of two from 2^-8 to 2^10 and
    of each threshold, and the multiples of 1/8 up to 32.  About 2,500 values; monotonicity and
    smoothness checks add them to every example, so a jump at a seam is found without luck."""
    centres = [2.0**k for k in SEAM_EXPONENTS] + [float(t) for t in thresholds
                                                 if math.isfinite(t)]
    near = torch.tensor(neighbourhood(fmt, centres, ulps=SEAM_ULPS), dtype=torch.float64)
    grid = torch.arange(-32 / SEAM_GRID, 32 / SEAM_GRID + 1, dtype=torch.float64) * SEAM_GRID
    both = torch.cat([near, grid]).to(fmt.dtype)
    return both[torch.isfinite(both)]
