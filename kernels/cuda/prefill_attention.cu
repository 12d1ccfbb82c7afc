// Causal prefill attention over the paged KV cache, flash-attention-2 style: a block takes a
// tile of (query token, query head) rows of one sequence and one KV head's group — rows are
// token-major over the group's heads, so each K/V tile read from the cache serves every head of
// the group — and streams the keys they can see through shared memory in tiles, keeping a
// running max, exp-sum and output per row (online softmax).
//
// Two kernels compute this. bf16/fp16 with head_dim 64 or 128 (every Llama shape we serve) run
// on tensor cores: mma.sync m16n8k16, fp32 accumulation, the probabilities narrowed to T for
// P x V as flash-attention does. Everything else (fp32, other head dims) runs on CUDA cores.
#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "kernels/cuda/attention_utils.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/prefill_attention.h"

namespace shardwise::cuda {
namespace {

using attention::from_float;
using attention::load_as_float;

constexpr int kThreads = 128;
constexpr int kThreadsPerRow = 4;                 // a row's head_dim is split over 4 lanes
constexpr int kRows = kThreads / kThreadsPerRow;  // (token, head) rows per block
constexpr float kLog2e = 1.4426950408889634f;

// HEAD_DIM 0 is the generic path (any even head_dim <= 256, 2-element accesses). A thread owns
// the head_dim chunks c * kThreadsPerRow + its lane (kVec elements each), so the 4 lanes of a
// row read 4 consecutive chunks of a shared-memory K/V row: no bank conflicts.
template <typename T, int HEAD_DIM>
struct PrefillConfig {
  static constexpr bool kGeneric = HEAD_DIM == 0;
  static constexpr int kMaxHeadDim = kGeneric ? 256 : HEAD_DIM;
  static constexpr int kVec = kGeneric ? 2 : 4;  // fp32 elements per shared-memory access
  static constexpr int kChunks = kMaxHeadDim / (kVec * kThreadsPerRow);             // per thread
  static constexpr int kLoadVec = kGeneric ? 2 : static_cast<int>(16 / sizeof(T));  // global
  static constexpr int kKeys = 4096 / kMaxHeadDim;  // keys per tile: 16 KiB of K + 16 of V (fp32)
};

// The rows a block takes: rows [row_begin, row_begin + rows per block) of sequence blockIdx.z
// and KV head blockIdx.y, row r being query token r / group at query head
// kv_head * group + r % group (token-major, so a K/V tile serves the whole group).
struct RowTile {
  int seq, kv_head, group;
  int token_begin;  // the sequence's first query token in the batch
  int n_rows;       // its query_len * group rows
  int row_begin;    // the block's first row
  int first_pos;    // position of the chunk's first query
  // Row r's query token in the batch, its query head, and its position: -1 for a row past the
  // last, which sees no key.
  __device__ int token(int r) const { return token_begin + r / group; }
  __device__ int head(int r) const { return kv_head * group + r % group; }
  __device__ int position(int r) const { return r < n_rows ? first_pos + r / group : -1; }
  // Keys the rows [first, first + count) see: up to the last valid one's position.
  __device__ int kv_end(int first, int count) const {
    return position(min(first + count, n_rows) - 1) + 1;
  }
};

__device__ __forceinline__ RowTile row_tile(const int32_t* query_starts,
                                            const int32_t* context_lens, int n_heads,
                                            int n_kv_heads, int rows_per_block) {
  RowTile t;
  t.seq = blockIdx.z;
  t.kv_head = blockIdx.y;
  t.group = n_heads / n_kv_heads;
  t.token_begin = query_starts[t.seq];
  const int query_len = query_starts[t.seq + 1] - t.token_begin;
  t.n_rows = query_len * t.group;
  t.row_begin = blockIdx.x * rows_per_block;
  t.first_pos = context_lens[t.seq] - query_len;
  return t;
}

// grid: (ceil(max_query_len * group / kRows), n_kv_heads, n_seqs), block: (kThreads).
template <typename T, int HEAD_DIM>
__global__ void __launch_bounds__(kThreads) prefill_attention_kernel(
    T* __restrict__ out,                       // [n_tokens, n_heads, head_dim]
    const T* __restrict__ q,                   // [n_tokens, q_row_stride]
    const T* __restrict__ k_cache,             // [num_blocks, block_size, n_kv_heads, head_dim]
    const T* __restrict__ v_cache,             // [num_blocks, block_size, n_kv_heads, head_dim]
    const int32_t* __restrict__ block_tables,  // [n_seqs, max_blocks_per_seq]
    const int32_t* __restrict__ query_starts,  // [n_seqs + 1]
    const int32_t* __restrict__ context_lens,  // [n_seqs]
    int n_heads, int n_kv_heads, int head_dim_arg, int q_row_stride, int block_size,
    int max_blocks_per_seq, float scale) {
  using C = PrefillConfig<T, HEAD_DIM>;
  const int dim = C::kGeneric ? head_dim_arg : HEAD_DIM;
  const RowTile tile = row_tile(query_starts, context_lens, n_heads, n_kv_heads, kRows);
  const int seq = tile.seq, kv_head = tile.kv_head, n_rows = tile.n_rows,
            row_begin = tile.row_begin;
  if (row_begin >= n_rows) return;

  const int row = row_begin + threadIdx.x / kThreadsPerRow;
  const int lane = threadIdx.x % kThreadsPerRow;
  const bool row_valid = row < n_rows;
  const int token = tile.token(row);
  const int head = tile.head(row);
  const int pos = tile.position(row);                // -1 for an invalid row: it sees no key
  const int kv_end = tile.kv_end(row_begin, kRows);  // keys the block needs

  // The row's query, scaled by scale * log2(e) (softmax in base 2).
  float q_reg[C::kChunks][C::kVec];
  float o_reg[C::kChunks][C::kVec];
  const T* q_row = q + static_cast<size_t>(token) * q_row_stride + static_cast<size_t>(head) * dim;
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
    if (new_max == -INFINITY) continue;                     // no visible key yet for this row
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
  T* out_row = out + (static_cast<size_t>(token) * n_heads + head) * dim;
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

// ---------------------------------------------------------------------------------------------
// Tensor-core path. Each warp owns 16 rows (the M of one mma) and a block 4 warps; a K/V tile
// of kMmaKeys keys sits in shared memory, rows padded by 8 elements (16 bytes) so that the
// fragment loads of a warp hit 32 distinct banks. Per tile a warp computes S = Q K^T
// (HEAD_DIM/16 k-steps x kMmaKeys/8 n-tiles), masks and rescales it in registers, and adds
// P V (kMmaKeys/16 k-steps x HEAD_DIM/8 n-tiles) to its accumulators. K and V are copied with
// cp.async in two groups, so V is still arriving while S is computed.
constexpr int kMmaWarps = 4;
constexpr int kMmaThreads = kMmaWarps * 32;
constexpr int kWarpRows = 16;
constexpr int kMmaRows = kMmaWarps * kWarpRows;  // (token, head) rows per block
constexpr int kMmaKeys = 64;                     // keys per shared-memory tile
constexpr int kMmaPad = 8;                       // elements of padding per shared-memory row

// grid: (ceil(max_query_len * group / kMmaRows), n_kv_heads, n_seqs), block: (kMmaThreads).
template <typename T, int HEAD_DIM>
__global__ void __launch_bounds__(kMmaThreads) prefill_attention_mma_kernel(
    T* __restrict__ out,                       // [n_tokens, n_heads, HEAD_DIM]
    const T* __restrict__ q,                   // [n_tokens, q_row_stride]
    const T* __restrict__ k_cache,             // [num_blocks, block_size, n_kv_heads, HEAD_DIM]
    const T* __restrict__ v_cache,             // [num_blocks, block_size, n_kv_heads, HEAD_DIM]
    const int32_t* __restrict__ block_tables,  // [n_seqs, max_blocks_per_seq]
    const int32_t* __restrict__ query_starts,  // [n_seqs + 1]
    const int32_t* __restrict__ context_lens,  // [n_seqs]
    int n_heads, int n_kv_heads, int q_row_stride, int block_size, int max_blocks_per_seq,
    float scale_log2) {
  static_assert(sizeof(T) == 2 && HEAD_DIM % 16 == 0);
  constexpr int kRowElems = HEAD_DIM + kMmaPad;
  constexpr int kDSteps = HEAD_DIM / 16;      // k-steps of Q K^T
  constexpr int kDTiles = HEAD_DIM / 8;       // n-tiles of P V
  constexpr int kKeyTiles = kMmaKeys / 8;     // n-tiles of Q K^T
  constexpr int kChunks = HEAD_DIM * 2 / 16;  // 16-byte chunks per K/V row
  constexpr int kChunkElems = 8;
  __shared__ __align__(16) T k_tile[kMmaKeys * kRowElems];  // [kMmaKeys][kRowElems]
  __shared__ __align__(16) T v_tile[kMmaKeys * kRowElems];  // [kMmaKeys][kRowElems]

  const RowTile tile = row_tile(query_starts, context_lens, n_heads, n_kv_heads, kMmaRows);
  const int seq = tile.seq, kv_head = tile.kv_head, n_rows = tile.n_rows,
            row_begin = tile.row_begin;
  if (row_begin >= n_rows) return;
  const int kv_end = tile.kv_end(row_begin, kMmaRows);  // keys the block needs

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int gid = lane / 4;  // mma row group: this thread's rows are gid and gid + 8
  const int tig = lane % 4;  // thread in group: its columns are 2 tig, 2 tig + 1 (+ 8)
  const int warp_row = row_begin + warp * kWarpRows;
  // Keys this warp's rows can see; a warp past the last row computes nothing.
  const int warp_kv_end = warp_row < n_rows ? tile.kv_end(warp_row, kWarpRows) : 0;

  int pos[2];  // each row's position; -1 for a row past the end, which sees no key
  const T* q_rows[2];
  T* out_rows[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int row = warp_row + gid + 8 * i;
    const bool valid = row < n_rows;
    const int token = tile.token(row);
    const int head = tile.head(row);
    pos[i] = tile.position(row);
    q_rows[i] =
        valid ? q + static_cast<size_t>(token) * q_row_stride + static_cast<size_t>(head) * HEAD_DIM
              : nullptr;
    out_rows[i] = valid ? out + (static_cast<size_t>(token) * n_heads + head) * HEAD_DIM : nullptr;
  }

  // The warp's queries as A fragments, unscaled (the scale is applied to fp32 scores).
  uint32_t q_frag[kDSteps][4];
#pragma unroll
  for (int ks = 0; ks < kDSteps; ++ks) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const T* row = q_rows[r & 1];
      const int d = ks * 16 + 2 * tig + (r >> 1) * 8;
      q_frag[ks][r] = row != nullptr ? *reinterpret_cast<const uint32_t*>(row + d) : 0u;
    }
  }

