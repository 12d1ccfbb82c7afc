#pragma once

#include <cstdint>

namespace shardwise::cpu {

// Paged KV cache layout, shared with the CUDA kernels: per layer
//   k_cache, v_cache: [num_blocks, block_size, n_kv_heads, head_dim]
// A token's slot is block_id * block_size + offset_in_block.

// Stores each token's K and V at its slot. A negative slot skips the token (padding).
void kv_cache_write(float* k_cache,               // [num_blocks, block_size, n_kv_heads, head_dim]
                    float* v_cache,               // [num_blocks, block_size, n_kv_heads, head_dim]
                    const float* k,               // [n_tokens, n_kv_heads, head_dim]
                    const float* v,               // [n_tokens, n_kv_heads, head_dim]
                    const int32_t* slot_mapping,  // [n_tokens]
                    int n_tokens, int n_kv_heads, int head_dim);

// The same into a bf16 cache (bit patterns), rounding to nearest even.
void kv_cache_write(uint16_t* k_cache,  // [num_blocks, block_size, n_kv_heads, head_dim]
                    uint16_t* v_cache,  // [num_blocks, block_size, n_kv_heads, head_dim]
                    const float* k, const float* v, const int32_t* slot_mapping, int n_tokens,
                    int n_kv_heads, int head_dim);

}  // namespace shardwise::cpu
