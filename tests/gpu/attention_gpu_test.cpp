// The CUDA attention kernels (kv_cache_write, paged_attention_decode, prefill_attention)
// against the CPU references, for float, bf16 and half, on odd sizes and permuted block tables.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/kv_cache_write.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/kv_cache_write.h"
#include "kernels/cuda/paged_attention_decode.h"
#include "kernels/cuda/prefill_attention.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/kernel_test_util.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

using testing::DeviceBuffer;
using testing::normal_vector;
using testing::round_to;
using testing::to_floats;
using testing::Tolerance;

// fp32 past one decode partition sums thousands of terms in the reference: kF32LongSum.
double fp32_tolerance(int max_context) {
  return max_context <= cuda::kPartitionTokens ? Tolerance::kF32Kernel : Tolerance::kF32LongSum;
}

template <typename T>
double tolerance_for(int max_context) {
  if constexpr (std::is_same_v<T, float>) return fp32_tolerance(max_context);
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return Tolerance::kBF16;
  // Override for fp16 (the table's kF16 is 2e-3): the tensor-core prefill narrows the softmax
  // probabilities to T before P.V, so these tests keep the bf16 bound, a safe upper bound for
  // fp16, which keeps 3 more mantissa bits than bf16.
  return Tolerance::kBF16;
}

std::vector<int> random_lengths(int n, int lo, int hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> lengths(n);
  for (auto& length : lengths) length = dist(rng);
  return lengths;
}

// A paged KV cache holding random keys and values at positions [0, contexts[s]) of each
// sequence, in randomly permuted blocks. Every other slot (the tails of last blocks, a spare
// block, unused block-table entries pointing at it) holds NaN, so reading past a context fails.
struct PagedKv {
  int block_size = 0, n_kv_heads = 0, head_dim = 0, max_blocks_per_seq = 0, num_blocks = 0;
  std::vector<int32_t> block_tables;  // [n_seqs, max_blocks_per_seq]
  std::vector<float> k_cache;         // [num_blocks, block_size, n_kv_heads, head_dim]
  std::vector<float> v_cache;         // [num_blocks, block_size, n_kv_heads, head_dim]
};

PagedKv make_paged_kv(const std::vector<int>& contexts, int block_size, int n_kv_heads,
                      int head_dim, std::mt19937& rng) {
  PagedKv kv{block_size, n_kv_heads, head_dim, 1, 0, {}, {}, {}};
  int needed = 0;
  for (int context : contexts) {
    const int blocks = (context + block_size - 1) / block_size;
    needed += blocks;
    kv.max_blocks_per_seq = std::max(kv.max_blocks_per_seq, blocks + 1);
  }
  kv.num_blocks = needed + 1;  // the last block of the permutation is the NaN spare
  std::vector<int32_t> permutation(kv.num_blocks);
  std::iota(permutation.begin(), permutation.end(), 0);
  std::shuffle(permutation.begin(), permutation.end(), rng);
  const int32_t spare = permutation.back();
  const std::size_t slot_size = static_cast<std::size_t>(n_kv_heads) * head_dim;
  const std::size_t cache_size = static_cast<std::size_t>(kv.num_blocks) * block_size * slot_size;
  kv.k_cache.assign(cache_size, NAN);
  kv.v_cache.assign(cache_size, NAN);
  kv.block_tables.assign(contexts.size() * kv.max_blocks_per_seq, spare);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  int next = 0;
  for (std::size_t s = 0; s < contexts.size(); ++s) {
    for (int pos = 0; pos < contexts[s]; ++pos) {
      if (pos % block_size == 0)
        kv.block_tables[s * kv.max_blocks_per_seq + pos / block_size] = permutation[next++];
      const std::size_t slot =
          static_cast<std::size_t>(kv.block_tables[s * kv.max_blocks_per_seq + pos / block_size]) *
              block_size +
          pos % block_size;
      for (std::size_t i = 0; i < slot_size; ++i) {
        kv.k_cache[slot * slot_size + i] = normal(rng);
        kv.v_cache[slot * slot_size + i] = normal(rng);
      }
    }
  }
  return kv;
}

// ---------------------------------------------------------------------------------------------
// Decode

struct DecodeCase {
  std::string name;
  std::vector<int> contexts;  // one per sequence
  int n_heads, n_kv_heads, head_dim, block_size;
  int extra_max_context;  // max_context_len passed = the largest context + this (graph bound)
};

class DecodeGpuTest : public ::testing::TestWithParam<DecodeCase> {};

