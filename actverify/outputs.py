"""Output paths given on the command line, checked before any work starts: a report that cannot
be written must be a usage error at once, not a traceback after the whole run."""

from __future__ import annotations

import os
from pathlib import Path

from actverify.errors import UsageError


def writable_file(path: str | Path, *, option: str) -> Path:
    """`path` as a file this process can create or replace: its folder exists and is writable,
    and it is not itself a folder.  UsageError, naming `option`, otherwise."""
    p = Path(path).expanduser()
    if str(path).strip() == "" or p.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a directory; give a file name")
    folder = p.parent
    if not folder.is_dir():
        raise UsageError(f"{option} {str(path)!r}: the directory {str(folder)!r} does not "
                         "exist; create it first")
    existed = p.exists()
    try:  # the only sure test (permissions, read-only file systems, root): open it
        with open(p, "ab"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {str(path)!r} cannot be written: "
                         f"{exc.strerror or exc}") from None
    if not existed:
        p.unlink(missing_ok=True)
    return p


def writable_dir(path: str | Path, *, option: str) -> Path:
    """`path` as a folder to write into: an existing folder, or one that can be created (its
    nearest existing ancestor is a writable folder).  UsageError otherwise."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a file; give a directory")
    ancestor = p
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {str(path)!r} cannot be created or written here")
    return p
