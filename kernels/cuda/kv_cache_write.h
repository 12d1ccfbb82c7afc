#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace shardwise::cuda {

// Stores each token's K and V at its cache slot (layout of cpu::kv_cache_write:
// [num_blocks, block_size, n_kv_heads, head_dim], slot = block * block_size + offset).
// A negative slot skips the token (padding of a captured CUDA graph's batch).
// k and v rows are strided (k of token t at k + t * kv_row_stride) so they can be read straight
// from the fused QKV output. T is float, __nv_bfloat16 or __half.
template <typename T>
void launch_kv_cache_write(T* k_cache,                   // [num_blocks, block_size, n_kv, head_dim]
                           T* v_cache,                   // [num_blocks, block_size, n_kv, head_dim]
                           const T* k,                   // [n_tokens, kv_row_stride]
                           const T* v,                   // [n_tokens, kv_row_stride]
                           const int32_t* slot_mapping,  // [n_tokens]
                           int n_tokens, int n_kv_heads, int head_dim, int kv_row_stride,
                           cudaStream_t stream);

}  // namespace shardwise::cuda
