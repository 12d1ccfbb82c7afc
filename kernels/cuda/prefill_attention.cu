// Causal prefill attention over the paged KV cache, flash-attention-2 style on CUDA cores
// (SIMT, fp32): a block takes kRows (query token, query head) rows of one sequence and one
// KV head's group — rows are token-major over the group's heads, so each K/V tile read from
// the cache serves every head of the group — and streams the keys they can see through shared
// memory in tiles, keeping a running max, exp-sum and output per row (online softmax).
#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "kernels/cuda/attention_utils.cuh"
#include "kernels/cuda/prefill_attention.h"

namespace shardwise::cuda {
namespace {

using attention::from_float;
using attention::load_as_float;

constexpr int kThreads = 128;
constexpr int kThreadsPerRow = 4;                   // a row's head_dim is split over 4 lanes
constexpr int kRows = kThreads / kThreadsPerRow;    // (token, head) rows per block
constexpr float kLog2e = 1.4426950408889634f;

// HEAD_DIM 0 is the generic path (any even head_dim <= 256, 2-element accesses). A thread owns
// the head_dim chunks c * kThreadsPerRow + its lane (kVec elements each), so the 4 lanes of a
// row read 4 consecutive chunks of a shared-memory K/V row: no bank conflicts.
template <typename T, int HEAD_DIM>
struct PrefillConfig {
  static constexpr bool kGeneric = HEAD_DIM == 0;
  static constexpr int kMaxHeadDim = kGeneric ? 256 : HEAD_DIM;
  static constexpr int kVec = kGeneric ? 2 : 4;  // fp32 elements per shared-memory access
  static constexpr int kChunks = kMaxHeadDim / (kVec * kThreadsPerRow);  // per thread
  static constexpr int kLoadVec = kGeneric ? 2 : static_cast<int>(16 / sizeof(T));  // global
  static constexpr int kKeys = 4096 / kMaxHeadDim;  // keys per tile: 16 KiB of K + 16 of V (fp32)
};

// grid: (ceil(max_query_len * group / kRows), n_kv_heads, n_seqs), block: (kThreads).
template <typename T, int HEAD_DIM>
__global__ void __launch_bounds__(kThreads) prefill_attention_kernel(
    T* __restrict__ out,                        // [n_tokens, n_heads, head_dim]
    const T* __restrict__ q,                    // [n_tokens, q_row_stride]
    const T* __restrict__ k_cache,              // [num_blocks, block_size, n_kv_heads, head_dim]
    const T* __restrict__ v_cache,              // [num_blocks, block_size, n_kv_heads, head_dim]
    const int32_t* __restrict__ block_tables,   // [n_seqs, max_blocks_per_seq]
    const int32_t* __restrict__ query_starts,   // [n_seqs + 1]
    const int32_t* __restrict__ context_lens,   // [n_seqs]
    int n_heads, int n_kv_heads, int head_dim_arg, int q_row_stride, int block_size,
    int max_blocks_per_seq, float scale) {
  using C = PrefillConfig<T, HEAD_DIM>;
  const int dim = C::kGeneric ? head_dim_arg : HEAD_DIM;
  const int seq = blockIdx.z;
  const int kv_head = blockIdx.y;
  const int group = n_heads / n_kv_heads;
  const int token_begin = query_starts[seq];
  const int query_len = query_starts[seq + 1] - token_begin;
  const int n_rows = query_len * group;
  const int row_begin = blockIdx.x * kRows;
  if (row_begin >= n_rows) return;
  const int first_pos = context_lens[seq] - query_len;  // position of the chunk's first query

  const int row = row_begin + threadIdx.x / kThreadsPerRow;
  const int lane = threadIdx.x % kThreadsPerRow;
  const bool row_valid = row < n_rows;
  const int token = row / group;
  const int head = kv_head * group + row % group;
  const int pos = row_valid ? first_pos + token : -1;  // an invalid row sees no key
  // Keys the block needs: up to the last valid row's position.
  const int last_row = min(row_begin + kRows, n_rows) - 1;
  const int kv_end = first_pos + last_row / group + 1;

  // The row's query, scaled by scale * log2(e) (softmax in base 2).
  float q_reg[C::kChunks][C::kVec];
  float o_reg[C::kChunks][C::kVec];
  const T* q_row = q + static_cast<size_t>(token_begin + token) * q_row_stride +
                   static_cast<size_t>(head) * dim;
#pragma unroll
  for (int c = 0; c < C::kChunks; ++c) {
    const int d = (c * kThreadsPerRow + lane) * C::kVec;
    if (row_valid && d < dim) {
      load_as_float(q_row + d, q_reg[c]);
    } else {
#pragma unroll
      for (int e = 0; e < C::kVec; ++e) q_reg[c][e] = 0.0f;
    }
#pragma unroll
    for (int e = 0; e < C::kVec; ++e) {
      q_reg[c][e] *= scale * kLog2e;
      o_reg[c][e] = 0.0f;
    }
  }
  float running_max = -INFINITY;
  float running_sum = 0.0f;

  __shared__ __align__(16) float k_tile[C::kKeys][C::kMaxHeadDim];
  __shared__ __align__(16) float v_tile[C::kKeys][C::kMaxHeadDim];
  const int32_t* table = block_tables + static_cast<size_t>(seq) * max_blocks_per_seq;
  const size_t slot_stride = static_cast<size_t>(n_kv_heads) * dim;
  const size_t head_offset = static_cast<size_t>(kv_head) * dim;
  const int loads_per_row = dim / C::kLoadVec;

  for (int tile_start = 0; tile_start < kv_end; tile_start += C::kKeys) {
    __syncthreads();  // the previous tile has been consumed
    for (int idx = threadIdx.x; idx < C::kKeys * loads_per_row; idx += kThreads) {
      const int j = idx / loads_per_row;
      const int d = (idx % loads_per_row) * C::kLoadVec;
      const int key = tile_start + j;
      float k_vals[C::kLoadVec], v_vals[C::kLoadVec];
      if (key < kv_end) {
        const size_t slot =
            static_cast<size_t>(table[key / block_size]) * block_size + key % block_size;
        const size_t offset = slot * slot_stride + head_offset + d;
        load_as_float(k_cache + offset, k_vals);
        load_as_float(v_cache + offset, v_vals);
      } else {  // zeros, never uninitialised memory: a masked key still meets p = 0
#pragma unroll
        for (int e = 0; e < C::kLoadVec; ++e) k_vals[e] = v_vals[e] = 0.0f;
      }
#pragma unroll
      for (int e = 0; e < C::kLoadVec; ++e) {
        k_tile[j][d + e] = k_vals[e];
        v_tile[j][d + e] = v_vals[e];
      }
    }
    __syncthreads();

    float scores[C::kKeys];
    float tile_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < C::kKeys; ++j) {
      float dot = 0.0f;
#pragma unroll
      for (int c = 0; c < C::kChunks; ++c) {
        const int d = (c * kThreadsPerRow + lane) * C::kVec;
        if (C::kGeneric && d >= dim) break;
        float k_vals[C::kVec];
        if constexpr (C::kVec == 4) {
          const float4 k4 = *reinterpret_cast<const float4*>(&k_tile[j][d]);
          k_vals[0] = k4.x, k_vals[1] = k4.y, k_vals[2] = k4.z, k_vals[3] = k4.w;
        } else {
          const float2 k2 = *reinterpret_cast<const float2*>(&k_tile[j][d]);
          k_vals[0] = k2.x, k_vals[1] = k2.y;
        }
#pragma unroll
        for (int e = 0; e < C::kVec; ++e) dot += q_reg[c][e] * k_vals[e];
      }
#pragma unroll
      for (int offset = kThreadsPerRow / 2; offset > 0; offset /= 2)
        dot += __shfl_xor_sync(0xffffffff, dot, offset);
      scores[j] = tile_start + j <= pos ? dot : -INFINITY;  // causal mask by position
      tile_max = fmaxf(tile_max, scores[j]);
    }
    const float new_max = fmaxf(running_max, tile_max);
    if (new_max == -INFINITY) continue;  // no visible key yet for this row
    const float correction = exp2f(running_max - new_max);  // 0 on the first visible tile
    running_sum *= correction;
#pragma unroll
    for (int c = 0; c < C::kChunks; ++c)
#pragma unroll
      for (int e = 0; e < C::kVec; ++e) o_reg[c][e] *= correction;
#pragma unroll
    for (int j = 0; j < C::kKeys; ++j) {
      const float p = exp2f(scores[j] - new_max);
      running_sum += p;
#pragma unroll
      for (int c = 0; c < C::kChunks; ++c) {
        const int d = (c * kThreadsPerRow + lane) * C::kVec;
        if (C::kGeneric && d >= dim) break;
        if constexpr (C::kVec == 4) {
          const float4 v4 = *reinterpret_cast<const float4*>(&v_tile[j][d]);
          o_reg[c][0] += p * v4.x, o_reg[c][1] += p * v4.y;
          o_reg[c][2] += p * v4.z, o_reg[c][3] += p * v4.w;
        } else {
          const float2 v2 = *reinterpret_cast<const float2*>(&v_tile[j][d]);
          o_reg[c][0] += p * v2.x, o_reg[c][1] += p * v2.y;
        }
      }
    }
    running_max = new_max;
  }