  float o_acc[kDTiles][4];
#pragma unroll
  for (int n = 0; n < kDTiles; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) o_acc[n][e] = 0.0f;
  float row_max[2] = {-INFINITY, -INFINITY};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's columns only; summed over the quad at the end

  const int32_t* table = block_tables + static_cast<size_t>(seq) * max_blocks_per_seq;
  const size_t slot_stride = static_cast<size_t>(n_kv_heads) * HEAD_DIM;
  const size_t head_offset = static_cast<size_t>(kv_head) * HEAD_DIM;
  const uint16_t* v_bits = reinterpret_cast<const uint16_t*>(v_tile);

  for (int tile_start = 0; tile_start < kv_end; tile_start += kMmaKeys) {
    __syncthreads();  // every warp is done with the previous tile
    // Keys past kv_end are zeros, never stale data: a masked key meets p = 0, and 0 x NaN
    // would still poison the product.
    auto start_copy = [&](T* tile, const T* cache) {
      for (int idx = threadIdx.x; idx < kMmaKeys * kChunks; idx += kMmaThreads) {
        const int j = idx / kChunks;
        const int chunk = idx % kChunks;
        const int key = tile_start + j;
        T* dst = tile + j * kRowElems + chunk * kChunkElems;
        if (key < kv_end) {
          const size_t slot =
              static_cast<size_t>(table[key / block_size]) * block_size + key % block_size;
          mma::cp_async_16(dst, cache + slot * slot_stride + head_offset + chunk * kChunkElems);
        } else {
          *reinterpret_cast<uint4*>(dst) = make_uint4(0, 0, 0, 0);
        }
      }
      mma::cp_async_commit();
    };
    start_copy(k_tile, k_cache);
    start_copy(v_tile, v_cache);
    mma::cp_async_wait<1>();  // K has landed; V may still be in flight
    __syncthreads();

    const bool active = tile_start < warp_kv_end;  // warp-uniform
    float s[kKeyTiles][4];
    if (active) {
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < kDSteps; ++ks) {
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j) {
          const T* k_row = k_tile + (j * 8 + gid) * kRowElems + ks * 16 + 2 * tig;
          mma::mma_16816<T>(s[j], q_frag[ks], *reinterpret_cast<const uint32_t*>(k_row),
                            *reinterpret_cast<const uint32_t*>(k_row + 8));
        }
      }
      // Online softmax in base 2, per row; a row's 64 scores are spread over its quad.
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int key = tile_start + j * 8 + 2 * tig + e;
            float& score = s[j][2 * i + e];
            score = key <= pos[i] ? score * scale_log2 : -INFINITY;  // causal mask by position
            tile_max = fmaxf(tile_max, score);
          }
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffff, tile_max, 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffff, tile_max, 2));
        const float new_max = fmaxf(row_max[i], tile_max);
        // A row that has seen no key yet keeps max -inf; subtracting 0 then gives p = 0, not NaN.
        const float base = new_max == -INFINITY ? 0.0f : new_max;
        const float correction = exp2f(row_max[i] - base);
        row_sum[i] *= correction;
