"""A CUDA extension (examples/cuda/activations.cu, built with torch.utils.cpp_extension.load)
with elementwise kernels for sigmoid (forward and backward), tanh, relu, leaky_relu and step.

    actverify check examples/cuda_extension.py:sigmoid --activation sigmoid --device cuda

It is built and checked only where a CUDA device and toolkit exist: `unavailable()` says why
not, and the kernels raise RuntimeError with that reason.  The build goes to a directory under
the system temp dir, never into the repository.  All kernels declare devices=["cuda"].

Where there is no GPU, `compile_only()` still compiles the .cu source to an object file with
nvcc (when nvcc is on PATH), as a syntax and type check: a CPU-only torch wheel ships the CUDA
headers of c10 but not the generated c10/cuda/impl/cuda_cmake_macros.h, which compile_only
supplies as a stub.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import torch
from torch.utils import cpp_extension

import actverify
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # examples/ load each other
from _autograd import sigmoid_function  # noqa: E402

NAME = "actverify_example_cuda"
SOURCE = Path(__file__).resolve().parent / "cuda" / "activations.cu"
DTYPES = ["float16", "bfloat16", "float32", "float64"]
LIMITS = "CUDA tensors only"


def unavailable() -> str | None:
    """Why the extension cannot be built and run here, or None when it can."""
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    if cpp_extension.CUDA_HOME is None:
        return "no CUDA toolkit (CUDA_HOME not found)"
    return None


def build_directory(kind: str = "cuda") -> str:
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}-torch{torch.__version__}"
    path = os.path.join(tempfile.gettempdir(), "actverify-examples", f"{kind}-{tag}")
    os.makedirs(path, exist_ok=True)
    return path


@functools.lru_cache(maxsize=None)
def extension():
    reason = unavailable()
    if reason is not None:
        raise RuntimeError(f"the CUDA extension cannot run here: {reason}")
    return cpp_extension.load(name=NAME, sources=[str(SOURCE)], extra_cuda_cflags=["-O2"],
                              build_directory=build_directory(), verbose=False)


def compile_only(output: str | os.PathLike | None = None, *, timeout: float = 600) -> Path:
    """Compile the .cu source to an object file with nvcc (no GPU needed): a syntax check.

    Raises FileNotFoundError without nvcc, subprocess.CalledProcessError (with nvcc's output)
    when the source does not compile."""
    nvcc = shutil.which("nvcc") or (os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc")
                                    if cpp_extension.CUDA_HOME else None)
    if nvcc is None or not os.path.exists(nvcc):
        raise FileNotFoundError("nvcc not found")
    work = Path(build_directory("nvcc-check"))
    stub = work / "stub" / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    real = Path(torch.__file__).parent / "include" / "c10" / "cuda" / "impl" / stub.name
    includes = [f"-I{p}" for p in cpp_extension.include_paths()]
    if not real.exists():  # CPU-only wheel: the header CMake generates for CUDA builds
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n")
        includes.insert(0, f"-I{work / 'stub'}")
    out = Path(output) if output else work / "activations.o"
    cmd = [nvcc, "-c", str(SOURCE), "-o", str(out), *includes,
           f"-I{sysconfig.get_paths()['include']}", "-std=c++20", "-O0",
           f"-DTORCH_EXTENSION_NAME={NAME}", "-DTORCH_API_INCLUDE_EXTENSION_H",
           f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    return out


# ------------------------------------------------------------------------------- autograd

SigmoidFunction = sigmoid_function(lambda x: extension().sigmoid_forward(x),
                                   lambda g, y: extension().sigmoid_backward(g, y))


# ------------------------------------------------------------------- the checked kernels

@actverify.declare(dtypes=DTYPES, devices=["cuda"], limits=LIMITS)
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return SigmoidFunction.apply(x)


@actverify.declare(dtypes=DTYPES, devices=["cuda"], backward=False, limits=LIMITS)
def tanh(x: torch.Tensor) -> torch.Tensor:
    return extension().tanh_forward(x)


@actverify.declare(dtypes=DTYPES, devices=["cuda"], backward=False, limits=LIMITS)
def relu(x: torch.Tensor) -> torch.Tensor:
    return extension().relu_forward(x)


@actverify.declare(dtypes=DTYPES, devices=["cuda"], backward=False, limits=LIMITS)
def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    return extension().leaky_relu_forward(x, float(negative_slope))


@actverify.declare(dtypes=DTYPES, devices=["cuda"], backward=False, limits=LIMITS)
def step(x: torch.Tensor) -> torch.Tensor:
    return extension().step_forward(x)


__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "step", "unavailable", "compile_only",
           "extension"]


if __name__ == "__main__":  # python examples/cuda_extension.py: compile-check the source
    print(f"compiled {SOURCE} to {compile_only()}")
