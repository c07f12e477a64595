"""A C++ extension (torch.utils.cpp_extension.load_inline) with CPU kernels for sigmoid, relu
and leaky_relu, forward and backward, wrapped in torch.autograd.Function.

    actverify check examples/cpp_extension.py:sigmoid --activation sigmoid
    actverify check examples/cpp_extension.py:relu --activation relu
    actverify check examples/cpp_extension.py:leaky_relu --activation leaky_relu

The extension is compiled on first use (about a minute on two cores) into a build directory
under the system temp dir (tempfile.gettempdir()/actverify-examples/...), never in the
repository; later uses only load it.  It needs a C++ compiler (and ninja).

The kernels take float16, bfloat16, float32 and float64 CPU tensors: 16-bit inputs are
computed in float (at::opmath_type) and rounded once.  The backwards are C++ kernels too; the
backward of a backward (for gradgradcheck and the second derivative) is written in torch ops,
so the wrappers support double backward.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile

import torch
from torch.utils import cpp_extension

import actverify
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # examples/ load each other
from _autograd import sigmoid_function  # noqa: E402

NAME = "actverify_example_activations"
DTYPES = ["float16", "bfloat16", "float32", "float64"]

CPP_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <cmath>

namespace {

template <typename T>
inline T sigmoid_of(T x) {
  // exp(-|x|) never overflows; e / (1 + e) keeps the small results for x < 0 accurate.
  const T e = std::exp(-std::abs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <typename T>
inline T relu_of(T x) {
  return (x > T(0) || std::isnan(x)) ? x : T(0);  // NaN propagates; relu(-0) = +0
}

// out[i] = f(a[i], b[i]) over contiguous tensors of one dtype, computed in opmath (float for
// the 16-bit types) and rounded once.
template <typename F>
torch::Tensor map2(const torch::Tensor& a_in, const torch::Tensor& b_in, const char* name, F f) {
  TORCH_CHECK(a_in.device().is_cpu(), name, ": CPU tensors only");
  TORCH_CHECK(a_in.scalar_type() == b_in.scalar_type(), name, ": dtypes differ");
  TORCH_CHECK(a_in.sizes() == b_in.sizes(), name, ": shapes differ");
  auto a = a_in.contiguous();
  auto b = b_in.contiguous();
  auto out = torch::empty_like(a, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "actverify_example_map2", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* pb = b.data_ptr<scalar_t>();
    scalar_t* po = out.data_ptr<scalar_t>();
    at::parallel_for(0, a.numel(), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        po[i] = static_cast<scalar_t>(f(static_cast<opmath_t>(pa[i]), static_cast<opmath_t>(pb[i])));
      }
    });
  });
  return out;
}

}  // namespace

torch::Tensor sigmoid_forward(torch::Tensor x) {
  return map2(x, x, "sigmoid_forward", [](auto v, auto) { return sigmoid_of(v); });
}

// g * y * (1 - y) from the saved output y.
torch::Tensor sigmoid_backward(torch::Tensor g, torch::Tensor y) {
  return map2(g, y, "sigmoid_backward", [](auto gv, auto yv) {
    using T = decltype(yv);
    return gv * (yv * (T(1) - yv));
  });
}

torch::Tensor relu_forward(torch::Tensor x) {
  return map2(x, x, "relu_forward", [](auto v, auto) { return relu_of(v); });
}

// g where x > 0, else 0 (PyTorch's convention at the kink and for NaN inputs).
torch::Tensor relu_backward(torch::Tensor g, torch::Tensor x) {
  return map2(g, x, "relu_backward", [](auto gv, auto xv) {
    using T = decltype(xv);
    return xv > T(0) ? gv : T(0);
  });
}

// The slope is rounded to the compute type (float for 16- and 32-bit inputs), as in PyTorch.
torch::Tensor leaky_relu_forward(torch::Tensor x, double negative_slope) {
  return map2(x, x, "leaky_relu_forward", [negative_slope](auto v, auto) {
    using T = decltype(v);
    return v > T(0) ? v : v * static_cast<T>(negative_slope);
  });
}

torch::Tensor leaky_relu_backward(torch::Tensor g, torch::Tensor x, double negative_slope) {
  return map2(g, x, "leaky_relu_backward", [negative_slope](auto gv, auto xv) {
    using T = decltype(xv);
    return xv > T(0) ? gv : gv * static_cast<T>(negative_slope);
  });
}
"""

FUNCTIONS = ["sigmoid_forward", "sigmoid_backward", "relu_forward", "relu_backward",
             "leaky_relu_forward", "leaky_relu_backward"]


def build_directory() -> str:
    """Where the extension is built: under the system temp dir, per Python and torch version."""
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}"
    path = os.path.join(tempfile.gettempdir(), "actverify-examples", f"cpp-{tag}")
    os.makedirs(path, exist_ok=True)
    return path


@functools.lru_cache(maxsize=None)
def extension():
    """Compile (first time) and load the extension; cached per process."""
    return cpp_extension.load_inline(
        name=NAME, cpp_sources=[CPP_SOURCE], functions=FUNCTIONS,
        extra_cflags=["-O2"], build_directory=build_directory(), verbose=False)


# ------------------------------------------------------------------------------- autograd

SigmoidFunction = sigmoid_function(lambda x: extension().sigmoid_forward(x),
                                   lambda g, y: extension().sigmoid_backward(g, y))


class _ReluBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, x):
        ctx.save_for_backward(x)
        return extension().relu_backward(g, x)

    @staticmethod
    def backward(ctx, gg):  # linear in g; zero derivative in x almost everywhere
        (x,) = ctx.saved_tensors
        return _ReluBackward.apply(gg, x), None


class ReluFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return extension().relu_forward(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return _ReluBackward.apply(g, x)


class _LeakyReluBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        return extension().leaky_relu_backward(g, x, negative_slope)

    @staticmethod
    def backward(ctx, gg):
        (x,) = ctx.saved_tensors
        return _LeakyReluBackward.apply(gg, x, ctx.negative_slope), None, None


class LeakyReluFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, negative_slope):
        ctx.save_for_backward(x)
        ctx.negative_slope = negative_slope
        return extension().leaky_relu_forward(x, negative_slope)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return _LeakyReluBackward.apply(g, x, ctx.negative_slope), None


# ------------------------------------------------------------------- the checked kernels

@actverify.declare(dtypes=DTYPES, devices=["cpu"])
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return SigmoidFunction.apply(x)


@actverify.declare(dtypes=DTYPES, devices=["cpu"])
def relu(x: torch.Tensor) -> torch.Tensor:
    return ReluFunction.apply(x)


@actverify.declare(dtypes=DTYPES, devices=["cpu"])
def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    return LeakyReluFunction.apply(x, float(negative_slope))


__all__ = ["sigmoid", "relu", "leaky_relu", "extension", "build_directory"]
