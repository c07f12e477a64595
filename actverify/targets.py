"""Targets: what is under test.  A target is a callable with the functional signature of one
activation (see `ActivationSpec.signature`), plus what it declares about itself.

Targets are separate from properties (what must hold): the same properties run against
PyTorch's entry points, a Triton kernel or a C++ extension.

Importing this module imports no torch (the specs and formats are imported where used):
`actverify check`'s supervising parent checks a target's text form (`check_reference`) and
never imports torch itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from actverify.errors import UsageError

if TYPE_CHECKING:
    import torch

    from actverify.dtypes import FloatFormat
    from actverify.spec import ActivationSpec


@dataclass(frozen=True)
class Target:
    name: str
    activation: str
    fn: Callable[..., torch.Tensor]
    inplace: bool = False
    builtin: bool = False  # one of PyTorch's own entry points: must agree bitwise with the others
    dtypes: frozenset[str] | None = None  # what the target declares it supports; None = all
    devices: frozenset[str] | None = None
    source: str | None = None  # how to load it again (for replay commands)
    # Parameters the target supports, given the input's rank (None: all), e.g. softmax over
    # the last dim only; and those for which its backward is supported.  Others: not checked.
    params_supported: Callable[[dict, int], bool] | None = None
    backward_supports: Callable[[dict], bool] | None = None
    backward: bool = True  # has a backward at all
    limits: str | None = None  # what the target does not support, in words, for reports
    # The largest tensor it can take in reasonable time (an interpreted kernel); the scale
    # regimes (millions of elements) are then reported as not checked.  None: no limit.
    max_elements: int | None = None

    @property
    def spec(self) -> ActivationSpec:
        from actverify.spec import get_spec

        return get_spec(self.activation)

    def accepts(self, params: dict, ndim: int, *, backward: bool = False) -> bool:
        if self.params_supported is not None and not self.params_supported(params, ndim):
            return False
        return not (backward and self.backward_supports is not None
                    and not self.backward_supports(params))

    def supports(self, fmt: FloatFormat, device: str) -> bool:
        kind = device.split(":", 1)[0]
        return ((self.dtypes is None or fmt.name in self.dtypes)
                and (self.devices is None or kind in self.devices))


def builtin_targets(spec: ActivationSpec) -> tuple[Target, ...]:
    """PyTorch's entry points for `spec`, each as a target."""
    return tuple(
        Target(name=ep.name, activation=spec.name, fn=ep.fn, inplace=ep.inplace, builtin=True,
               source=f"builtin:{spec.name}:{ep.name}", backward_supports=ep.backward_supports,
               limits=ep.limits)
        for ep in spec.entry_points
    )


def all_builtin_targets(activations: Iterable[str] | None = None) -> tuple[Target, ...]:
    from actverify.spec import get_spec, registry

    names = list(activations) if activations else list(registry())
    return tuple(t for name in names for t in builtin_targets(get_spec(name)))


