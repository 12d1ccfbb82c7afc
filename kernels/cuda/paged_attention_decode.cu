// Decode attention over the paged KV cache, flash-decoding style: each context is cut into
// partitions of kPartitionTokens; one block per (partition, KV head, sequence) scores the
// partition's keys for all query heads of the KV head's group (each K/V row read once), and a
// combine kernel merges the partitions' softmax-weighted partial outputs.
#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "kernels/cuda/attention_utils.cuh"
#include "kernels/cuda/paged_attention_decode.h"

namespace shardwise::cuda {
namespace {

using attention::from_float;
using attention::load_as_float;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxGroup = 8;  // query heads per block; larger groups take several blocks
constexpr int kUnroll = 4;    // keys each thread group has in flight
constexpr int kCombineThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

// Work split for one head size. HEAD_DIM 0 is the generic path (any even head_dim <= 256):
// 2-element loads. Specialised sizes load 16 bytes per thread; a row of head_dim elements is
// read by kThreadsPerKey threads (a "thread group"), kKeyGroups groups per block.
template <typename T, int HEAD_DIM>
struct DecodeConfig {
  static constexpr bool kGeneric = HEAD_DIM == 0;
  static constexpr int kMaxHeadDim = kGeneric ? 256 : HEAD_DIM;
  static constexpr int kVec = kGeneric ? 2 : static_cast<int>(16 / sizeof(T));
  static constexpr int kThreadsPerKey = kGeneric ? 32 : std::min(32, HEAD_DIM / kVec);
  static constexpr int kLoads = kMaxHeadDim / (kVec * kThreadsPerKey);  // per thread and row
  static constexpr int kKeyGroups = kThreads / kThreadsPerKey;
  // Shared memory: the partition's scores, later reused for the cross-group reduction.
  static constexpr int kSmemFloats =
      std::max(kMaxGroup * kPartitionTokens, kKeyGroups * kMaxGroup * kMaxHeadDim);
  static_assert(kGeneric || kMaxHeadDim % (kVec * kThreadsPerKey) == 0);
};

// Sum over the kWidth lanes of a thread group (every lane gets the sum).
template <int kWidth>
__device__ __forceinline__ float group_sum(float value) {
#pragma unroll
  for (int offset = kWidth / 2; offset > 0; offset /= 2)
    value += __shfl_xor_sync(0xffffffff, value, offset);
  return value;
}

// grid: (max_partitions, n_kv_heads * ceil(group / kMaxGroup), n_seqs), block: (kThreads).
// kDirect (one partition covers max_context_len): the block writes `out` itself; otherwise it
// writes its partition's normalised output, max score and exp-sum (log2 domain) to workspace.
template <typename T, int HEAD_DIM, bool kDirect>
__global__ void __launch_bounds__(kThreads) paged_attention_decode_kernel(
    T* __restrict__ out,                         // [n_seqs, n_heads, head_dim]
    float* __restrict__ partial_out,             // [n_seqs, n_heads, max_partitions, head_dim]
    float* __restrict__ partial_max,             // [n_seqs, n_heads, max_partitions]
    float* __restrict__ partial_sum,             // [n_seqs, n_heads, max_partitions]
    const T* __restrict__ q,                     // [n_seqs, q_row_stride]
    const T* __restrict__ k_cache,               // [num_blocks, block_size, n_kv_heads, head_dim]
    const T* __restrict__ v_cache,               // [num_blocks, block_size, n_kv_heads, head_dim]
    const int32_t* __restrict__ block_tables,    // [n_seqs, max_blocks_per_seq]
    const int32_t* __restrict__ context_lens,    // [n_seqs]
    int n_heads, int n_kv_heads, int head_dim_arg, int q_row_stride, int block_size,
    int max_blocks_per_seq, float scale) {
  using C = DecodeConfig<T, HEAD_DIM>;
  constexpr int kTpk = C::kThreadsPerKey;
  const int dim = C::kGeneric ? head_dim_arg : HEAD_DIM;
  const int seq = blockIdx.z;
  const int partition = blockIdx.x;
  const int max_partitions = gridDim.x;
  const int context = context_lens[seq];
  const int start = partition * kPartitionTokens;

  const int group = n_heads / n_kv_heads;
  const int head_chunks = (group + kMaxGroup - 1) / kMaxGroup;
  const int kv_head = blockIdx.y / head_chunks;
  const int first_head = kv_head * group + (blockIdx.y % head_chunks) * kMaxGroup;
  const int n_local = min(kMaxGroup, kv_head * group + group - first_head);

  if (start >= context) {
    if (kDirect && context == 0) {  // padding sequence: zeros
      for (int i = threadIdx.x; i < n_local * dim; i += kThreads)
        out[(static_cast<size_t>(seq) * n_heads + first_head) * dim + i] = from_float<T>(0.0f);
    }
    return;
  }
  const int n_tok = min(context - start, kPartitionTokens);

  __shared__ float smem[C::kSmemFloats];  // scores [kMaxGroup][kPartitionTokens], then reduction
  __shared__ float head_max[kMaxGroup];
  __shared__ float head_sum[kMaxGroup];
  float* scores = smem;

  const int key_group = threadIdx.x / kTpk;
  const int lane = threadIdx.x % kTpk;

  // The group's queries, scaled by scale * log2(e) so that the softmax can use exp2.
  float q_reg[kMaxGroup][C::kLoads][C::kVec];
  const T* q_row = q + static_cast<size_t>(seq) * q_row_stride + static_cast<size_t>(first_head) * dim;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
#pragma unroll
    for (int i = 0; i < C::kLoads; ++i) {
      const int d = (i * kTpk + lane) * C::kVec;
      if (g < n_local && d < dim) {
        load_as_float(q_row + g * dim + d, q_reg[g][i]);
#pragma unroll
        for (int e = 0; e < C::kVec; ++e) q_reg[g][i][e] *= scale * kLog2e;
      } else {
#pragma unroll
        for (int e = 0; e < C::kVec; ++e) q_reg[g][i][e] = 0.0f;
      }
    }
  }

