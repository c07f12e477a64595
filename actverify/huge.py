"""The case of more than 2^31 elements: indices past the 32-bit boundary of GPU grids.

`past_boundary` calls a kernel once on a tensor of `boundary + 4097` elements (a repeating
ramp over [-8, 8]) and checks windows of 4096 elements (the start, across the boundary and the
tail) against the reference.  The ramp's period, 4093, is prime: a kernel whose index wraps
at a power of two reads other inputs there (with a period of 4096, dividing 2^31, the wrapped
element would hold the same value and the bug would pass).  The real case, boundary 2^31 (4 GiB of float16 in and out), is
opt-in: `pytest properties/test_huge.py --actverify-huge --actverify-device cuda`.  The same
code runs in the default tests with a boundary of 2^16 on the stand-in second device.
"""

from __future__ import annotations

import os

import torch

from actverify.accuracy import DEFAULT, compare
from actverify.devices import torch_device
from actverify.dtypes import float_format
from actverify.properties import Subject
from actverify.targets import Target

BOUNDARY = 2**31
WINDOW = 4096
PERIOD = 4093  # prime: no power-of-two boundary is a multiple of it


def windows(n: int, *, boundary: int = BOUNDARY, width: int = WINDOW) -> tuple[int, ...]:
    """First indices of the windows checked in a tensor of n elements: the start, one
    straddling the boundary, and the tail."""
    if not 0 < width <= boundary < n - width // 2:
        raise ValueError(f"need 0 < width <= boundary < n - width / 2, got n={n}, "
                         f"boundary={boundary}, width={width}")
    return (0, boundary - width // 2, n - width)


SAFETY = 0.9  # of the free memory: allocators round up and fragment


def free_bytes(device: str) -> int:
    """Memory free for new tensors on `device` now: the CUDA allocator's view of the GPU, or
    the host's available pages (the stand-in's tensors live there too)."""
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_shortfall(device: str, *, boundary: int = BOUNDARY, dtype: str = "float16"
                     ) -> str | None:
    """Why the check past `boundary` cannot run on `device` now (None: input and output
    fit in what is free), planned before anything is allocated."""
    n = boundary + WINDOW + 1
    needed = 2 * n * float_format(dtype).bits // 8 + 4 * WINDOW * 8
    free = free_bytes(device)
    if needed > SAFETY * free:
        return f"needs {needed / 2**30:.1f} GiB on {device}, {free / 2**30:.1f} GiB free"
    return None


def past_boundary(target: Target, device: str, *, boundary: int = BOUNDARY,
                  dtype: str = "float16") -> list[str]:
    """What goes wrong when `target` runs on more than `boundary` elements (empty: nothing)."""
    fmt = float_format(dtype)
    subject = Subject(target, fmt, device, DEFAULT)
    n = boundary + WINDOW + 1
    ramp = torch.linspace(-8, 8, PERIOD, dtype=fmt.dtype, device=torch_device(device))
    x = ramp.repeat(n // PERIOD + 1)[:n]
    y = subject.call(x)
    problems = []
    for start in windows(n, boundary=boundary):
        xs, ys = x[start:start + WINDOW], y[start:start + WINDOW].cpu()
        cmp = compare(ys, subject.reference(xs), fmt=fmt, bound=subject.bound(xs),
                      policy=DEFAULT, zero_sign_specified=False)
        if not cmp.ok:
            i = cmp.worst_index()
            problems.append(f"wrong results near element {start + i} of {n}: "
                            f"x = {float(xs[i])!r}, got {float(ys[i])!r}")
    return problems
