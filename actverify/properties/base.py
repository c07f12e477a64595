"""What a property is, what it examines, and how it says no.

A `Property` is a named object: which targets it applies to (a predicate over the target and
its activation's spec), which inputs it draws (a Hypothesis strategy built for a `Subject`), and
a check that reads draw -> call -> assert and raises `Violation` with the evidence.
"""

from __future__ import annotations

import contextlib
import contextvars
import signal
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from actverify.accuracy import Policy, reference_dtype, to_reference
from actverify.devices import is_stand_in
from actverify.dtypes import FloatFormat
from actverify.spec import ActivationSpec
from actverify.strategies import Case
from actverify.targets import Target


class Violation(AssertionError):
    """A property does not hold.  Carries the element that shows it, for the report."""

    def __init__(self, message: str, *, x: float | None = None, index: tuple | None = None,
                 expected: float | None = None, actual: float | None = None,
                 ulp_error: float | None = None, case: Case | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.x, self.index, self.expected, self.actual = x, index, expected, actual
        self.ulp_error, self.case = ulp_error, case
        self.details = details or {}


class TargetMisbehaved(Violation):
    """The target raised, hung, or returned something that is not a tensor of the input's
    dtype, shape and device."""


# Per-call time limit (seconds) for targets, set by the runner; None: no limit.
CALL_TIMEOUT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "actverify_call_timeout", default=None)
_HUNG: dict[int, str] = {}  # targets that hung once: later calls fail at once (no re-waits)
# Set by a supervised worker (actverify/isolation.py): called with the monotonic time by which
# the target's code must return when a call starts, and with 0.0 when it returns, so that the
# supervising parent can stop a call stuck in C code that the alarm below cannot interrupt.
CALL_WATCH: Callable[[float], None] | None = None


class _Expired(BaseException):
    """Raised by the alarm inside the target; turned into TargetMisbehaved below."""


def _hung(target_key: int) -> None:
    # One raise site for the first hang and for the calls that follow, so that Hypothesis sees
    # the same failure when it replays the example.
    raise TargetMisbehaved(_HUNG[target_key]) from None