  const int32_t* table = block_tables + static_cast<size_t>(seq) * max_blocks_per_seq;
  const size_t slot_stride = static_cast<size_t>(n_kv_heads) * dim;
  const size_t head_offset = static_cast<size_t>(kv_head) * dim;
  // Loads this thread's slice of row `t` of the partition (zeros past the partition's end).
  auto load_row = [&](const T* cache, int t, float (&row)[C::kLoads][C::kVec]) {
    if (t < n_tok) {
      const int pos = start + t;
      const size_t slot =
          static_cast<size_t>(table[pos / block_size]) * block_size + pos % block_size;
      const T* src = cache + slot * slot_stride + head_offset;
#pragma unroll
      for (int i = 0; i < C::kLoads; ++i) {
        const int d = (i * kTpk + lane) * C::kVec;
        if (C::kGeneric && d >= dim) {
#pragma unroll
          for (int e = 0; e < C::kVec; ++e) row[i][e] = 0.0f;
        } else {
          load_as_float(src + d, row[i]);
        }
      }
    } else {
#pragma unroll
      for (int i = 0; i < C::kLoads; ++i)
#pragma unroll
        for (int e = 0; e < C::kVec; ++e) row[i][e] = 0.0f;
    }
  };

  // Pass 1: scores. The loop bounds are uniform over the block, so every lane shuffles.
  for (int base = 0; base < n_tok; base += C::kKeyGroups * kUnroll) {
    float k_reg[kUnroll][C::kLoads][C::kVec];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) load_row(k_cache, base + u * C::kKeyGroups + key_group, k_reg[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = base + u * C::kKeyGroups + key_group;
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= n_local) break;
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < C::kLoads; ++i)
#pragma unroll
          for (int e = 0; e < C::kVec; ++e) dot += q_reg[g][i][e] * k_reg[u][i][e];
        dot = group_sum<kTpk>(dot);
        if (lane == 0 && t < n_tok) scores[g * kPartitionTokens + t] = dot;
      }
    }
  }
  __syncthreads();

  // Softmax within the partition: one warp per query head.
  const int warp = threadIdx.x / 32;
  const int warp_lane = threadIdx.x % 32;
  for (int g = warp; g < n_local; g += kWarps) {
    float* row = scores + g * kPartitionTokens;
    float max_score = -INFINITY;
    for (int t = warp_lane; t < n_tok; t += 32) max_score = fmaxf(max_score, row[t]);
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2)
      max_score = fmaxf(max_score, __shfl_xor_sync(0xffffffff, max_score, offset));
    float sum = 0.0f;
    for (int t = warp_lane; t < n_tok; t += 32) {
      const float p = exp2f(row[t] - max_score);
      row[t] = p;
      sum += p;
    }
    sum = group_sum<32>(sum);
    if (warp_lane == 0) {
      head_max[g] = max_score;
      head_sum[g] = sum;
    }
  }
  __syncthreads();

  // Pass 2: probability-weighted values, accumulated per thread group.
  float acc[kMaxGroup][C::kLoads][C::kVec] = {};
  for (int base = 0; base < n_tok; base += C::kKeyGroups * kUnroll) {
    float v_reg[kUnroll][C::kLoads][C::kVec];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) load_row(v_cache, base + u * C::kKeyGroups + key_group, v_reg[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = base + u * C::kKeyGroups + key_group;
      if (t >= n_tok) continue;
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= n_local) break;
        const float p = scores[g * kPartitionTokens + t];
#pragma unroll
        for (int i = 0; i < C::kLoads; ++i)
#pragma unroll
          for (int e = 0; e < C::kVec; ++e) acc[g][i][e] += p * v_reg[u][i][e];
      }
    }
  }
  __syncthreads();  // scores are no longer read: reuse smem for the reduction

  float* partials = smem;  // [kKeyGroups][kMaxGroup][kMaxHeadDim]
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= n_local) break;
#pragma unroll
    for (int i = 0; i < C::kLoads; ++i) {
      const int d = (i * kTpk + lane) * C::kVec;
      if (C::kGeneric && d >= dim) continue;
#pragma unroll
      for (int e = 0; e < C::kVec; ++e)
        partials[(key_group * kMaxGroup + g) * C::kMaxHeadDim + d + e] = acc[g][i][e];
    }
  }
  __syncthreads();

  // Fixed summation order over the thread groups: results are deterministic.
  for (int idx = threadIdx.x; idx < n_local * dim; idx += kThreads) {
    const int g = idx / dim;
    const int d = idx % dim;
    float value = 0.0f;
#pragma unroll 4
    for (int kg = 0; kg < C::kKeyGroups; ++kg) value += partials[(kg * kMaxGroup + g) * C::kMaxHeadDim + d];
    value /= head_sum[g];
    const size_t head_row = static_cast<size_t>(seq) * n_heads + first_head + g;
    if (kDirect) {
      out[head_row * dim + d] = from_float<T>(value);
    } else {
      const size_t part_row = head_row * max_partitions + partition;
      partial_out[part_row * dim + d] = value;
      if (d == 0) {
        partial_max[part_row] = head_max[g];
        partial_sum[part_row] = head_sum[g];
      }
    }
  }
}

