"""Portable reproductions: where a replay file says its target is, and how it is found again.

A replay file (actverify/runner.py writes it) records its target as an import path
(`mypkg.kernels:sigmoid`), as a file path relative to the directory the run started in, its
*root* (`kernels/act.py:sigmoid`), or, for a callable checked through the Python API that no
import path reaches, as nothing: that one is replayed with the callable in hand,

    actverify.replay(".actverify/replay/accuracy-sigmoid-float32-3f2a.pt", kernel=my_sigmoid)

A replay runs from any directory and from a CI artifact copied to another machine: the
target is looked up from `--root DIR` if given, else from the current directory (run it from
the project root), else from the root recorded in the file (the same machine).
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from actverify.errors import UsageError


def portable_reference(reference: str, root: Path) -> str:
    """A target reference that holds on another machine: a file path relative to `root` when
    the file lies under it; import paths and builtin targets as they are."""
    where, sep, attr = reference.rpartition(":")
    if not sep or not where.endswith(".py") or reference.startswith("builtin:"):
        return reference
    path = Path(where)
    full = (path if path.is_absolute() else root / path).resolve()
    try:
        return f"{full.relative_to(root.resolve()).as_posix()}:{attr}"
    except ValueError:  # outside the project: only this machine can find it
        return f"{full}:{attr}"


def reference_of(fn: Callable, root: Path) -> str | None:
    """How to load `fn` again: 'package.module:qualname' when its module is importable from
    `root` or installed, else 'path/relative/to/root.py:qualname' for a file under `root` (a
    test module pytest imported by its directory); None for a lambda, a local function or a
    callable of __main__."""
    module_name = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module_name or not qualname or "<" in qualname or module_name == "__main__":
        return None
    module = sys.modules.get(module_name)
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if obj is not fn:
        return None
    file = getattr(module, "__file__", None)
    if file is None:
        return f"{module_name}:{qualname}"
    file_path = Path(file).resolve()
    try:
        relative = file_path.relative_to(root.resolve())
    except ValueError:
        return f"{module_name}:{qualname}"  # an installed package: importable by name
    as_module = Path(*module_name.split("."))
    if relative.with_suffix("") in (as_module, as_module / "__init__"):
        return f"{module_name}:{qualname}"  # importable from the root
    return f"{relative.as_posix()}:{qualname}"


def shown_path(path: Path) -> str:
    """A replay file's path as a command shows it: relative to the current directory (the
    project root, where the command is pasted) when it lies under it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def replay_command(path: Path, *, loadable: bool, kernel_name: str) -> str:
    """The one line that re-runs a saved case: the command when the file names a loadable
    target, else the Python call with the callable."""
    shown = shown_path(path)
    if loadable:
        return f"python -m actverify replay {shlex.quote(shown)}"
    return f"actverify.replay({shown!r}, kernel={kernel_name})"


def _on_path(root: Path) -> None:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def replay_target(blob: dict, *, kernel: Callable | None = None, root: str | Path | None = None):
    """The Target a replay file names, found from `root`, the current directory, or the root
    the file records (in that order); `kernel` replaces it (and must be given when the file
    names none)."""
    from actverify.targets import resolve_target, target_from_callable

    reference, activation = blob.get("target"), blob["activation"]
    name = blob.get("target_name") or reference or "kernel"
    if kernel is not None:
        return target_from_callable(kernel, activation, source=reference,
                                    name=getattr(kernel, "__qualname__", None) or name)
    if reference is None:
        raise UsageError(f"the case was checked through the Python API with a callable that "
                         f"has no import path; re-run it in Python: "
                         f"actverify.replay(PATH, kernel={name.rsplit('.', 1)[-1]})")
    if reference.startswith("builtin:"):
        return resolve_target(reference, activation)
    roots = [Path(root)] if root is not None else [Path.cwd()]
    if root is None and blob.get("root"):
        roots.append(Path(blob["root"]))
    where, _, attr = reference.rpartition(":")
    first_error = None
    for base in roots:
        try:
            if where.endswith(".py") and not Path(where).is_absolute():
                if not (base / where).is_file():
                    raise UsageError(f"target file {where!r} is not under {base}")
                _on_path(base)  # the kernel file's own imports, relative to its project
                target = resolve_target(f"{base / where}:{attr}", activation)
            else:
                _on_path(base)
                target = resolve_target(reference, activation)
        except UsageError as exc:
            first_error = first_error or exc
            continue
        return dataclasses.replace(target, name=name, source=reference)
    raise UsageError(f"{first_error}; run the replay from the project root the case was "
                     f"found in, or pass --root DIR") from None


def replay(path: str | Path, kernel: Callable | None = None, *,
           root: str | Path | None = None) -> bool:
    """Re-run the check of one saved failing case, print what happens, and return whether the
    property holds now.  `kernel`: the callable to run (the Python API's way, for a kernel
    that was checked as a callable); `root`: where the target's path is relative to."""
    from actverify.runner import main_replay

    if not Path(path).is_file():
        raise UsageError(f"replay file {str(path)!r} does not exist")
    return main_replay(str(path), kernel=kernel, root=root) == 0
