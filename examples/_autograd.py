"""Shared by the examples: the autograd plumbing around a sigmoid kernel pair.

A kernel author supplies forward(x) -> y and backward(g, y) -> g * y * (1 - y); this wraps
them into a torch.autograd.Function that saves the output, as PyTorch's own sigmoid does, and
differentiates the backward once more in torch ops (for second derivatives).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Kernel = Callable[..., torch.Tensor]


def sigmoid_function(forward: Kernel, backward: Kernel) -> type[torch.autograd.Function]:
    class SigmoidBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, g, y):
            ctx.save_for_backward(g, y)
            return backward(g, y)

        @staticmethod
        def backward(ctx, gg):  # double backward, in torch ops
            g, y = ctx.saved_tensors
            return gg * y * (1 - y), gg * g * (1 - 2 * y)

    class SigmoidFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = forward(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return SigmoidBackward.apply(g, y)

    return SigmoidFunction
