#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/check.h"
#include "kernels/cuda/rotary.h"

namespace shardwise::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxHalf = 128;  // head_dim up to 256

// Rotates one head in place: element i pairs with i + half.
template <typename T>
__device__ void rotate_pair(T* head, int i, int half, float cos, float sin) {
  const float x1 = static_cast<float>(head[i]);
  const float x2 = static_cast<float>(head[i + half]);
  head[i] = static_cast<T>(x1 * cos - x2 * sin);
  head[i + half] = static_cast<T>(x2 * cos + x1 * sin);
}

// grid: (n_tokens), block: (kThreads); one block rotates every q and k head of one token.
// cos/sin are computed once per token into shared memory, in fp32 with the precise sincosf
// (positions reach 128k, where the fast __sincosf loses several digits).
template <typename T>
__global__ void rotary_kernel(T* __restrict__ q, T* __restrict__ k,
                              const int32_t* __restrict__ positions,
                              const float* __restrict__ inv_freq, int n_heads, int n_kv_heads,
                              int head_dim, int q_row_stride, int k_row_stride) {
  __shared__ float cos_table[kMaxHalf];
  __shared__ float sin_table[kMaxHalf];
  const int half = head_dim / 2;
  const float position = static_cast<float>(positions[blockIdx.x]);
  for (int i = threadIdx.x; i < half; i += kThreads) {
    sincosf(position * inv_freq[i], &sin_table[i], &cos_table[i]);
  }
  __syncthreads();
  T* q_row = q + static_cast<size_t>(blockIdx.x) * q_row_stride;
  T* k_row = k + static_cast<size_t>(blockIdx.x) * k_row_stride;
  const int q_pairs = n_heads * half;
  const int total_pairs = (n_heads + n_kv_heads) * half;
  for (int pair = threadIdx.x; pair < total_pairs; pair += kThreads) {
    const bool is_q = pair < q_pairs;
    const int local = is_q ? pair : pair - q_pairs;
    const int head = local / half;
    const int i = local % half;
    T* base = (is_q ? q_row : k_row) + static_cast<size_t>(head) * head_dim;
    rotate_pair(base, i, half, cos_table[i], sin_table[i]);
  }
}

}  // namespace

template <typename T>
void launch_rotary(T* q, T* k, const int32_t* positions, const float* inv_freq, int n_tokens,
                   int n_heads, int n_kv_heads, int head_dim, int q_row_stride, int k_row_stride,
                   cudaStream_t stream) {
  SW_CHECK(head_dim % 2 == 0 && head_dim / 2 <= kMaxHalf);
  if (n_tokens == 0) return;
  rotary_kernel<T><<<n_tokens, kThreads, 0, stream>>>(
      q, k, positions, inv_freq, n_heads, n_kv_heads, head_dim, q_row_stride, k_row_stride);
  CUDA_CHECK(cudaGetLastError());
}

#define SW_INSTANTIATE(T)                                                                       \
  template void launch_rotary<T>(T*, T*, const int32_t*, const float*, int, int, int, int, int, \
                                 int, cudaStream_t);
SW_INSTANTIATE(float)
SW_INSTANTIATE(__nv_bfloat16)
SW_INSTANTIATE(__half)
#undef SW_INSTANTIATE

}  // namespace shardwise::cuda
