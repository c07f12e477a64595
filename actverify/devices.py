"""Devices: the one place that knows which devices exist and how they are named.

Every property, strategy and command takes a device string; nothing else in actverify asks
torch about hardware, so CUDA (or any other backend torch offers) slots in here.
"""

from __future__ import annotations

import torch

from actverify.errors import UsageError


def available_devices() -> tuple[str, ...]:
    """Devices present on this machine, CPU first."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return tuple(found)


KNOWN_DEVICES = ("cpu", "cuda", "mps")


def resolve_device(name: str) -> str:
    """Validate a device name; asking for a device that is absent is an error, never a skip."""
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"device must be a name such as 'cpu' or 'cuda', got {name!r}")
    name = name.strip().lower()
    kind, sep, index = name.partition(":")
    if kind not in KNOWN_DEVICES:
        raise UsageError(f"unknown device {name!r}; use one of {', '.join(KNOWN_DEVICES)}")
    if sep and not index.isdigit():
        raise UsageError(f"device {name!r}: the index after ':' must be a number, e.g. {kind}:0")
    if sep and kind == "cpu" and int(index) != 0:  # torch has one CPU device
        raise UsageError(f"device {name!r} does not exist: the CPU is cpu (or cpu:0)")
    if kind not in available_devices():
        raise UsageError(
            f"device {name!r} is not present on this machine (present: "
            f"{', '.join(available_devices())}); drop the option to check the devices present"
        )
    if sep and kind == "cuda" and int(index) >= torch.cuda.device_count():
        raise UsageError(f"device {name!r} is not present: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s), cuda:0 and up")
    return name
