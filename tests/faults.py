"""Kernels with one fault each, for the fault-injection matrix (tests/test_faults.py).

Each is a sigmoid (`torch.sigmoid`'s signature) that misbehaves in one way a real kernel can:
the checker must report every one of them, and never as "conforms" with exit status 0.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import sys
import time

import torch

import actverify


def correct(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def raises(x: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("kernel launch failed")


def garbage(x: torch.Tensor) -> torch.Tensor:
    return torch.full(x.shape, 7.0, dtype=torch.float64)  # wrong dtype, wrong values


@actverify.declare(devices=["cuda"])
def cuda_only(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def hangs_in_python(x: torch.Tensor) -> torch.Tensor:
    while True:
        pass


def hangs_in_c(x: torch.Tensor) -> torch.Tensor:
    # A wait in C that no Python signal handler can end: the signals that would interrupt it
    # are blocked, as a kernel waiting on a device or a lock effectively does.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGINT, signal.SIGTERM})
    ctypes.CDLL(None).sleep(3600)
    return torch.sigmoid(x)


def segfaults(x: torch.Tensor) -> torch.Tensor:
    ctypes.string_at(0)  # reads address 0: SIGSEGV
    return torch.sigmoid(x)


def os_exit(x: torch.Tensor) -> torch.Tensor:
    os._exit(0)


def sys_exit(x: torch.Tensor) -> torch.Tensor:
    sys.exit(0)


def slow(x: torch.Tensor) -> torch.Tensor:
    time.sleep(0.5)
    return torch.sigmoid(x)


def noisy(x: torch.Tensor) -> torch.Tensor:
    """Nondeterministic through Python's global RNG: one element, chosen at random on every
    call, off by one ulp (two calls differ unless they pick the same element)."""
    y = torch.sigmoid(x)
    if y.numel():
        flat = y.reshape(-1).clone()
        i = int(random.random() * flat.numel())
        flat[i] = torch.nextafter(flat[i], torch.tensor(2.0, dtype=y.dtype))
        y = flat.reshape(y.shape)
    return y