#pragma unroll
        for (int n = 0; n < kDTiles; ++n) {
          o_acc[n][2 * i] *= correction;
          o_acc[n][2 * i + 1] *= correction;
        }
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float p = exp2f(s[j][2 * i + e] - base);
            s[j][2 * i + e] = p;
            row_sum[i] += p;
          }
        }
        row_max[i] = new_max;
      }
    }
    mma::cp_async_wait<0>();
    __syncthreads();  // V has landed for every thread
    if (active) {
#pragma unroll
      for (int kk = 0; kk < kMmaKeys / 16; ++kk) {
        const uint32_t p_frag[4] = {mma::pack_floats<T>(s[2 * kk][0], s[2 * kk][1]),
                                    mma::pack_floats<T>(s[2 * kk][2], s[2 * kk][3]),
                                    mma::pack_floats<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                    mma::pack_floats<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
        const uint16_t* v_keys = v_bits + (kk * 16 + 2 * tig) * kRowElems + gid;
#pragma unroll
        for (int n = 0; n < kDTiles; ++n) {
          const uint16_t* v = v_keys + n * 8;
          const uint32_t b0 = mma::pack_halves(v[0], v[kRowElems]);
          const uint32_t b1 = mma::pack_halves(v[8 * kRowElems], v[9 * kRowElems]);
          mma::mma_16816<T>(o_acc[n], p_frag, b0, b1);
        }
      }
    }
  }

