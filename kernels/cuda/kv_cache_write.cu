#include "common/check.h"
#include "kernels/cuda/attention_utils.cuh"
#include "kernels/cuda/kv_cache_write.h"

namespace shardwise::cuda {
namespace {

constexpr int kThreads = 128;

// grid: (n_tokens), block: (kThreads); one block copies one token's K and V rows
// (n_kv_heads * head_dim elements each) in units of kUnit elements.
template <typename T, int kUnit>
__global__ void kv_cache_write_kernel(T* __restrict__ k_cache,             // [slots, row]
                                      T* __restrict__ v_cache,             // [slots, row]
                                      const T* __restrict__ k,             // [n_tokens, stride]
                                      const T* __restrict__ v,             // [n_tokens, stride]
                                      const int32_t* __restrict__ slots,   // [n_tokens]
                                      int row, int kv_row_stride) {
  const int slot = slots[blockIdx.x];
  if (slot < 0) return;
  const T* k_row = k + static_cast<size_t>(blockIdx.x) * kv_row_stride;
  const T* v_row = v + static_cast<size_t>(blockIdx.x) * kv_row_stride;
  T* k_dst = k_cache + static_cast<size_t>(slot) * row;
  T* v_dst = v_cache + static_cast<size_t>(slot) * row;
  for (int i = threadIdx.x * kUnit; i < row; i += kThreads * kUnit) {
    attention::copy_vec<T, kUnit>(k_dst + i, k_row + i);
    attention::copy_vec<T, kUnit>(v_dst + i, v_row + i);
  }
}

}  // namespace

template <typename T>
void launch_kv_cache_write(T* k_cache, T* v_cache, const T* k, const T* v,
                           const int32_t* slot_mapping, int n_tokens, int n_kv_heads, int head_dim,
                           int kv_row_stride, cudaStream_t stream) {
  if (n_tokens == 0) return;
  const int row = n_kv_heads * head_dim;
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = row % kVec == 0 && kv_row_stride % kVec == 0 &&
                          attention::is_aligned(k_cache, 16) &&
                          attention::is_aligned(v_cache, 16) && attention::is_aligned(k, 16) &&
                          attention::is_aligned(v, 16);
  if (vectorised) {
    kv_cache_write_kernel<T, kVec><<<n_tokens, kThreads, 0, stream>>>(
        k_cache, v_cache, k, v, slot_mapping, row, kv_row_stride);
  } else {
    kv_cache_write_kernel<T, 1><<<n_tokens, kThreads, 0, stream>>>(
        k_cache, v_cache, k, v, slot_mapping, row, kv_row_stride);
  }
  CUDA_CHECK(cudaGetLastError());
}

#define SW_INSTANTIATE(T)                                                                    \
  template void launch_kv_cache_write<T>(T*, T*, const T*, const T*, const int32_t*, int, int, \
                                         int, int, cudaStream_t);
SW_INSTANTIATE(float)
SW_INSTANTIATE(__nv_bfloat16)
SW_INSTANTIATE(__half)
#undef SW_INSTANTIATE

}  // namespace shardwise::cuda
