// CUDA kernels for the activations, built by examples/cuda_extension.py with
// torch.utils.cpp_extension.load.  Each kernel reads a contiguous tensor of float16, bfloat16,
// float32 or float64, computes in float (double for double: at::opmath_type) and rounds once.
//
//   sigmoid_forward(x), sigmoid_backward(g, y)   g * y * (1 - y) from the saved output
//   tanh_forward(x), relu_forward(x), leaky_relu_forward(x, slope), step_forward(x)

#include <torch/extension.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cuda_runtime.h>

namespace {

__device__ __forceinline__ float exp_of(float x) { return expf(x); }
__device__ __forceinline__ double exp_of(double x) { return exp(x); }
__device__ __forceinline__ float tanh_of(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_of(double x) { return tanh(x); }

struct Sigmoid {
  template <typename T>
  __device__ T operator()(T x, T) const {
    const T e = exp_of(-fabs(x));  // never overflows
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
  }
};

struct SigmoidBackward {  // a = g, b = y
  template <typename T>
  __device__ T operator()(T g, T y) const { return g * (y * (T(1) - y)); }
};

struct Tanh {
  template <typename T>
  __device__ T operator()(T x, T) const { return tanh_of(x); }
};

struct Relu {
  template <typename T>
  __device__ T operator()(T x, T) const { return (x > T(0) || isnan(x)) ? x : T(0); }
};

struct LeakyRelu {
  double slope;  // rounded to the compute type: float for 16- and 32-bit inputs, as PyTorch
  template <typename T>
  __device__ T operator()(T x, T) const { return x > T(0) ? x : x * static_cast<T>(slope); }
};

struct Step {
  template <typename T>
  __device__ T operator()(T x, T) const { return x > T(0) ? T(1) : T(0); }  // step(NaN) = 0
};

template <typename scalar_t, typename Op>
__global__ void map2_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                            scalar_t* __restrict__ out, int64_t n, Op op) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    out[i] = static_cast<scalar_t>(op(static_cast<opmath_t>(a[i]), static_cast<opmath_t>(b[i])));
  }
}

template <typename Op>
torch::Tensor map2(const torch::Tensor& a_in, const torch::Tensor& b_in, const char* name,
                   Op op) {
  TORCH_CHECK(a_in.is_cuda() && b_in.is_cuda(), name, ": CUDA tensors only");
  TORCH_CHECK(a_in.scalar_type() == b_in.scalar_type(), name, ": dtypes differ");
  TORCH_CHECK(a_in.sizes() == b_in.sizes(), name, ": shapes differ");
  const c10::cuda::OptionalCUDAGuard guard(a_in.device());
  auto a = a_in.contiguous();
  auto b = b_in.contiguous();
  auto out = torch::empty_like(a, at::MemoryFormat::Contiguous);
  const int64_t n = a.numel();
  if (n == 0) return out;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(),
                                  "actverify_example_cuda_map2", [&] {
    map2_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
        a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), n, op);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

torch::Tensor sigmoid_forward(torch::Tensor x) { return map2(x, x, "sigmoid_forward", Sigmoid{}); }

torch::Tensor sigmoid_backward(torch::Tensor g, torch::Tensor y) {
  return map2(g, y, "sigmoid_backward", SigmoidBackward{});
}

torch::Tensor tanh_forward(torch::Tensor x) { return map2(x, x, "tanh_forward", Tanh{}); }

torch::Tensor relu_forward(torch::Tensor x) { return map2(x, x, "relu_forward", Relu{}); }

torch::Tensor leaky_relu_forward(torch::Tensor x, double negative_slope) {
  return map2(x, x, "leaky_relu_forward", LeakyRelu{negative_slope});
}

torch::Tensor step_forward(torch::Tensor x) { return map2(x, x, "step_forward", Step{}); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("sigmoid_forward", &sigmoid_forward, "sigmoid (CUDA)");
  m.def("sigmoid_backward", &sigmoid_backward, "g * y * (1 - y) (CUDA)");
  m.def("tanh_forward", &tanh_forward, "tanh (CUDA)");
  m.def("relu_forward", &relu_forward, "relu (CUDA)");
  m.def("leaky_relu_forward", &leaky_relu_forward, "leaky_relu (CUDA)");
  m.def("step_forward", &step_forward, "binary step, heaviside(x, 0) (CUDA)");
}