// grid: (n_heads, n_seqs), block: (kCombineThreads), dynamic shared memory: max_partitions floats.
// Merges the partitions of one (sequence, head): weights 2^(max_p - max) * sum_p.
template <typename T>
__global__ void __launch_bounds__(kCombineThreads) paged_attention_combine_kernel(
    T* __restrict__ out,                       // [n_seqs, n_heads, head_dim]
    const float* __restrict__ partial_out,     // [n_seqs, n_heads, max_partitions, head_dim]
    const float* __restrict__ partial_max,     // [n_seqs, n_heads, max_partitions]
    const float* __restrict__ partial_sum,     // [n_seqs, n_heads, max_partitions]
    const int32_t* __restrict__ context_lens,  // [n_seqs]
    int n_heads, int head_dim, int max_partitions) {
  extern __shared__ float weights[];  // [max_partitions]
  const int seq = blockIdx.y;
  const size_t head_row = static_cast<size_t>(seq) * n_heads + blockIdx.x;
  const int n_parts =
      min(max_partitions, (context_lens[seq] + kPartitionTokens - 1) / kPartitionTokens);
  const float* maxes = partial_max + head_row * max_partitions;
  const float* sums = partial_sum + head_row * max_partitions;

  float global_max = -INFINITY;
  for (int p = 0; p < n_parts; ++p) global_max = fmaxf(global_max, maxes[p]);
  for (int p = threadIdx.x; p < n_parts; p += kCombineThreads)
    weights[p] = exp2f(maxes[p] - global_max) * sums[p];
  __syncthreads();
  float total = 0.0f;
  for (int p = 0; p < n_parts; ++p) total += weights[p];
  const float inv_total = total > 0.0f ? 1.0f / total : 0.0f;  // 0 partitions: zeros

  const float* partials = partial_out + head_row * max_partitions * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += kCombineThreads) {
    float value = 0.0f;
    for (int p = 0; p < n_parts; ++p) value += weights[p] * partials[static_cast<size_t>(p) * head_dim + d];
    out[head_row * head_dim + d] = from_float<T>(value * inv_total);
  }
}

int partitions_for(int max_context_len) {
  return std::max(1, (max_context_len + kPartitionTokens - 1) / kPartitionTokens);
}