#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float sum = row_sum[i];
    sum += __shfl_xor_sync(0xffffffff, sum, 1);
    sum += __shfl_xor_sync(0xffffffff, sum, 2);
    if (out_rows[i] == nullptr) continue;
    const float inv_sum = sum > 0.0f ? 1.0f / sum : 0.0f;
#pragma unroll
    for (int n = 0; n < kDTiles; ++n) {
      *reinterpret_cast<uint32_t*>(out_rows[i] + n * 8 + 2 * tig) =
          mma::pack_floats<T>(o_acc[n][2 * i] * inv_sum, o_acc[n][2 * i + 1] * inv_sum);
    }
  }
}

template <typename T, int HEAD_DIM>
void launch_for_head_dim(T* out, const T* q, const T* k_cache, const T* v_cache,
                         const int32_t* block_tables, const int32_t* query_starts,
                         const int32_t* context_lens, int n_seqs, int max_query_len, int n_heads,
                         int n_kv_heads, int head_dim, int q_row_stride, int block_size,
                         int max_blocks_per_seq, float scale, cudaStream_t stream) {
  const int group = n_heads / n_kv_heads;
  if constexpr (sizeof(T) == 2 && HEAD_DIM != 0) {  // bf16/fp16 at 64 or 128: tensor cores
    const dim3 grid((max_query_len * group + kMmaRows - 1) / kMmaRows, n_kv_heads, n_seqs);
    prefill_attention_mma_kernel<T, HEAD_DIM><<<grid, kMmaThreads, 0, stream>>>(
        out, q, k_cache, v_cache, block_tables, query_starts, context_lens, n_heads, n_kv_heads,
        q_row_stride, block_size, max_blocks_per_seq, scale * kLog2e);
  } else {
    const dim3 grid((max_query_len * group + kRows - 1) / kRows, n_kv_heads, n_seqs);
    prefill_attention_kernel<T, HEAD_DIM><<<grid, kThreads, 0, stream>>>(
        out, q, k_cache, v_cache, block_tables, query_starts, context_lens, n_heads, n_kv_heads,
        head_dim, q_row_stride, block_size, max_blocks_per_seq, scale);
  }
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
                         attention::is_aligned(k_cache, 16) && attention::is_aligned(v_cache, 16) &&
                         q_row_stride % kVec == 0;
  if (head_dim == 128 && aligned16) {
    launch_for_head_dim<T, 128>(out, q, k_cache, v_cache, block_tables, query_starts, context_lens,
                                n_seqs, max_query_len, n_heads, n_kv_heads, head_dim, q_row_stride,
                                block_size, max_blocks_per_seq, scale, stream);
  } else if (head_dim == 64 && aligned16) {
    launch_for_head_dim<T, 64>(out, q, k_cache, v_cache, block_tables, query_starts, context_lens,
                               n_seqs, max_query_len, n_heads, n_kv_heads, head_dim, q_row_stride,
                               block_size, max_blocks_per_seq, scale, stream);
  } else {
    // Generic path: 2-element accesses.
    SW_CHECK(q_row_stride % 2 == 0 && attention::is_aligned(q, 2 * sizeof(T)) &&
             attention::is_aligned(out, 2 * sizeof(T)) &&
             attention::is_aligned(k_cache, 2 * sizeof(T)) &&
             attention::is_aligned(v_cache, 2 * sizeof(T)));
    launch_for_head_dim<T, 0>(out, q, k_cache, v_cache, block_tables, query_starts, context_lens,
                              n_seqs, max_query_len, n_heads, n_kv_heads, head_dim, q_row_stride,
                              block_size, max_blocks_per_seq, scale, stream);
  }
}

#define SW_INSTANTIATE(T)                                                                       \
  template void launch_prefill_attention<T>(T*, const T*, const T*, const T*, const int32_t*,   \
                                            const int32_t*, const int32_t*, int, int, int, int, \
                                            int, int, int, int, float, cudaStream_t);
SW_INSTANTIATE(float)
SW_INSTANTIATE(__nv_bfloat16)
SW_INSTANTIATE(__half)
#undef SW_INSTANTIATE

}  // namespace shardwise::cuda
