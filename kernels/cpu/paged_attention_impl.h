// Internal to the CPU paged attention: the per-(token, KV head) loop, written once in plain
// C++ with `omp simd` loops and compiled three times, by paged_attention.cpp (portable) and by
// paged_attention_avx2.cpp / _avx512.cpp with their instruction sets, so that the compiler
// vectorises it for each. Everything defined here has internal linkage for that reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace shardwise::cpu::detail {

// The arguments of cpu::paged_attention, for one cache element type.
struct AttentionArgs {
  float* out;           // [n_tokens, n_heads, head_dim]
  const float* q;       // [n_tokens, n_heads, head_dim]
  const void* k_cache;  // [num_blocks, block_size, n_kv_heads, head_dim], f32 or bf16
  const void* v_cache;  // same
  bool bf16_cache;
  const std::int32_t* block_tables;  // [n_seqs, max_blocks_per_seq]
  const std::int32_t* seq_index;     // [n_tokens]
  const std::int32_t* context_lens;  // [n_tokens]
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int block_size;
  int max_blocks_per_seq;
  float scale;
};

// Work item = token * n_kv_heads + KV head; [begin, end) of them.
void attention_items_scalar(const AttentionArgs& args, int begin, int end);
void attention_items_avx2(const AttentionArgs& args, int begin, int end);
void attention_items_avx512(const AttentionArgs& args, int begin, int end);

// Query heads handled together (those of one GQA group; larger groups in several passes),
// positions scored at a time, and the largest head_dim: the stack arrays' sizes.
constexpr int kAttentionMaxGroup = 8;
constexpr int kAttentionChunk = 32;
constexpr int kAttentionMaxHeadDim = 256;

namespace {

inline float widen(float value) { return value; }
inline float widen(std::uint16_t bf16) {
  const std::uint32_t bits = static_cast<std::uint32_t>(bf16) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// exp(x) for x <= 0 (scores minus their running maximum), Cephes' polynomial on [-ln2/2, ln2/2]
// after x = n ln2 + r: about 1e-7 relative, and plain arithmetic, so that `omp simd` loops
// vectorise it. Below -87 it returns ~1e-38 instead of a subnormal; the products stay 0.
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  constexpr float kRoundingShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504f + kRoundingShift) - kRoundingShift;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t exponent = (static_cast<std::int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &exponent, sizeof(two_n));
  return p * two_n;
}

// Online softmax (running maximum and sum per query head, the output rescaled when the maximum
// grows) over the token's context, `group` query heads sharing each K and V row read.
template <typename Cache>
void attend_group(const AttentionArgs& a, int token, int kv_head, int first_head, int group) {
  const int d = a.head_dim;
  const auto* k_cache = static_cast<const Cache*>(a.k_cache);
  const auto* v_cache = static_cast<const Cache*>(a.v_cache);
  const std::size_t slot_stride = static_cast<std::size_t>(a.n_kv_heads) * d;
  const std::int32_t* table =
      a.block_tables + static_cast<std::size_t>(a.seq_index[token]) * a.max_blocks_per_seq;
  const float* q = a.q + (static_cast<std::size_t>(token) * a.n_heads + first_head) * d;
  const int context = a.context_lens[token];

  float running_max[kAttentionMaxGroup], running_sum[kAttentionMaxGroup];
  float acc[kAttentionMaxGroup][kAttentionMaxHeadDim];
  float scores[kAttentionMaxGroup][kAttentionChunk];
  for (int g = 0; g < group; ++g) {
    running_max[g] = -3.0e38f;  // finite: exp(-3e38 - max) is 0, never NaN
    running_sum[g] = 0;
    for (int i = 0; i < d; ++i) acc[g][i] = 0;
  }
  for (int pos0 = 0; pos0 < context;) {
    // A chunk never crosses a block: its slots are consecutive.
    const int in_block = pos0 % a.block_size;
    int n = a.block_size - in_block;
    n = n < context - pos0 ? n : context - pos0;
    n = n < kAttentionChunk ? n : kAttentionChunk;
    const std::size_t first_slot =
        static_cast<std::size_t>(table[pos0 / a.block_size]) * a.block_size + in_block;
    const Cache* keys = k_cache + first_slot * slot_stride + static_cast<std::size_t>(kv_head) * d;
    const Cache* values =
        v_cache + first_slot * slot_stride + static_cast<std::size_t>(kv_head) * d;
    for (int j = 0; j < n; ++j) {
      const Cache* key = keys + j * slot_stride;
      for (int g = 0; g < group; ++g) {
        const float* query = q + static_cast<std::size_t>(g) * d;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int i = 0; i < d; ++i) dot += query[i] * widen(key[i]);
        scores[g][j] = dot * a.scale;
      }
    }
    for (int g = 0; g < group; ++g) {
      float chunk_max = running_max[g];
      for (int j = 0; j < n; ++j) chunk_max = scores[g][j] > chunk_max ? scores[g][j] : chunk_max;
      const float correction = exp_nonpositive(running_max[g] - chunk_max);
      running_max[g] = chunk_max;
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int j = 0; j < n; ++j) {
        scores[g][j] = exp_nonpositive(scores[g][j] - chunk_max);
        sum += scores[g][j];
      }
      running_sum[g] = running_sum[g] * correction + sum;
#pragma omp simd
      for (int i = 0; i < d; ++i) acc[g][i] *= correction;
    }
    for (int j = 0; j < n; ++j) {
      const Cache* value = values + j * slot_stride;
      for (int g = 0; g < group; ++g) {
        const float weight = scores[g][j];
#pragma omp simd
        for (int i = 0; i < d; ++i) acc[g][i] += weight * widen(value[i]);
      }
    }
    pos0 += n;
  }
  for (int g = 0; g < group; ++g) {
    float* out = a.out + (static_cast<std::size_t>(token) * a.n_heads + first_head + g) * d;
    const float inverse = 1.0f / running_sum[g];
#pragma omp simd
    for (int i = 0; i < d; ++i) out[i] = acc[g][i] * inverse;
  }
}

template <typename Cache>
void attend_items(const AttentionArgs& a, int begin, int end) {
  const int group = a.n_heads / a.n_kv_heads;
  for (int item = begin; item < end; ++item) {
    const int token = item / a.n_kv_heads, kv_head = item % a.n_kv_heads;
    for (int g0 = 0; g0 < group; g0 += kAttentionMaxGroup) {
      const int heads = group - g0 < kAttentionMaxGroup ? group - g0 : kAttentionMaxGroup;
      attend_group<Cache>(a, token, kv_head, kv_head * group + g0, heads);
    }
  }
}

inline void attention_items(const AttentionArgs& a, int begin, int end) {
  if (a.bf16_cache) {
    attend_items<std::uint16_t>(a, begin, end);
  } else {
    attend_items<float>(a, begin, end);
  }
}

}  // namespace
}  // namespace shardwise::cpu::detail
