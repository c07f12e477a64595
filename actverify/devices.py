"""Devices: the one place that knows which devices exist and how they are named.

Every property, strategy and command takes a device string; nothing else in actverify asks
torch about hardware, so CUDA (or any other backend torch offers) slots in here.

Besides the devices torch offers there is a stand-in second device, `cpu:1` (docs/cuda.md):
its tensors are ordinary CPU tensors (torch itself reads "cpu:1" as the CPU), but every call
of a kernel on it runs in a child process whose ATen CPU kernels were chosen for another
instruction-set capability (`ATEN_CPU_CAPABILITY=default`: the scalar bodies, where this
process runs the AVX2/AVX-512 ones).  It exists so that everything that runs only off the CPU
(cross-device agreement, `actverify gpu-check`'s flow) runs, and is tested, on any machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from actverify.errors import UsageError

# The stand-in second device, and the ATen CPU capability its kernels run under.
STAND_IN = "cpu:1"
STAND_IN_CAPABILITY = "default"
# ATen's CPU capabilities on x86, lowest first (aten/src/ATen/native/DispatchStub.h).
X86_CAPABILITIES = ("default", "avx2", "avx512")


def available_devices() -> tuple[str, ...]:
    """Devices present on this machine, CPU first (the stand-in is never listed: it is asked
    for by name, or used by the cross-device properties when no accelerator is present)."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return tuple(found)


KNOWN_DEVICES = ("cpu", "cuda", "mps")


def is_stand_in(device: str) -> bool:
    return device == STAND_IN


def is_second_device(device: str) -> bool:
    """Whether `device` is compared against the CPU by the cross-device properties: an
    accelerator, or the stand-in."""
    return is_stand_in(device) or device.split(":", 1)[0] != "cpu"


def second_device(devices: list[str] | tuple[str, ...]) -> str | None:
    """The device the cross-device properties run on when `devices` holds no second device
    (the stand-in), or None when one of them is one."""
    return None if any(is_second_device(d) for d in devices) else STAND_IN


def resolve_device(name: str) -> str:
    """Validate a device name; asking for a device that is absent is an error, never a skip."""
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"device must be a name such as 'cpu' or 'cuda', got {name!r}")
    name = name.strip().lower()
    kind, _, index = name.partition(":")
    if kind not in KNOWN_DEVICES:
        raise UsageError(f"unknown device {name!r}; use one of {', '.join(KNOWN_DEVICES)} "
                         f"(or {STAND_IN}, the stand-in second device)")
    if kind == "cpu" and index not in ("", "0", "1"):
        # torch reads any cpu:N as the CPU: refuse all but the stand-in, rather than check the
        # CPU twice under two names.
        raise UsageError(f"there is no device {name!r}; use 'cpu', or {STAND_IN!r} for the "
                         "stand-in second device (docs/cuda.md)")
    if kind not in available_devices():
        raise UsageError(
            f"device {name!r} is not present on this machine (present: "
            f"{', '.join(available_devices())}); drop the option to check the devices present"
        )
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise UsageError(f"device {name!r} is not present: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s), cuda:0 and up")
    return "cpu" if name == "cpu:0" else name


def torch_device(device: str) -> str:
    """The torch device that holds tensors "on" `device` (the stand-in's are CPU tensors)."""
    return "cpu" if is_stand_in(device) else device


# ------------------------------------------------------------------ CPU capabilities


def current_capability() -> str:
    """The ATen CPU capability this process's kernels were chosen for (lower case)."""
    return torch.backends.cpu.get_cpu_capability().lower()


def _cpu_flags() -> set[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None


def cpu_capabilities() -> tuple[str, ...]:
    """The ATen CPU capabilities this machine can run, lowest first.

    Without ATEN_CPU_CAPABILITY in the environment torch picks the highest one the CPU
    supports, so everything up to the current one runs; with it set (it can only lower the
    choice), the CPU's flags say what the hardware could do."""
    current = current_capability()
    if current not in X86_CAPABILITIES:  # another architecture: its own names
        return ("default",) if current == "default" else ("default", current)
    if os.environ.get("ATEN_CPU_CAPABILITY") is None:
        return X86_CAPABILITIES[:X86_CAPABILITIES.index(current) + 1]
    flags = _cpu_flags()
    if flags is None:
        return X86_CAPABILITIES[:X86_CAPABILITIES.index(current) + 1]
    found = ["default"]
    if {"avx2", "fma"} <= flags:
        found.append("avx2")
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
            found.append("avx512")
    return tuple(found)


def check_capability(name: str) -> str:
    """Validate an ATen CPU capability name against what this machine can run."""
    wanted = name.strip().lower()
    supported = cpu_capabilities()
    if wanted not in supported:
        raise UsageError(f"CPU capability {name!r} is not available on this machine; use one "
                         f"of {', '.join(supported)}")
    return wanted
