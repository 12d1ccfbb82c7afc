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

// grid: (n_tokens), block: (kThreads); one block normalises one row.
template <typename T>
__global__ void rms_norm_kernel(T* __restrict__ out, const T* __restrict__ in,
                                const T* __restrict__ weight, int hidden, float eps) {
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

}  // namespace

template <typename T>
void launch_rms_norm(T* out, const T* in, const T* weight, int n_tokens, int hidden, float eps,
                     cudaStream_t stream) {
  if (n_tokens == 0) return;
  rms_norm_kernel<T><<<n_tokens, kThreads, 0, stream>>>(out, in, weight, hidden, eps);
  CUDA_CHECK(cudaGetLastError());
}

template void launch_rms_norm<float>(float*, const float*, const float*, int, int, float,
                                     cudaStream_t);
template void launch_rms_norm<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*,
                                             const __nv_bfloat16*, int, int, float, cudaStream_t);

}  // namespace shardwise::cuda
