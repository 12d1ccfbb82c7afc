#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/check.h"
#include "kernels/cuda/rms_norm.h"

namespace shardwise::cuda {
namespace {

constexpr int kThreads = 256;

__device__ float block_sum(float value) {
  __shared__ float warp_sums[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffff, value, offset);
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) warp_sums[warp] = value;
  __syncthreads();
  value = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : 0.0f;
  if (warp == 0) {
    for (int offset = 16; offset > 0; offset /= 2)
      value += __shfl_xor_sync(0xffffffff, value, offset);
    if (threadIdx.x == 0) warp_sums[0] = value;
  }
  __syncthreads();
  return warp_sums[0];
}

// grid: (n_tokens), block: (kThreads); one block normalises one row. out and in are not
// __restrict__: out may alias in (the header's contract).
template <typename T>
__global__ void rms_norm_kernel(T* out,                        // [n_tokens, hidden]
                                const T* in,                   // [n_tokens, hidden]
                                const T* __restrict__ weight,  // [hidden]
                                int hidden, float eps) {
  const T* row_in = in + static_cast<size_t>(blockIdx.x) * hidden;
  T* row_out = out + static_cast<size_t>(blockIdx.x) * hidden;
  float sum_squares = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += kThreads) {
    const float x = static_cast<float>(row_in[i]);
    sum_squares += x * x;
  }
  const float inv_rms = rsqrtf(block_sum(sum_squares) / hidden + eps);
  for (int i = threadIdx.x; i < hidden; i += kThreads) {
    row_out[i] =
        static_cast<T>(static_cast<float>(weight[i]) * (static_cast<float>(row_in[i]) * inv_rms));
  }
}

// grid: (n_tokens), block: (kThreads); one block adds and normalises one row. The sum is
// rounded to T and stored first; the second loop re-reads the stored (rounded) values, so the
// result equals an unfused add followed by rms_norm.
template <typename T>
__global__ void fused_add_rms_norm_kernel(T* out, T* residual, const T* x,
                                          const T* __restrict__ weight, int hidden, float eps) {
  const size_t row = static_cast<size_t>(blockIdx.x) * hidden;
  float sum_squares = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += kThreads) {
    const T sum =
        static_cast<T>(static_cast<float>(residual[row + i]) + static_cast<float>(x[row + i]));
    residual[row + i] = sum;
    const float value = static_cast<float>(sum);
    sum_squares += value * value;
  }
  const float inv_rms = rsqrtf(block_sum(sum_squares) / hidden + eps);
  // Each thread reads back only the elements it stored itself: no barrier needed beyond
  // block_sum's.
  for (int i = threadIdx.x; i < hidden; i += kThreads) {
    out[row + i] = static_cast<T>(static_cast<float>(weight[i]) *
                                  (static_cast<float>(residual[row + i]) * inv_rms));
  }
}

}  // namespace

template <typename T>
void launch_rms_norm(T* out, const T* in, const T* weight, int n_tokens, int hidden, float eps,
                     cudaStream_t stream) {
  if (n_tokens == 0) return;
  rms_norm_kernel<T><<<n_tokens, kThreads, 0, stream>>>(out, in, weight, hidden, eps);
  CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void launch_fused_add_rms_norm(T* out, T* residual, const T* x, const T* weight, int n_tokens,
                               int hidden, float eps, cudaStream_t stream) {
  if (n_tokens == 0) return;
  fused_add_rms_norm_kernel<T>
      <<<n_tokens, kThreads, 0, stream>>>(out, residual, x, weight, hidden, eps);
  CUDA_CHECK(cudaGetLastError());
}

#define SW_INSTANTIATE(T)                                                                  \
  template void launch_rms_norm<T>(T*, const T*, const T*, int, int, float, cudaStream_t); \
  template void launch_fused_add_rms_norm<T>(T*, T*, const T*, const T*, int, int, float,  \
                                             cudaStream_t);
SW_INSTANTIATE(float)
SW_INSTANTIATE(__nv_bfloat16)
SW_INSTANTIATE(__half)
#undef SW_INSTANTIATE

}  // namespace shardwise::cuda
