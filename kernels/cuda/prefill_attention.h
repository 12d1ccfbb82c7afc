#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace shardwise::cuda {

// Causal prefill attention, flash-attention style (scores are never materialised): the query
// tokens of sequence s are rows [query_starts[s], query_starts[s + 1]) of q, the last
// query_len tokens of a context of context_lens[s] tokens, so query i of s sits at position
// context_lens[s] - query_len + i and sees keys [0, that position]. All keys, including those
// of this chunk, are read from the paged cache (the chunk's K/V written first), so a prompt can
// be prefilled in chunks and a chunk may follow cached prefix blocks. Decode tokens (query_len
// 1) are a special case, so a mixed batch runs through this one kernel.
// GQA as in paged_attention_decode.h; fp32 accumulation; T is float, __nv_bfloat16 or __half;
// head_dim 64 and 128 specialised (on tensor cores for bf16/fp16), any even head_dim up to 256
// correct.
template <typename T>
void launch_prefill_attention(
    T* out,                       // [n_tokens, n_heads, head_dim]
    const T* q,                   // [n_tokens, q_row_stride], n_heads * head_dim used per row
    const T* k_cache,             // [num_blocks, block_size, n_kv_heads, head_dim]
    const T* v_cache,             // [num_blocks, block_size, n_kv_heads, head_dim]
    const int32_t* block_tables,  // [n_seqs, max_blocks_per_seq]
    const int32_t* query_starts,  // [n_seqs + 1], query_starts[n_seqs] == n_tokens
    const int32_t* context_lens,  // [n_seqs]
    int n_seqs, int max_query_len, int n_heads, int n_kv_heads, int head_dim, int q_row_stride,
    int block_size, int max_blocks_per_seq, float scale, cudaStream_t stream);

}  // namespace shardwise::cuda
