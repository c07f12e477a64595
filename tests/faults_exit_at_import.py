"""A kernel module that ends the process while being imported (tests/test_faults.py)."""

import sys

import torch

sys.exit(0)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)
