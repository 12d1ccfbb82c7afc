#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace shardwise::cuda {

// Decode attention: one query token per sequence against that sequence's keys in the paged
// cache, positions [0, context_lens[s]) (the new token's K/V already written). Grouped-query:
// query head h reads KV head h / (n_heads / n_kv_heads); the kernel loads each KV head once
// for all query heads of its group. head_dim 64 and 128 are specialised; any even head_dim up
// to 256 is correct. fp32 accumulation whatever T is (float, __nv_bfloat16 or __half).
//
// Long contexts are split into partitions of kPartitionTokens processed by separate blocks
// (flash-decoding), then combined by a second kernel; `workspace` holds the partial results.
// The grid is sized from max_context_len (a host value, an upper bound of every context_lens
// entry), so a CUDA graph captured with the model's context window stays valid for any
// shorter contexts; blocks past a sequence's length exit at once.
// A sequence with context_lens[s] == 0 (padding) produces zeros.
constexpr int kPartitionTokens = 512;

// Bytes of workspace launch_paged_attention_decode needs for these sizes.
std::size_t paged_attention_decode_workspace_bytes(int n_seqs, int n_heads, int head_dim,
                                                   int max_context_len);

template <typename T>
void launch_paged_attention_decode(
    T* out,                       // [n_seqs, n_heads, head_dim]
    const T* q,                   // [n_seqs, q_row_stride], n_heads * head_dim used per row
    const T* k_cache,             // [num_blocks, block_size, n_kv_heads, head_dim]
    const T* v_cache,             // [num_blocks, block_size, n_kv_heads, head_dim]
    const int32_t* block_tables,  // [n_seqs, max_blocks_per_seq]
    const int32_t* context_lens,  // [n_seqs]
    int n_seqs, int n_heads, int n_kv_heads, int head_dim, int q_row_stride, int block_size,
    int max_blocks_per_seq, int max_context_len, float scale,
    void* workspace,  // paged_attention_decode_workspace_bytes(...) bytes, device memory
    cudaStream_t stream);

}  // namespace shardwise::cuda