@contextlib.contextmanager
def _time_limit(target_key: int):
    """Raise TargetMisbehaved if the call outlives CALL_TIMEOUT (SIGALRM: Unix, main thread).

    A kernel stuck inside C code is only interrupted when it returns to Python; the isolation
    mode (a subprocess per subject) catches those."""
    limit = CALL_TIMEOUT.get()
    if target_key in _HUNG:
        _hung(target_key)
    usable = (limit and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    watch = CALL_WATCH
    if watch is not None:
        watch(time.monotonic() + limit)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    except _Expired:
        _HUNG[target_key] = f"the target did not return within {limit:g} s (call timeout)"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if watch is not None:
            watch(0.0)
    if target_key in _HUNG:
        _hung(target_key)


def mismatch(x: torch.Tensor, y: torch.Tensor) -> str | None:
    """How y differs from x in dtype, shape or device, in words; None if it does not."""
    for what, got, want in (("dtype", y.dtype, x.dtype), ("shape", tuple(y.shape),
                            tuple(x.shape)), ("device", y.device, x.device)):
        if got != want:
            return f"a result of {what} {got} for an input of {what} {want}"
    return None


def _copied(found: Any) -> Any:
    """A fresh copy of a memoised array, or of each array of a tuple."""
    return tuple(a.copy() for a in found) if isinstance(found, tuple) else found.copy()


def _living(origin: tuple) -> list[torch.Tensor] | None:
    """The tensors an origin names, if each still lives unmodified; else None."""
    parts = []
    for ref, version in origin:
        part = ref()
        if part is None or part._version != version:
            return None
        parts.append(part)
    return parts


@dataclass(frozen=True)
class Subject:
    """One target examined on one format and device under one accuracy policy."""

    target: Target
    fmt: FloatFormat
    device: str
    policy: Policy

    @property
    def spec(self) -> ActivationSpec:
        return self.target.spec

    def call(self, x: torch.Tensor, params: dict | None = None, *, fn: Callable | None = None,
             inplace: bool | None = None, checked: bool = True) -> torch.Tensor:
        """Call the target (or `fn`) as a user would, on a private copy if it works in place.
        Every property needs a result of the input's dtype, shape and device: a call raises
        TargetMisbehaved for any other, unless `checked` is false (the properties that are
        about exactly that: `signature`, `empty_and_scalar`)."""
        fn = fn or self.target.fn
        inplace = self.target.inplace if inplace is None else inplace
        if is_stand_in(self.device):  # the stand-in second device runs kernels in a child
            from actverify.standin import remote

            fn = remote(fn, target=self.target, inplace=inplace)
        if inplace:  # keep the caller's tensor, but keep its memory layout for the kernel
            x = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device).copy_(x)
        try:
            with _time_limit(id(self.target)):
                y = fn(x, **(params or {}))
        except TargetMisbehaved:
            raise
        except Exception as exc:
            raise TargetMisbehaved(f"the target raised {type(exc).__name__}: {exc}") from exc
        except SystemExit as exc:  # a kernel that ends the process must not end the run as 0
            raise TargetMisbehaved(f"the target called sys.exit({exc.code!r})") from exc
        if not isinstance(y, torch.Tensor):
            raise TargetMisbehaved(f"the target returned {type(y).__name__}, not a tensor")
        wrong = mismatch(x, y) if checked else None
        if wrong is not None:
            raise TargetMisbehaved(f"the target returned {wrong}")
        return y

    def running_target(self):
        """The time limit of a call, for the target's code run by autograd (its backward)."""
        return _time_limit(id(self.target))

    def supports(self, params: dict, ndim: int, *, backward: bool = False) -> bool:
        """Whether the target declares support for these parameters (e.g. softmax dims)."""
        return self.target.accepts(params, ndim, backward=backward)

    def _memo(self, key: tuple, build: Callable[[], st.SearchStrategy]) -> st.SearchStrategy:
        """The strategy `build` makes, made once per subject and key.  Why: property inputs
        ask for the same strategies in every draw (a composite drawing `s.cases(...)`), and a
        new strategy object is validated by Hypothesis on its first draw; the arguments are
        plain values or strategies (compared by identity), so a hit is the same search.  Kept
        in the instance's __dict__: not a field, so equality and hashing ignore it."""
        memo = self.__dict__.setdefault("_strategies", {})
        try:
            found = memo.get(key)
        except TypeError:  # an unhashable argument: build it every time
            return build()
        if found is None:
            if len(memo) >= 256:  # arguments built per draw (st.just((n,))) must not pile up
                memo.clear()
            found = memo[key] = build()
        return found

    def cases(self, *, backward: bool = False, **kwargs: Any) -> st.SearchStrategy[Case]:
        """Cases for this subject: its spec, format and device, and only the parameters the
        target declares it supports (the rest are reported as not checked)."""
        from actverify.strategies import cases

        return self._memo(("cases", backward, tuple(sorted(kwargs.items()))), lambda: cases(
            spec=self.spec, fmt=self.fmt, device=self.device,
            where=lambda p, nd: self.supports(p, nd, backward=backward), **kwargs))

    def params(self, ndim: int, *, backward: bool = False) -> st.SearchStrategy[dict]:
        from actverify.strategies import params_for

        return self._memo(("params", ndim, backward), lambda: params_for(
            self.spec, ndim, fmt=self.fmt,
            where=lambda p, nd: self.supports(p, nd, backward=backward)))

    def canonical(self, x: torch.Tensor, params: dict | None = None) -> torch.Tensor:
        """PyTorch's own functional form of the activation, for comparisons."""
        return self.call(x, params, fn=self.spec.canonical.fn, inplace=False)

    def derived(self, t: torch.Tensor, key: tuple, compute: Callable[[torch.Tensor], Any],
                 *, elementwise: bool = True) -> Any:
        """`compute(t)`, an array (or a tuple of arrays) derived from tensor t's values alone,
        computed once per tensor and key while t lives and is not written to; each caller
        gets its own copy.

        Why: a property converts the same tensors (its input, the results) to the reference
        precision, and asks for their true values, several times per example (each verdict
        function is self-contained): that was a sixth of the time of a property's body.  The
        memo is keyed by the tensor object (a weak reference: an entry goes with its tensor)
        and checked against its version counter, which every in-place write bumps, through
        any view of it.

        A tensor made by `take` or `joined` from others has its `elementwise` arrays (the
        element at each position depends on the input element at that position alone) taken
        or joined from theirs, computed once for them, while they live unmodified: a property
        that checks slices, permutations or concatenations of its input asks for true values
        at the same inputs once."""
        found = self._derived_entry(t)
        if found is None:
            return _copied(compute(t))
        arrays = found[2]
        if key not in arrays:
            origin = found[3]
            parts = None if origin is None or not elementwise else _living(origin[0])
            if parts is not None and not origin[2] and not all(
                    key in (self._derived_entry(p) or [None, None, {}])[2] for p in parts):
                parts = None  # not eager, and a part lacks it: compute t's own
            if parts is None:
                arrays[key] = compute(t)
            else:
                found_parts = [self.derived(p, key, compute) for p in parts]
                assemble = origin[1]
                arrays[key] = (tuple(assemble(list(each)) for each in zip(*found_parts))
                               if isinstance(found_parts[0], tuple) else assemble(found_parts))
        return _copied(arrays[key])

    def _derived_entry(self, t: torch.Tensor) -> list | None:
        """t's memo entry [weak reference, version, arrays by key, origin or None], new if t
        was written to since; None for a tensor without a version counter."""
        try:
            version = t._version
        except RuntimeError:  # an inference tensor (made under inference_mode) has none
            return None
        memo = self.__dict__.setdefault("_derived_memo", {})
        found = memo.get(id(t))
        if found is None or found[0]() is not t or found[1] != version:
            def forget(ref: weakref.ref, key: int = id(t)) -> None:
                if memo.get(key, (None,))[0] is ref:
                    del memo[key]

            found = memo[id(t)] = [weakref.ref(t, forget), version, {}, None]
        return found

    def _made_from(self, t: torch.Tensor, parts: tuple[torch.Tensor, ...],
                   assemble: Callable[[list], Any], *, eager: bool) -> torch.Tensor:
        """Record that t's element-wise arrays are `assemble` of the same arrays of `parts`
        (as they are now): computed for the parts first if `eager`, else only when every
        part has them already; returns t."""
        entry = self._derived_entry(t)
        if entry is not None and not entry[2]:
            try:
                entry[3] = (tuple((weakref.ref(p), p._version) for p in parts), assemble,
                            eager)
            except RuntimeError:  # a part without a version counter: nothing to carry over
                pass
        return t

    def take(self, x: torch.Tensor, index: slice | torch.Tensor | np.ndarray, *,
             flat: bool = False) -> torch.Tensor:
        """x[index] (with `flat`: of x flattened) for a slice or 1-d positions along the first
        dimension, whose values and (for an element-wise activation) true values are taken
        from x's where x has them already, and otherwise computed for the taken elements
        alone (a property judging a few elements of x need not evaluate all of x)."""
        if isinstance(index, slice):
            at, where = index, index
        else:
            at = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
            where = torch.from_numpy(at).to(x.device)
        taken = (x.reshape(-1) if flat else x)[where]
        pick = ((lambda arrays: arrays[0].reshape(-1)[at]) if flat
                else (lambda arrays: arrays[0][at]))
        return self._made_from(taken, (x,), pick, eager=False)

    def joined(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """The flattened parts end to end (torch.cat), whose values and (for an element-wise
        activation) true values are joined from the parts' (computed for each part, once)."""
        return self._made_from(torch.cat([p.flatten() for p in parts]), tuple(parts),
                               lambda arrays: np.concatenate([a.ravel() for a in arrays]),
                               eager=True)

    def reference(self, x: torch.Tensor, params: dict | None = None) -> np.ndarray:
        """The true function at x, in the reference precision for this format."""
        return self.derived(x, ("reference", repr(sorted((params or {}).items()))),
                             lambda t: self.true_values(t, params),
                             elementwise=self.spec.elementwise)

    def true_values(self, x: torch.Tensor, params: dict | None = None) -> np.ndarray:
        """The spec's reference evaluated at x (what `reference` returns, uncached)."""
        return np.asarray(self.spec.reference(self.values(x), **(params or {})),
                          dtype=reference_dtype(self.fmt))

    def bound(self, x: torch.Tensor, params: dict | None = None) -> np.ndarray:
        """Allowed ulps per element under this subject's policy."""
        if self.policy.correct_rounding:
            return np.full(tuple(x.shape), 0.5)
        b = self.spec.bound(self.fmt).evaluate(self.values(x), params or {}, self.fmt)
        return np.broadcast_to(np.asarray(b, dtype=np.float64), tuple(x.shape))

    def values(self, t: torch.Tensor) -> np.ndarray:
        """A tensor's values in the reference precision (exact)."""
        return self.derived(t, ("values",), lambda u: to_reference(u, self.fmt))

    def seams(self, *, negated: bool = False) -> torch.Tensor:
        """`seam_values` of this subject's format and thresholds on its device (with
        `negated`: their negatives), one tensor per subject: the properties that probe the
        seams in every example join it to their input (`joined`), so its true values are
        computed once, not once per example.  Read only."""
        from actverify.strategies import seam_values

        kept = self.__dict__.setdefault("_seams", {})
        if negated not in kept:
            t = seam_values(self.fmt, self.spec.thresholds(self.fmt)).to(self.device)
            kept[negated] = -t if negated else t
        return kept[negated]

    def fail_where(self, bad: np.ndarray, message: str, *, x: torch.Tensor, actual: torch.Tensor,
                   expected: np.ndarray | None = None, error: np.ndarray | None = None,
                   case: Case | None = None, bounds: np.ndarray | None = None,
                   **details: Any) -> None:
        """Raise a Violation for the worst element of `bad` (if any), with its evidence (and,
        with `bounds`, the bound that element was held to, beside its error)."""
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        if error is not None:
            score = np.where(bad, np.nan_to_num(error, nan=np.inf, posinf=1e300), -1.0)
            flat = int(np.argmax(score))
        else:
            flat = int(np.argmax(bad.ravel()))
        index = tuple(int(i) for i in np.unravel_index(flat, bad.shape)) if bad.shape else ()
        xv = self.values(x).reshape(bad.shape)
        yv = self.values(actual).reshape(bad.shape) if actual.shape == x.shape else None
        if bounds is not None:
            details = {**details, "bound": float(np.broadcast_to(bounds, bad.shape)[index])}
        raise Violation(
            f"{message} ({int(bad.sum())} of {bad.size} elements)",
            x=float(xv[index]), index=index,
            actual=None if yv is None else float(yv[index]),
            expected=None if expected is None else float(np.asarray(expected).reshape(bad.shape)[index]),
            ulp_error=None if error is None else float(np.asarray(error).reshape(bad.shape)[index]),
            case=case, details=details,
        )


Applies = Callable[[Target], bool]


@dataclass(frozen=True)
class Property:
    name: str
    summary: str
    applies: Applies
    inputs: Callable[[Subject], st.SearchStrategy[Case]]
    test: Callable[[Subject, Case], None]  # draw -> call -> assert, on one drawn case
    kind: str = "forward"  # forward | backward
    formats: tuple[str, ...] | None = None  # only these formats (gradcheck: float64)
    off_cpu: bool = False  # only on accelerators (cross-device agreement)


_PROPERTIES: dict[str, Property] = {}


def define(name: str, *, summary: str, applies: Applies,
           inputs: Callable[[Subject], st.SearchStrategy[Case]], kind: str = "forward",
           formats: tuple[str, ...] | None = None, off_cpu: bool = False):
    """Define the property `name`: the decorated function is its test (draw -> call ->
    assert), `inputs` builds its strategy for a subject, `applies` says for which targets."""

    def register(test: Callable[[Subject, Case], None]) -> Property:
        if name in _PROPERTIES:
            raise ValueError(f"property {name!r} is defined twice")
        prop = Property(name=name, summary=summary, applies=applies, inputs=inputs,
                        test=test, kind=kind, formats=formats, off_cpu=off_cpu)
        _PROPERTIES[name] = prop
        return prop

    return register


def all_properties() -> dict[str, Property]:
    return dict(_PROPERTIES)


# Predicates over targets, so that `applies=` reads as a sentence.
def always(target: Target) -> bool:
    return True


def elementwise(target: Target) -> bool:
    return target.spec.elementwise


def activation(*names: str) -> Applies:
    return lambda target: target.activation in names


def out_of_place(target: Target) -> bool:
    return not target.inplace


# Figures a check wants reported (the worst ULP error, where, and the bound it was held to),
# collected by the runner: sink(metric, value, x, bound).
Sink = Callable[[str, float, float | None, float | None], None]
_OBSERVER: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("actverify_observer",
                                                                        default=None)


def observe(metric: str, value: float, x: float | None = None, *,
            bound: float | None = None) -> None:
    """Report a figure: 'ulp', the worst error of this example against the true value, or
    'own_ulp', a backward's error against the exact derivative of its own saved output; at
    input x, with the bound that element was held to.  NaN counts as an infinite error."""
    sink = _OBSERVER.get()
    if sink is not None:
        sink(metric, float("inf") if value != value else value, x, bound)


def observing(sink: Sink):
    """Context manager routing `observe` calls to `sink`."""
    @contextlib.contextmanager
    def scope():
        token = _OBSERVER.set(sink)
        try:
            yield
        finally:
            _OBSERVER.reset(token)

    return scope()