template <typename T, int HEAD_DIM>
void launch_for_head_dim(T* out, const T* q, const T* k_cache, const T* v_cache,
                         const int32_t* block_tables, const int32_t* context_lens, int n_seqs,
                         int n_heads, int n_kv_heads, int head_dim, int q_row_stride,
                         int block_size, int max_blocks_per_seq, int max_context_len, float scale,
                         void* workspace, cudaStream_t stream) {
  const int max_partitions = partitions_for(max_context_len);
  const int group = n_heads / n_kv_heads;
  const int head_chunks = (group + kMaxGroup - 1) / kMaxGroup;
  // Grid y and z hold at most 65535 blocks: say so rather than fail the launch.
  SW_CHECK(n_seqs <= 65535 && n_kv_heads * head_chunks <= 65535);
  const dim3 grid(max_partitions, n_kv_heads * head_chunks, n_seqs);
  if (max_partitions == 1) {
    paged_attention_decode_kernel<T, HEAD_DIM, true><<<grid, kThreads, 0, stream>>>(
        out, nullptr, nullptr, nullptr, q, k_cache, v_cache, block_tables, context_lens, n_heads,
        n_kv_heads, head_dim, q_row_stride, block_size, max_blocks_per_seq, scale);
    CUDA_CHECK(cudaGetLastError());
    return;
  }
  SW_CHECK(workspace != nullptr);
  const size_t combine_smem = sizeof(float) * max_partitions;
  SW_CHECK(combine_smem <= 48 * 1024);
  const size_t part_rows = static_cast<size_t>(n_seqs) * n_heads * max_partitions;
  float* partial_out = static_cast<float*>(workspace);
  float* partial_max = partial_out + part_rows * head_dim;
  float* partial_sum = partial_max + part_rows;
  paged_attention_decode_kernel<T, HEAD_DIM, false><<<grid, kThreads, 0, stream>>>(
      out, partial_out, partial_max, partial_sum, q, k_cache, v_cache, block_tables, context_lens,
      n_heads, n_kv_heads, head_dim, q_row_stride, block_size, max_blocks_per_seq, scale);
  CUDA_CHECK(cudaGetLastError());
  paged_attention_combine_kernel<T><<<dim3(n_heads, n_seqs), kCombineThreads, combine_smem, stream>>>(
      out, partial_out, partial_max, partial_sum, context_lens, n_heads, head_dim, max_partitions);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

std::size_t paged_attention_decode_workspace_bytes(int n_seqs, int n_heads, int head_dim,
                                                   int max_context_len) {
  const int max_partitions = partitions_for(max_context_len);
  if (max_partitions == 1) return 0;  // one partition writes the output directly
  return sizeof(float) * static_cast<std::size_t>(n_seqs) * n_heads * max_partitions *
         (head_dim + 2);
}

template <typename T>
void launch_paged_attention_decode(T* out, const T* q, const T* k_cache, const T* v_cache,
                                   const int32_t* block_tables, const int32_t* context_lens,
                                   int n_seqs, int n_heads, int n_kv_heads, int head_dim,
                                   int q_row_stride, int block_size, int max_blocks_per_seq,
                                   int max_context_len, float scale, void* workspace,
                                   cudaStream_t stream) {
  if (n_seqs == 0) return;
  SW_CHECK(n_kv_heads > 0 && n_heads % n_kv_heads == 0);
  SW_CHECK(head_dim > 0 && head_dim % 2 == 0 && head_dim <= 256);
  SW_CHECK(block_size > 0 && max_context_len >= 0);
  constexpr int kVec = 16 / sizeof(T);
  const bool aligned16 = attention::is_aligned(q, 16) && attention::is_aligned(k_cache, 16) &&
                         attention::is_aligned(v_cache, 16) && q_row_stride % kVec == 0;
  if (head_dim == 128 && aligned16) {
    launch_for_head_dim<T, 128>(out, q, k_cache, v_cache, block_tables, context_lens, n_seqs,
                                n_heads, n_kv_heads, head_dim, q_row_stride, block_size,
                                max_blocks_per_seq, max_context_len, scale, workspace, stream);
  } else if (head_dim == 64 && aligned16) {
    launch_for_head_dim<T, 64>(out, q, k_cache, v_cache, block_tables, context_lens, n_seqs,
                               n_heads, n_kv_heads, head_dim, q_row_stride, block_size,
                               max_blocks_per_seq, max_context_len, scale, workspace, stream);
  } else {
    // Generic path: 2-element loads.
    SW_CHECK(q_row_stride % 2 == 0 && attention::is_aligned(q, 2 * sizeof(T)) &&
             attention::is_aligned(k_cache, 2 * sizeof(T)) &&
             attention::is_aligned(v_cache, 2 * sizeof(T)));
    launch_for_head_dim<T, 0>(out, q, k_cache, v_cache, block_tables, context_lens, n_seqs,
                              n_heads, n_kv_heads, head_dim, q_row_stride, block_size,
                              max_blocks_per_seq, max_context_len, scale, workspace, stream);
  }
}

#define SW_INSTANTIATE(T)                                                                       \
  template void launch_paged_attention_decode<T>(T*, const T*, const T*, const T*,              \
                                                 const int32_t*, const int32_t*, int, int, int, \
                                                 int, int, int, int, int, float, void*,         \
                                                 cudaStream_t);
SW_INSTANTIATE(float)
SW_INSTANTIATE(__nv_bfloat16)
SW_INSTANTIATE(__half)
#undef SW_INSTANTIATE

}  // namespace shardwise::cuda
