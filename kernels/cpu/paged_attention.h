#pragma once

#include <cstdint>

namespace shardwise::cpu {

// Causal attention of a batch of query tokens against a paged KV cache (layout in
// kv_cache_write.h). Token t belongs to sequence seq_index[t] and sees that sequence's keys at
// positions [0, context_lens[t]) — its own position + 1 — whose K/V must already be in the cache.
// This one routine serves prefill (many tokens of a sequence), chunked prefill and decode.
// Grouped-query attention: query head h reads KV head h / (n_heads / n_kv_heads).
void paged_attention(float* out,                   // [n_tokens, n_heads, head_dim]
                     const float* q,               // [n_tokens, n_heads, head_dim]
                     const float* k_cache,         // [num_blocks, block_size, n_kv_heads, head_dim]
                     const float* v_cache,         // [num_blocks, block_size, n_kv_heads, head_dim]
                     const int32_t* block_tables,  // [n_seqs, max_blocks_per_seq]
                     const int32_t* seq_index,     // [n_tokens]
                     const int32_t* context_lens,  // [n_tokens]
                     int n_tokens, int n_heads, int n_kv_heads, int head_dim, int block_size,
                     int max_blocks_per_seq, float scale);

}  // namespace shardwise::cpu
