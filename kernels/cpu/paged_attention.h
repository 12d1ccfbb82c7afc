#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"

namespace shardwise::cpu {

// Causal attention of a batch of query tokens against a paged KV cache (layout in
// kv_cache_write.h). Token t belongs to sequence seq_index[t] and sees that sequence's keys at
// positions [0, context_lens[t]) — its own position + 1 — whose K/V must already be in the cache.
// This one routine serves prefill (many tokens of a sequence), chunked prefill and decode.
// Grouped-query attention: query head h reads KV head h / (n_heads / n_kv_heads); the query
// heads of a group share each K/V row read. Online softmax over chunks of the context, fp32
// accumulation, no allocation; head_dim at most 256. The OpenMP threads split the
// (token, KV head) pairs.
void paged_attention(float* out,                   // [n_tokens, n_heads, head_dim]
                     const float* q,               // [n_tokens, n_heads, head_dim]
                     const float* k_cache,         // [num_blocks, block_size, n_kv_heads, head_dim]
                     const float* v_cache,         // [num_blocks, block_size, n_kv_heads, head_dim]
                     const int32_t* block_tables,  // [n_seqs, max_blocks_per_seq]
                     const int32_t* seq_index,     // [n_tokens]
                     const int32_t* context_lens,  // [n_tokens]
                     int n_tokens, int n_heads, int n_kv_heads, int head_dim, int block_size,
                     int max_blocks_per_seq, float scale, CpuIsa isa = best_cpu_isa());

// The same over a bf16 cache (bf16 bit patterns, widened to fp32 as they are read).
void paged_attention(float* out, const float* q,
                     const uint16_t* k_cache,  // [num_blocks, block_size, n_kv_heads, head_dim]
                     const uint16_t* v_cache,  // [num_blocks, block_size, n_kv_heads, head_dim]
                     const int32_t* block_tables, const int32_t* seq_index,
                     const int32_t* context_lens, int n_tokens, int n_heads, int n_kv_heads,
                     int head_dim, int block_size, int max_blocks_per_seq, float scale,
                     CpuIsa isa = best_cpu_isa());

}  // namespace shardwise::cpu
