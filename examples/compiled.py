"""torch.compile'd activations (TorchInductor: generated C++ on CPU, Triton on CUDA).

    actverify check examples/compiled.py:sigmoid --activation sigmoid
    actverify check examples/compiled.py:softmax --activation softmax --dtype float32

Each function is compiled with dynamic shapes and fullgraph=True, so that the many shapes,
dtypes and layouts actverify draws cause few recompilations, and the recompile limit is raised
(each dtype, rank and layout class is still a graph of its own).  Past the limit,
fullgraph=True makes dynamo raise (FailOnRecompileLimitHit) rather than silently run the
eager code, which would no longer test the compiled kernel.
The first check compiles (seconds per graph with a C++ compiler); Inductor caches the code
under the system temp dir.

What to expect (documented conventions the default policy accepts): inductor computes
relu(-0) = +0 (IEEE maximum), PyTorch eager gives -0.  Compiled backwards come from
AOTAutograd, which does not support double backward: `second_derivative` and `gradcheck`
(its gradgradcheck half) report that.
"""

from __future__ import annotations

import torch
import torch._dynamo
import torch.nn.functional as F

# Past the limit dynamo falls back to eager silently: keep compiling what actverify draws.
torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
torch._dynamo.config.accumulated_recompile_limit = max(
    torch._dynamo.config.accumulated_recompile_limit, 1024)

def _compile(fn):
    return torch.compile(fn, dynamic=True, fullgraph=True)


_sigmoid = _compile(lambda x: torch.sigmoid(x))
_tanh = _compile(lambda x: torch.tanh(x))
_relu = _compile(lambda x: F.relu(x))
_leaky_relu = _compile(lambda x, negative_slope: F.leaky_relu(x, negative_slope))
# The reduction dim is moved last outside the compiled code: one graph serves every dim
# (softmax over dim 0 of a 3-d tensor would otherwise be a graph of its own).
_softmax_last = _compile(lambda x: F.softmax(x, -1))
_step = _compile(lambda x: torch.heaviside(x, torch.zeros((), dtype=x.dtype, device=x.device)))


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return _sigmoid(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    return _tanh(x)


def relu(x: torch.Tensor) -> torch.Tensor:
    return _relu(x)


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    return _leaky_relu(x, negative_slope)


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    if x.dim() == 0:
        return _softmax_last(x.reshape(1)).reshape(())
    return _softmax_last(x.movedim(dim, -1)).movedim(-1, dim)


def step(x: torch.Tensor) -> torch.Tensor:
    return _step(x)


__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "softmax", "step"]
