"""Targets: what is under test.  A target is a callable with the functional signature of one
activation (see `ActivationSpec.signature`), plus what it declares about itself.

Targets are separate from properties (what must hold): the same properties run against
PyTorch's entry points, a Triton kernel or a C++ extension.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from actverify.dtypes import DTYPE_NAMES, FloatFormat, float_format
from actverify.errors import UsageError
from actverify.spec import ActivationSpec, get_spec, registry


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
    # Parameters for which the backward is supported (None: all); others are not checked.
    backward_supports: Callable[[dict], bool] | None = None
    limits: str | None = None  # what the target does not support, in words, for reports

    @property
    def spec(self) -> ActivationSpec:
        return get_spec(self.activation)

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
            module = importlib.import_module(where)
    except UsageError:
        raise
    except Exception as exc:  # an import error inside the user's module: say which
        raise UsageError(f"cannot import {where!r}: {type(exc).__name__}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{where!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{reference!r} is not callable (it is a {type(obj).__name__})")
    return obj


def resolve_target(reference: str, activation: str | None = None) -> Target:
    """A target from its text form: 'builtin:ACT:ENTRY' or an import path with an activation."""
    if reference.startswith("builtin:"):
        _, act, entry = reference.split(":", 2)
        for t in builtin_targets(get_spec(act)):
            if t.name == entry:
                return t
        raise UsageError(f"no entry point {entry!r} for {act}; use one of "
                         f"{', '.join(t.name for t in builtin_targets(get_spec(act)))}")
    if activation is None:
        raise UsageError(f"target {reference!r} needs an activation (--activation NAME)")
    spec = get_spec(activation)
    fn = load_callable(reference)
    declared = getattr(fn, "actverify", {}) or {}
    dtypes = declared.get("dtypes")
    return Target(
        name=reference, activation=spec.name, fn=fn, source=reference,
        inplace=bool(declared.get("inplace", False)),
        dtypes=frozenset(float_format(d).name for d in dtypes) if dtypes else None,
        devices=frozenset(declared["devices"]) if declared.get("devices") else None,
    )


__all__ = ["Target", "builtin_targets", "all_builtin_targets", "resolve_target", "DTYPE_NAMES"]