template <typename T>
void run_decode(const DecodeCase& c) {
  std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>{}(c.name)));
  const int n_seqs = static_cast<int>(c.contexts.size());
  PagedKv kv = make_paged_kv(c.contexts, c.block_size, c.n_kv_heads, c.head_dim, rng);
  // q rows strided as in the fused QKV output.
  const int q_row_stride = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
  const int q_width = c.n_heads * c.head_dim;
  std::vector<float> q_rows = normal_vector(static_cast<std::size_t>(n_seqs) * q_row_stride, rng);
  const auto q_t = round_to<T>(q_rows);
  const auto k_t = round_to<T>(kv.k_cache);
  const auto v_t = round_to<T>(kv.v_cache);

  std::vector<float> q_ref(static_cast<std::size_t>(n_seqs) * q_width);
  for (int s = 0; s < n_seqs; ++s)
    std::copy_n(q_rows.begin() + static_cast<std::ptrdiff_t>(s) * q_row_stride, q_width,
                q_ref.begin() + static_cast<std::ptrdiff_t>(s) * q_width);
  std::vector<int32_t> seq_index(n_seqs), context_lens(c.contexts.begin(), c.contexts.end());
  std::iota(seq_index.begin(), seq_index.end(), 0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::vector<float> expected(q_ref.size());
  cpu::paged_attention(expected.data(), q_ref.data(), kv.k_cache.data(), kv.v_cache.data(),
                       kv.block_tables.data(), seq_index.data(), context_lens.data(), n_seqs,
                       c.n_heads, c.n_kv_heads, c.head_dim, c.block_size, kv.max_blocks_per_seq,
                       scale);

  const int max_context =
      *std::max_element(c.contexts.begin(), c.contexts.end()) + c.extra_max_context;
  const std::size_t workspace_bytes =
      cuda::paged_attention_decode_workspace_bytes(n_seqs, c.n_heads, c.head_dim, max_context);
  DeviceBuffer<T> d_q(q_t), d_k(k_t), d_v(v_t), d_out(expected.size());
  DeviceBuffer<int32_t> d_tables(kv.block_tables), d_contexts(context_lens);
  DeviceBuffer<char> d_workspace(std::max<std::size_t>(workspace_bytes, 16));
  cuda::launch_paged_attention_decode<T>(
      d_out.get(), d_q.get(), d_k.get(), d_v.get(), d_tables.get(), d_contexts.get(), n_seqs,
      c.n_heads, c.n_kv_heads, c.head_dim, q_row_stride, c.block_size, kv.max_blocks_per_seq,
      max_context, scale, workspace_bytes > 0 ? d_workspace.get() : nullptr, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> actual = to_floats(d_out.to_host());
  EXPECT_TRUE(testing::close_by_relative_error(actual, expected, tolerance_for<T>(max_context)));
  // Padding sequences (context 0) give exact zeros.
  for (int s = 0; s < n_seqs; ++s) {
    if (c.contexts[s] != 0) continue;
    for (int i = 0; i < q_width; ++i)
      ASSERT_EQ(actual[static_cast<std::size_t>(s) * q_width + i], 0.0f)
          << "seq " << s << " i " << i;
  }
}

TEST_P(DecodeGpuTest, Float32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_decode<float>(GetParam());
}
TEST_P(DecodeGpuTest, BFloat16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_decode<__nv_bfloat16>(GetParam());
}
TEST_P(DecodeGpuTest, Float16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_decode<__half>(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, DecodeGpuTest,
    ::testing::Values(
        // name, contexts, n_heads, n_kv_heads, head_dim, block_size, extra_max_context
        DecodeCase{"OneTokenContext", {1}, 8, 8, 128, 16, 0},
        DecodeCase{"Gqa4AcrossPartitionEdge", {1, 511, 512, 513, 700, 37, 1024}, 16, 4, 128, 16, 0},
        DecodeCase{"Gqa8LongContexts", {1500, 4097, 513}, 32, 4, 128, 16, 0},
        DecodeCase{"Batch37HeadDim64", random_lengths(37, 1, 300, 1), 4, 4, 64, 8, 0},
        DecodeCase{"Batch37Gqa8HeadDim64", random_lengths(37, 1, 1300, 2), 16, 2, 64, 32, 0},
        DecodeCase{"HeadDim96Gqa8", {1, 511, 512, 1025, 2000}, 16, 2, 96, 32, 0},
        DecodeCase{"HeadDim80Gqa16", {33, 777}, 16, 1, 80, 16, 0},
        DecodeCase{"HeadDim256Gqa2", {300, 900}, 4, 2, 256, 16, 0},
        DecodeCase{"PaddingOnePartition", {0, 17, 0, 200}, 8, 2, 128, 16, 0},
        DecodeCase{"PaddingSplit", {0, 5, 0, 600}, 8, 2, 128, 16, 0},
        DecodeCase{"GraphBoundPastContexts", {3, 100, 1000}, 8, 2, 128, 16, 3000}),
    [](const ::testing::TestParamInfo<DecodeCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Prefill (and mixed prefill/decode batches)

struct PrefillCase {
  std::string name;
  std::vector<std::pair<int, int>> seqs;  // (query_len, context_len) per sequence
  int n_heads, n_kv_heads, head_dim, block_size;
};

class PrefillGpuTest : public ::testing::TestWithParam<PrefillCase> {};

template <typename T>
void run_prefill(const PrefillCase& c) {
  std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>{}(c.name)));
  const int n_seqs = static_cast<int>(c.seqs.size());
  std::vector<int> contexts;
  std::vector<int32_t> query_starts{0}, context_lens, seq_index, token_contexts;
  int max_query_len = 0, max_context = 0;
  for (int s = 0; s < n_seqs; ++s) {
    const auto [query_len, context] = c.seqs[s];
    contexts.push_back(context);
    context_lens.push_back(context);
    query_starts.push_back(query_starts.back() + query_len);
    max_query_len = std::max(max_query_len, query_len);
    max_context = std::max(max_context, context);
    for (int i = 0; i < query_len; ++i) {
      seq_index.push_back(s);
      token_contexts.push_back(context - query_len + i + 1);  // its position + 1
    }
  }
  const int n_tokens = query_starts.back();
  PagedKv kv = make_paged_kv(contexts, c.block_size, c.n_kv_heads, c.head_dim, rng);
  const int q_row_stride = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim;
  const int q_width = c.n_heads * c.head_dim;
  std::vector<float> q_rows = normal_vector(static_cast<std::size_t>(n_tokens) * q_row_stride, rng);
  const auto q_t = round_to<T>(q_rows);
  const auto k_t = round_to<T>(kv.k_cache);
  const auto v_t = round_to<T>(kv.v_cache);
  std::vector<float> q_ref(static_cast<std::size_t>(n_tokens) * q_width);
  for (int t = 0; t < n_tokens; ++t)
    std::copy_n(q_rows.begin() + static_cast<std::ptrdiff_t>(t) * q_row_stride, q_width,
                q_ref.begin() + static_cast<std::ptrdiff_t>(t) * q_width);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::vector<float> expected(q_ref.size());
  cpu::paged_attention(expected.data(), q_ref.data(), kv.k_cache.data(), kv.v_cache.data(),
                       kv.block_tables.data(), seq_index.data(), token_contexts.data(), n_tokens,
                       c.n_heads, c.n_kv_heads, c.head_dim, c.block_size, kv.max_blocks_per_seq,
                       scale);

  DeviceBuffer<T> d_q(q_t), d_k(k_t), d_v(v_t), d_out(expected.size());
  DeviceBuffer<int32_t> d_tables(kv.block_tables), d_starts(query_starts), d_contexts(context_lens);
  // max_query_len is an upper bound: blocks past a sequence's rows must exit.
  cuda::launch_prefill_attention<T>(d_out.get(), d_q.get(), d_k.get(), d_v.get(), d_tables.get(),
                                    d_starts.get(), d_contexts.get(), n_seqs, max_query_len + 40,
                                    c.n_heads, c.n_kv_heads, c.head_dim, q_row_stride, c.block_size,
                                    kv.max_blocks_per_seq, scale, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(testing::close_by_relative_error(to_floats(d_out.to_host()), expected,
                                               tolerance_for<T>(max_context)));
}

TEST_P(PrefillGpuTest, Float32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_prefill<float>(GetParam());
}
TEST_P(PrefillGpuTest, BFloat16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_prefill<__nv_bfloat16>(GetParam());
}
TEST_P(PrefillGpuTest, Float16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_prefill<__half>(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, PrefillGpuTest,
    ::testing::Values(
        // name, {(query_len, context_len)}, n_heads, n_kv_heads, head_dim, block_size
        PrefillCase{"SinglePrompt", {{37, 37}}, 8, 8, 128, 16},
        PrefillCase{"MixedChunkedAndDecodeGqa4",
                    {{100, 100}, {1, 530}, {64, 1000}, {1, 17}, {250, 250}, {3, 40}},
                    32,
                    8,
                    128,
                    16},
        PrefillCase{"Gqa4HeadDim64", {{33, 33}, {16, 80}, {1, 1}, {7, 7}}, 16, 4, 64, 8},
        PrefillCase{"Gqa8HeadDim64", {{45, 300}, {1, 129}}, 16, 2, 64, 32},
        PrefillCase{"HeadDim96Gqa3", {{70, 200}, {5, 5}, {1, 300}}, 12, 4, 96, 32},
        PrefillCase{"HeadDim80Gqa16", {{20, 50}, {1, 2}}, 16, 1, 80, 16},
        PrefillCase{"HeadDim256", {{40, 90}, {1, 64}}, 4, 2, 256, 16},
        PrefillCase{"LongPrompt", {{600, 600}}, 8, 2, 128, 16}),
    [](const ::testing::TestParamInfo<PrefillCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// KV cache write

struct KvWriteCase {
  std::string name;
  int n_tokens, n_kv_heads, head_dim, block_size, extra_stride;
};

class KvCacheWriteGpuTest : public ::testing::TestWithParam<KvWriteCase> {};

template <typename T>
void run_kv_write(const KvWriteCase& c) {
  std::mt19937 rng(static_cast<unsigned>(std::hash<std::string>{}(c.name)));
  const int row = c.n_kv_heads * c.head_dim;
  const int stride = row + c.extra_stride;  // k and v rows inside a wider (fused QKV) row
  const int num_blocks = (c.n_tokens + c.block_size - 1) / c.block_size + 2;
  const std::size_t cache_size = static_cast<std::size_t>(num_blocks) * c.block_size * row;
  // Distinct slots in random order; every third token is padding (slot -1).
  std::vector<int32_t> slots(static_cast<std::size_t>(num_blocks) * c.block_size);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  slots.resize(c.n_tokens);
  for (int t = 2; t < c.n_tokens; t += 3) slots[t] = -1;

  std::vector<float> k_cache = normal_vector(cache_size, rng);
  std::vector<float> v_cache = normal_vector(cache_size, rng);
  std::vector<float> k_rows = normal_vector(static_cast<std::size_t>(c.n_tokens) * stride, rng);
  std::vector<float> v_rows = normal_vector(static_cast<std::size_t>(c.n_tokens) * stride, rng);
  const auto k_cache_t = round_to<T>(k_cache), v_cache_t = round_to<T>(v_cache);
  const auto k_t = round_to<T>(k_rows), v_t = round_to<T>(v_rows);
  std::vector<float> k_ref(static_cast<std::size_t>(c.n_tokens) * row), v_ref(k_ref.size());
  for (int t = 0; t < c.n_tokens; ++t) {
    std::copy_n(k_rows.begin() + static_cast<std::ptrdiff_t>(t) * stride, row,
                k_ref.begin() + static_cast<std::ptrdiff_t>(t) * row);
    std::copy_n(v_rows.begin() + static_cast<std::ptrdiff_t>(t) * stride, row,
                v_ref.begin() + static_cast<std::ptrdiff_t>(t) * row);
  }
  cpu::kv_cache_write(k_cache.data(), v_cache.data(), k_ref.data(), v_ref.data(), slots.data(),
                      c.n_tokens, c.n_kv_heads, c.head_dim);

  DeviceBuffer<T> d_k_cache(k_cache_t), d_v_cache(v_cache_t), d_k(k_t), d_v(v_t);
  DeviceBuffer<int32_t> d_slots(slots);
  cuda::launch_kv_cache_write<T>(d_k_cache.get(), d_v_cache.get(), d_k.get(), d_v.get(),
                                 d_slots.get(), c.n_tokens, c.n_kv_heads, c.head_dim, stride,
                                 nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  // A copy: exact, including the slots that must stay untouched.
  const auto k_actual = to_floats(d_k_cache.to_host());
  const auto v_actual = to_floats(d_v_cache.to_host());
  for (std::size_t i = 0; i < cache_size; ++i) {
    ASSERT_EQ(k_actual[i], k_cache[i]) << "k_cache[" << i << "], slot " << i / row;
    ASSERT_EQ(v_actual[i], v_cache[i]) << "v_cache[" << i << "], slot " << i / row;
  }
}

TEST_P(KvCacheWriteGpuTest, Float32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_kv_write<float>(GetParam());
}
TEST_P(KvCacheWriteGpuTest, BFloat16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_kv_write<__nv_bfloat16>(GetParam());
}
TEST_P(KvCacheWriteGpuTest, Float16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  run_kv_write<__half>(GetParam());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, KvCacheWriteGpuTest,
    ::testing::Values(
        // name, n_tokens, n_kv_heads, head_dim, block_size, extra_stride
        KvWriteCase{"Decode37Gqa8", 37, 8, 128, 16, 32 * 128 + 8 * 128},
        KvWriteCase{"PrefillHeadDim64", 300, 2, 64, 8, 0},
        KvWriteCase{"UnalignedRows", 29, 3, 6, 16, 2},  // scalar path: rows not 16-byte units
        KvWriteCase{"OneToken", 1, 1, 80, 32, 0}),
    [](const ::testing::TestParamInfo<KvWriteCase>& info) { return info.param.name; });

}  // namespace
}  // namespace shardwise
