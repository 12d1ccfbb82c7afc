#include <cuda_bf16.h>

#include "common/check.h"
#include "kernels/cuda/fill_random.h"

namespace shardwise::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 65535;

// splitmix64's finaliser, as common/hash.h's mix64 (that one is host-only).
__device__ uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// grid: enough blocks of kThreads to cover rows * cols (grid-stride loop beyond kMaxBlocks)
template <typename T>
__global__ void fill_uniform_kernel(T* out, int64_t rows, int64_t cols, int64_t global_cols,
                                    int64_t row_offset, int64_t col_offset, float scale,
                                    uint64_t seed) {
  const int64_t total = rows * cols;
  const uint64_t key = mix64(seed);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, c = i % cols;
    const uint64_t global_index =
        static_cast<uint64_t>(row_offset + r) * global_cols + (col_offset + c);
    const uint64_t bits = mix64(key ^ global_index);
    // 24 random bits -> [0, 1) -> (-scale, scale)
    const float unit = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
    out[i] = static_cast<T>((2.0f * unit - 1.0f) * scale);
  }
}

// grid: enough blocks of kThreads to cover count (grid-stride loop beyond kMaxBlocks)
template <typename T>
__global__ void fill_constant_kernel(T* out, std::size_t count, float value) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    out[i] = static_cast<T>(value);
  }
}

int blocks_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

}  // namespace

template <typename T>
void launch_fill_uniform(T* out, int64_t rows, int64_t cols, int64_t global_cols,
                         int64_t row_offset, int64_t col_offset, float scale, uint64_t seed,
                         cudaStream_t stream) {
  if (rows * cols == 0) return;
  fill_uniform_kernel<T><<<blocks_for(rows * cols), kThreads, 0, stream>>>(
      out, rows, cols, global_cols, row_offset, col_offset, scale, seed);
  CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void launch_fill_constant(T* out, std::size_t count, float value, cudaStream_t stream) {
  if (count == 0) return;
  fill_constant_kernel<T>
      <<<blocks_for(static_cast<int64_t>(count)), kThreads, 0, stream>>>(out, count, value);
  CUDA_CHECK(cudaGetLastError());
}

template void launch_fill_uniform<float>(float*, int64_t, int64_t, int64_t, int64_t, int64_t, float,
                                         uint64_t, cudaStream_t);
template void launch_fill_uniform<__nv_bfloat16>(__nv_bfloat16*, int64_t, int64_t, int64_t, int64_t,
                                                 int64_t, float, uint64_t, cudaStream_t);
template void launch_fill_constant<float>(float*, std::size_t, float, cudaStream_t);
template void launch_fill_constant<__nv_bfloat16>(__nv_bfloat16*, std::size_t, float, cudaStream_t);

}  // namespace shardwise::cuda
