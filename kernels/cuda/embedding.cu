#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "common/check.h"
#include "kernels/cuda/embedding.h"

namespace shardwise::cuda {
namespace {

constexpr int kThreads = 256;

// grid: (n_tokens), block: (kThreads); one block copies one row in 16-byte words.
__global__ void embedding_vec_kernel(uint4* __restrict__ out,          // [n_tokens, row_words]
                                     const uint4* __restrict__ table,  // [vocab, row_words]
                                     const int32_t* __restrict__ ids,  // [n_tokens]
                                     int row_words) {
  const uint4* src = table + static_cast<size_t>(ids[blockIdx.x]) * row_words;
  uint4* dst = out + static_cast<size_t>(blockIdx.x) * row_words;
  for (int i = threadIdx.x; i < row_words; i += kThreads) dst[i] = src[i];
}

// grid: (n_tokens), block: (kThreads); element-wise copy when rows are not 16-byte aligned.
template <typename T>
__global__ void embedding_kernel(T* __restrict__ out, const T* __restrict__ table,
                                 const int32_t* __restrict__ ids, int hidden) {
  const T* src = table + static_cast<size_t>(ids[blockIdx.x]) * hidden;
  T* dst = out + static_cast<size_t>(blockIdx.x) * hidden;
  for (int i = threadIdx.x; i < hidden; i += kThreads) dst[i] = src[i];
}

}  // namespace

template <typename T>
void launch_embedding(T* out, const T* table, const int32_t* ids, int n_tokens, int hidden,
                      cudaStream_t stream) {
  if (n_tokens == 0) return;
  const size_t row_bytes = sizeof(T) * static_cast<size_t>(hidden);
  const bool aligned = row_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(table) % 16 == 0;
  if (aligned) {
    embedding_vec_kernel<<<n_tokens, kThreads, 0, stream>>>(reinterpret_cast<uint4*>(out),
                                                            reinterpret_cast<const uint4*>(table),
                                                            ids, static_cast<int>(row_bytes / 16));
  } else {
    embedding_kernel<T><<<n_tokens, kThreads, 0, stream>>>(out, table, ids, hidden);
  }
  CUDA_CHECK(cudaGetLastError());
}

template void launch_embedding<float>(float*, const float*, const int32_t*, int, int, cudaStream_t);
template void launch_embedding<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, const int32_t*,
                                              int, int, cudaStream_t);
template void launch_embedding<__half>(__half*, const __half*, const int32_t*, int, int,
                                       cudaStream_t);

}  // namespace shardwise::cuda