def load_callable(reference: str) -> Callable:
    """Import `package.module:attr` or `path/to/file.py:attr` (attr may be dotted)."""
    if ":" not in reference:
        raise UsageError(f"target {reference!r} must look like 'package.module:attr' or "
                         "'path/to/file.py:attr'")
    where, _, attr = reference.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise UsageError(f"target file {where!r} does not exist")
            mod_name = f"_actverify_target_{abs(hash(str(path.resolve())))}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        else:
            _importable_from_cwd()
            module = importlib.import_module(where)
    except UsageError:
        raise
    except Exception as exc:  # an import error inside the user's module: say which
        raise UsageError(f"cannot import {where!r}: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:  # a module that ends the process on import is not importable
        raise UsageError(f"cannot import {where!r}: it called sys.exit({exc.code!r}) while "
                         "being imported") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{where!r} has no attribute {attr!r}") from None
    if not callable(obj) and not isinstance(obj, Target):
        raise UsageError(f"{reference!r} is not callable (it is a {type(obj).__name__})")
    return obj


def declare(fn: Callable | None = None, *, dtypes: Iterable[str] | None = None,
            devices: Iterable[str] | None = None, softmax_dims: str | Iterable[int] | None = None,
            backward: bool = True, inplace: bool = False,
            params: Callable[[dict, int], bool] | None = None, limits: str | None = None,
            max_elements: int | None = None):
    """Declare what a kernel supports; combinations outside are reported as not checked.

        @actverify.declare(dtypes=["float16", "float32"], softmax_dims="last")
        def my_softmax(x, dim): ...

    `softmax_dims` is "last" or a list of dims (negative ones count from the end); `params`
    is a predicate over (params, input rank); `backward=False` for forward-only kernels;
    `max_elements` for kernels too slow for tensors of millions of elements (an interpreter):
    the scale regimes are then reported as not checked.
    """
    if max_elements is not None and (not isinstance(max_elements, int) or max_elements < 1):
        raise UsageError(f"max_elements must be a positive integer, got {max_elements!r}")
    declared = {"dtypes": list(dtypes) if dtypes else None,
                "devices": list(devices) if devices else None, "softmax_dims": softmax_dims,
                "backward": backward, "inplace": inplace, "params": params, "limits": limits,
                "max_elements": max_elements}
    from actverify.dtypes import float_format

    for d in declared["dtypes"] or ():
        float_format(d)  # fail early on a typo

    def attach(f: Callable) -> Callable:
        try:
            f.actverify = declared
            return f
        except (AttributeError, TypeError):  # builtins and bound methods take no attributes
            def wrapper(*args, **kwargs):
                return f(*args, **kwargs)

            wrapper.actverify = declared
            wrapper.__name__ = getattr(f, "__name__", "kernel")
            return wrapper

    return attach(fn) if fn is not None else attach


def _dims_predicate(dims: str | Iterable[int]) -> Callable[[dict, int], bool]:
    if dims == "last":
        return lambda p, nd: p.get("dim", -1) % max(nd, 1) == max(nd, 1) - 1
    wanted = list(dims)
    return lambda p, nd: any(p.get("dim", -1) % max(nd, 1) == d % max(nd, 1) for d in wanted)


def target_from_callable(fn: Callable, activation: str, *, name: str | None = None,
                         source: str | None = None) -> Target:
    """A target for any callable with the functional signature of `activation`, honouring
    what it declared with `declare` (dtypes, devices, softmax dims, backward, in place)."""
    from actverify.dtypes import float_format
    from actverify.spec import get_spec

    spec = get_spec(activation)
    if not callable(fn):
        raise UsageError(f"target {name or fn!r} is not callable (it is a {type(fn).__name__})")
    declared = getattr(fn, "actverify", None) or {}
    predicates = [p for p in (declared.get("params"),
                              _dims_predicate(declared["softmax_dims"])
                              if declared.get("softmax_dims") else None) if p is not None]
    limits = [declared["limits"]] if declared.get("limits") else []
    if declared.get("softmax_dims"):
        limits.append(f"softmax dims other than {declared['softmax_dims']!r} not supported")
    if declared.get("max_elements"):
        limits.append(f"tensors of more than {declared['max_elements']:,} elements not "
                      "supported: the scale regimes are not checked")
    return Target(
        name=name or getattr(fn, "__qualname__", None) or repr(fn), activation=spec.name, fn=fn,
        source=source, inplace=bool(declared.get("inplace", False)),
        dtypes=frozenset(float_format(d).name for d in declared["dtypes"])
        if declared.get("dtypes") else None,
        devices=frozenset(declared["devices"]) if declared.get("devices") else None,
        params_supported=(lambda p, nd: all(f(p, nd) for f in predicates)) if predicates
        else None,
        backward=bool(declared.get("backward", True)),
        limits="; ".join(limits) or None,
        max_elements=declared.get("max_elements"),
    )


def as_target(kernel: Callable | str | Target, activation: str | None, *, caller: str = "check",
              source: str | None = None) -> Target:
    """A target from what a Python caller passed: a Target, its text form, or a callable with
    `activation` (and `source`, its import path for replays, when known)."""
    if isinstance(kernel, Target):
        return kernel
    if isinstance(kernel, str):
        return resolve_target(kernel, activation)
    if activation is None:
        raise UsageError(f"{caller}() needs activation=NAME for a callable")
    return target_from_callable(kernel, activation, source=source)


def registered_targets() -> dict[str, str]:
    """Targets that installed kernel packages register in the `actverify.targets` entry-point
    group: name -> 'module:attr'.  The object must carry `actverify = {"activation": ...}`
    (see `declare`) or be a Target."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group="actverify.targets")}


def _builtin_parts(reference: str) -> tuple[str, str, str]:
    parts = reference.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise UsageError(f"target {reference!r} must look like 'builtin:ACTIVATION:ENTRY', "
                         "e.g. builtin:sigmoid:torch.sigmoid (`actverify targets` lists them)")
    return parts[0], parts[1], parts[2]


def check_reference(reference: str) -> None:
    """What can be told about a target's text form without running any of its code: UsageError
    for a malformed reference, a builtin that does not exist, a missing file or package."""
    if reference.startswith("builtin:"):
        _builtin_parts(reference)  # its activation and entry point: by the spec, in the worker
        return
    if reference in registered_targets():
        return
    if ":" not in reference:
        raise UsageError(f"target {reference!r} must look like 'package.module:attr' or "
                         "'path/to/file.py:attr'")
    where, _, attr = reference.rpartition(":")
    if not where or not attr:
        raise UsageError(f"target {reference!r} must look like 'package.module:attr' or "
                         "'path/to/file.py:attr'")
    if where.endswith(".py"):
        if not Path(where).is_file():
            raise UsageError(f"target file {where!r} does not exist")
    elif not _top_level_exists(where):
        raise UsageError(f"cannot import {where!r}: no module named {where.split('.')[0]!r}")


def _importable_from_cwd() -> None:
    """As under `python -m`: a module of the current directory (the project root) is
    importable from the `actverify` command too."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))


def _top_level_exists(module: str) -> bool:
    _importable_from_cwd()  # found where load_callable will look for it
    try:  # the top-level name only: finding it imports nothing
        return importlib.util.find_spec(module.split(".", 1)[0]) is not None
    except (ImportError, ValueError):
        return False


def resolve_target(reference: str, activation: str | None = None) -> Target:
    """A target from its text form: 'builtin:ACT:ENTRY', a registered entry-point name, or an
    import path ('package.module:attr', 'path/file.py:attr') with an activation."""
    if reference.startswith("builtin:"):
        from actverify.spec import get_spec

        _, act, entry = _builtin_parts(reference)
        for t in builtin_targets(get_spec(act)):
            if t.name == entry:
                return t
        raise UsageError(f"no entry point {entry!r} for {act}; use one of "
                         f"{', '.join(t.name for t in builtin_targets(get_spec(act)))}")
    registered = registered_targets()
    if reference in registered:
        reference = registered[reference]
    obj = load_callable(reference)
    if isinstance(obj, Target):
        return obj
    activation = activation or (getattr(obj, "actverify", None) or {}).get("activation")
    if activation is None:
        raise UsageError(f"target {reference!r} needs an activation (--activation NAME)")
    return target_from_callable(obj, activation, name=reference, source=reference)


__all__ = ["Target", "builtin_targets", "all_builtin_targets", "resolve_target", "declare",
           "target_from_callable", "registered_targets"]
