"""Opt-in: a tensor of more than 2^31 elements, crossing the 32-bit index boundary of GPU
grids.  Needs memory (4 GiB for float16 input and output each), planned from what is free on
the device before anything is allocated; run with
`pytest properties/test_huge.py --actverify-huge --actverify-device cuda`."""

import os

import numpy as np
import pytest
import torch

from actverify.accuracy import compare, policy_named
from actverify.dtypes import float_format
from actverify.spec import get_spec

N = 2**31 + 4097


WINDOW = 4096
SAFETY = 0.9  # of the free memory: allocators round up and fragment


def free_bytes(device: str) -> int:
    """Memory free for new tensors on `device` now: the CUDA allocator's view of the GPU, or
    the host's available pages."""
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def plan(device: str, fmt_bytes: int) -> None:
    """Skip, saying how much is needed and free, unless input and output fit."""
    needed = 2 * N * fmt_bytes + 4 * WINDOW * 8
    free = free_bytes(device)
    if needed > SAFETY * free:
        pytest.skip(f"needs {needed / 2**30:.1f} GiB on {device}, {free / 2**30:.1f} GiB free")


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_elements_past_2_to_the_31(activation, huge_device):
    spec, fmt = get_spec(activation), float_format("float16")
    plan(huge_device, fmt.bits // 8)
    x = torch.linspace(-8, 8, WINDOW, dtype=torch.float16, device=huge_device).repeat(
        N // WINDOW + 1)[:N]
    y = spec.canonical.fn(x)
    # Windows around the 2^31 boundary and the tail, against the reference.
    for start in (0, 2**31 - WINDOW // 2, N - WINDOW):
        xs, ys = x[start:start + WINDOW], y[start:start + WINDOW]
        ref = spec.reference(xs.cpu().double().numpy())
        cmp = compare(ys.cpu(), ref, fmt=fmt, bound=spec.bound(fmt).evaluate(ref, {}, fmt),
                      policy=policy_named("default"), zero_sign_specified=False)
        assert cmp.ok, f"wrong results near element {start + int(np.argmax(cmp.bad))}"