  if (!row_valid) return;
  const float inv_sum = running_sum > 0.0f ? 1.0f / running_sum : 0.0f;
  T* out_row = out + (static_cast<size_t>(token_begin + token) * n_heads + head) * dim;
#pragma unroll
  for (int c = 0; c < C::kChunks; ++c) {
    const int d = (c * kThreadsPerRow + lane) * C::kVec;
    if (C::kGeneric && d >= dim) break;
    float values[C::kVec];
#pragma unroll
    for (int e = 0; e < C::kVec; ++e) values[e] = o_reg[c][e] * inv_sum;
    attention::store_from_float<T, C::kVec>(out_row + d, values);
  }
}

template <typename T, int HEAD_DIM>
void launch_for_head_dim(T* out, const T* q, const T* k_cache, const T* v_cache,
                         const int32_t* block_tables, const int32_t* query_starts,
                         const int32_t* context_lens, int n_seqs, int max_query_len, int n_heads,
                         int n_kv_heads, int head_dim, int q_row_stride, int block_size,
                         int max_blocks_per_seq, float scale, cudaStream_t stream) {
  const int group = n_heads / n_kv_heads;
  const dim3 grid((max_query_len * group + kRows - 1) / kRows, n_kv_heads, n_seqs);
  prefill_attention_kernel<T, HEAD_DIM><<<grid, kThreads, 0, stream>>>(
      out, q, k_cache, v_cache, block_tables, query_starts, context_lens, n_heads, n_kv_heads,
      head_dim, q_row_stride, block_size, max_blocks_per_seq, scale);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <typename T>
void launch_prefill_attention(T* out, const T* q, const T* k_cache, const T* v_cache,
                              const int32_t* block_tables, const int32_t* query_starts,
                              const int32_t* context_lens, int n_seqs, int max_query_len,
                              int n_heads, int n_kv_heads, int head_dim, int q_row_stride,
                              int block_size, int max_blocks_per_seq, float scale,
                              cudaStream_t stream) {
  if (n_seqs == 0 || max_query_len == 0) return;
  SW_CHECK(n_kv_heads > 0 && n_heads % n_kv_heads == 0);
  SW_CHECK(head_dim > 0 && head_dim % 2 == 0 && head_dim <= 256);
  SW_CHECK(block_size > 0);
  constexpr int kVec = 16 / sizeof(T);
  const bool aligned16 = attention::is_aligned(q, 16) && attention::is_aligned(out, 16) &&
                         attention::is_aligned(k_cache, 16) &&
                         attention::is_aligned(v_cache, 16) && q_row_stride % kVec == 0;
  if (head_dim == 128 && aligned16) {
    launch_for_head_dim<T, 128>(out, q, k_cache, v_cache, block_tables, query_starts,
                                context_lens, n_seqs, max_query_len, n_heads, n_kv_heads,
                                head_dim, q_row_stride, block_size, max_blocks_per_seq, scale,
                                stream);
  } else if (head_dim == 64 && aligned16) {
    launch_for_head_dim<T, 64>(out, q, k_cache, v_cache, block_tables, query_starts,
                               context_lens, n_seqs, max_query_len, n_heads, n_kv_heads, head_dim,
                               q_row_stride, block_size, max_blocks_per_seq, scale, stream);
  } else {
    // Generic path: 2-element accesses.
    SW_CHECK(q_row_stride % 2 == 0 && attention::is_aligned(q, 2 * sizeof(T)) &&
             attention::is_aligned(out, 2 * sizeof(T)) &&
             attention::is_aligned(k_cache, 2 * sizeof(T)) &&
             attention::is_aligned(v_cache, 2 * sizeof(T)));
    launch_for_head_dim<T, 0>(out, q, k_cache, v_cache, block_tables, query_starts,
                              context_lens, n_seqs, max_query_len, n_heads, n_kv_heads, head_dim,
                              q_row_stride, block_size, max_blocks_per_seq, scale, stream);
  }
}

#define SW_INSTANTIATE(T)                                                                     \
  template void launch_prefill_attention<T>(T*, const T*, const T*, const T*, const int32_t*, \
                                            const int32_t*, const int32_t*, int, int, int, int, \
                                            int, int, int, int, float, cudaStream_t);
SW_INSTANTIATE(float)
SW_INSTANTIATE(__nv_bfloat16)
SW_INSTANTIATE(__half)
#undef SW_INSTANTIATE

}  // namespace shardwise::cuda
