#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace shardwise::cuda {

// Synthetic weights (benchmarks, --random-weights): fills a [rows, cols] slice of a notional
// [*, global_cols] matrix, the slice starting at (row_offset, col_offset), with values uniform
// in (-scale, scale) drawn from a hash of (seed, global row, global column). The values depend
// only on the global position, so tensor-parallel slices of one seed tile the TP=1 matrix.
// T is float or __nv_bfloat16.
template <typename T>
void launch_fill_uniform(T* out,  // [rows, cols]
                         int64_t rows, int64_t cols, int64_t global_cols, int64_t row_offset,
                         int64_t col_offset, float scale, uint64_t seed, cudaStream_t stream);

// out[i] = value for i < count (norm weights of 1). T is float or __nv_bfloat16.
template <typename T>
void launch_fill_constant(T* out,  // [count]
                          std::size_t count, float value, cudaStream_t stream);

}  // namespace shardwise::cuda
