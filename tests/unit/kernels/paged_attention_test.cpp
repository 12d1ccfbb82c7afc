#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/dtype.h"
#include "kernels/cpu/kv_cache_write.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/random.h"

namespace shardwise {
namespace {

struct Case {
  std::vector<int> seq_lengths;  // tokens of each sequence
  int heads, kv_heads, head_dim, block_size;
};

// Dense causal attention in double over each sequence's contiguous K/V.
std::vector<float> reference_attention(const std::vector<float>& q,
                                       const std::vector<std::vector<float>>& k,
                                       const std::vector<std::vector<float>>& v,
                                       const std::vector<int32_t>& seq_index,
                                       const std::vector<int32_t>& context_lens, const Case& c) {
  const int group = c.heads / c.kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  std::vector<float> out(q.size());
  for (std::size_t t = 0; t < seq_index.size(); ++t) {
    const auto& keys = k[seq_index[t]];
    const auto& values = v[seq_index[t]];
    for (int h = 0; h < c.heads; ++h) {
      const int kvh = h / group;
      std::vector<double> scores(context_lens[t]);
      for (int p = 0; p < context_lens[t]; ++p) {
        double dot = 0;
        for (int d = 0; d < c.head_dim; ++d) {
          dot += static_cast<double>(q[(t * c.heads + h) * c.head_dim + d]) *
                 keys[(p * c.kv_heads + kvh) * c.head_dim + d];
        }
        scores[p] = dot * scale;
      }
      const double top = *std::max_element(scores.begin(), scores.end());
      double total = 0;
      for (double& s : scores) total += (s = std::exp(s - top));
      for (int d = 0; d < c.head_dim; ++d) {
        double sum = 0;
        for (int p = 0; p < context_lens[t]; ++p) {
          sum += scores[p] / total * values[(p * c.kv_heads + kvh) * c.head_dim + d];
        }
        out[(t * c.heads + h) * c.head_dim + d] = static_cast<float>(sum);
      }
    }
  }
  return out;
}

std::vector<float> rounded_to_bf16(std::vector<float> values) {
  for (float& value : values) value = bf16_to_f32(f32_to_bf16(value));
  return values;
}

// Each instruction set (skipped where the CPU lacks it) with an fp32 and a bf16 cache.
class PagedAttentionTest
    : public ::testing::TestWithParam<std::tuple<Case, cpu::CpuIsa, bool /*bf16 cache*/>> {};

// Every sequence's K/V is written through kv_cache_write into shuffled blocks; the queries are
// each sequence's last few tokens (a prefill chunk) or only its last token (decode). A bf16
// cache is compared against the reference on the bf16-rounded K/V, so the tolerance stays fp32.
TEST_P(PagedAttentionTest, MatchesDenseReference) {
  const auto [c, isa, bf16_cache] = GetParam();
  if (!cpu::cpu_supports(isa)) {
    GTEST_SKIP() << "this CPU lacks " << cpu::cpu_isa_name(isa) << " (" << cpu::cpu_description()
                 << ")";
  }
  std::mt19937 rng(c.head_dim * 1000 + c.block_size * 10 + c.kv_heads);
  const int n_seqs = static_cast<int>(c.seq_lengths.size());
  int max_blocks = 0, total_blocks = 0;
  for (int length : c.seq_lengths) {
    const int blocks = (length + c.block_size - 1) / c.block_size;
    max_blocks = std::max(max_blocks, blocks);
    total_blocks += blocks;
  }
  std::vector<int32_t> free_blocks(total_blocks + 3);  // spare blocks stay unused (NaN)
  std::iota(free_blocks.begin(), free_blocks.end(), 0);
  std::shuffle(free_blocks.begin(), free_blocks.end(), rng);
  const std::size_t slot_width = static_cast<std::size_t>(c.kv_heads) * c.head_dim;
  std::vector<float> k_cache(free_blocks.size() * c.block_size * slot_width, NAN);
  std::vector<float> v_cache(k_cache.size(), NAN);
  std::vector<uint16_t> k_cache16(k_cache.size(), 0x7fc0), v_cache16(k_cache.size(), 0x7fc0);
  std::vector<int32_t> block_tables(n_seqs * max_blocks, -1);

  std::vector<std::vector<float>> keys(n_seqs), values(n_seqs);
  std::vector<int32_t> seq_index, context_lens;
  std::size_t next_block = 0;
  for (int s = 0; s < n_seqs; ++s) {
    const int length = c.seq_lengths[s];
    for (int b = 0; b * c.block_size < length; ++b)
      block_tables[s * max_blocks + b] = free_blocks[next_block++];
    keys[s] = testing::random_normal(length * slot_width, rng);
    values[s] = testing::random_normal(length * slot_width, rng);
    std::vector<int32_t> slots(length);
    for (int p = 0; p < length; ++p)
      slots[p] = block_tables[s * max_blocks + p / c.block_size] * c.block_size + p % c.block_size;
    if (bf16_cache) {
      cpu::kv_cache_write(k_cache16.data(), v_cache16.data(), keys[s].data(), values[s].data(),
                          slots.data(), length, c.kv_heads, c.head_dim);
      keys[s] = rounded_to_bf16(keys[s]);
      values[s] = rounded_to_bf16(values[s]);
    } else {
      cpu::kv_cache_write(k_cache.data(), v_cache.data(), keys[s].data(), values[s].data(),
                          slots.data(), length, c.kv_heads, c.head_dim);
    }
    const int queries = s % 2 == 0 ? 1 : std::min(length, 5);
    for (int p = length - queries; p < length; ++p) {
      seq_index.push_back(s);
      context_lens.push_back(p + 1);
    }
  }
  const int n_tokens = static_cast<int>(seq_index.size());
  auto q = testing::random_normal(n_tokens * c.heads * c.head_dim, rng);
  std::vector<float> out(q.size(), NAN);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (bf16_cache) {
    cpu::paged_attention(out.data(), q.data(), k_cache16.data(), v_cache16.data(),
                         block_tables.data(), seq_index.data(), context_lens.data(), n_tokens,
                         c.heads, c.kv_heads, c.head_dim, c.block_size, max_blocks, scale, isa);
  } else {
    cpu::paged_attention(out.data(), q.data(), k_cache.data(), v_cache.data(), block_tables.data(),
                         seq_index.data(), context_lens.data(), n_tokens, c.heads, c.kv_heads,
                         c.head_dim, c.block_size, max_blocks, scale, isa);
  }
  EXPECT_TRUE(testing::close_by_relative_error(
      out, reference_attention(q, keys, values, seq_index, context_lens, c),
      testing::Tolerance::kF32Kernel));
}

INSTANTIATE_TEST_SUITE_P(
    GqaRatiosAndOddLengths, PagedAttentionTest,
    ::testing::Combine(
        ::testing::Values(Case{{1}, 1, 1, 8, 1},              // single token, block of one
                          Case{{17, 5, 33}, 4, 4, 16, 16},    // MHA, lengths not multiples of 16
                          Case{{100, 1, 37}, 8, 2, 16, 16},   // GQA 4
                          Case{{64, 19}, 32, 4, 64, 3},       // GQA 8, odd block size
                          Case{{7, 50, 3, 29}, 6, 3, 10, 4},  // head_dim 10
                          Case{{130, 2}, 16, 1, 128, 64},     // GQA 16: two passes of 8 heads
                          Case{{300}, 2, 1, 256, 48}),        // chunks of 32 inside big blocks
        ::testing::Values(cpu::CpuIsa::kScalar, cpu::CpuIsa::kAvx2, cpu::CpuIsa::kAvx512),
        ::testing::Bool()),
    [](const auto& info) {
      const Case& c = std::get<0>(info.param);
      return "seqs" + std::to_string(c.seq_lengths.size()) + "_heads" + std::to_string(c.heads) +
             "_kv" + std::to_string(c.kv_heads) + "_dim" + std::to_string(c.head_dim) + "_block" +
             std::to_string(c.block_size) + "_" +
             std::string(cpu::cpu_isa_name(std::get<1>(info.param))) +
             (std::get<2>(info.param) ? "_bf16" : "_f32");
    });

TEST(KvCacheWrite, Bf16RoundsToNearestEvenAndSkipsNegativeSlots) {
  std::vector<uint16_t> k_cache(2 * 2, 0), v_cache(2 * 2, 0);
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: even mantissa wins (1.0).
  const std::vector<float> k{1.0f + 1.0f / 256, 3.0f, 9.0f, 9.0f}, v{-2.0f, 1.0f / 3, 9.0f, 9.0f};
  const std::vector<int32_t> slots{1, -1};
  cpu::kv_cache_write(k_cache.data(), v_cache.data(), k.data(), v.data(), slots.data(), 2, 1, 2);
  EXPECT_EQ(k_cache, (std::vector<uint16_t>{0, 0, 0x3f80, 0x4040}));
  EXPECT_EQ(v_cache, (std::vector<uint16_t>{0, 0, 0xc000, 0x3eab}));
}

TEST(KvCacheWrite, NegativeSlotsAreSkipped) {
  std::vector<float> k_cache(4 * 2, 0.0f), v_cache(4 * 2, 0.0f);
  const std::vector<float> k{1, 2, 3, 4}, v{5, 6, 7, 8};
  const std::vector<int32_t> slots{3, -1};
  cpu::kv_cache_write(k_cache.data(), v_cache.data(), k.data(), v.data(), slots.data(), 2, 1, 2);
  EXPECT_EQ(k_cache, (std::vector<float>{0, 0, 0, 0, 0, 0, 1, 2}));
  EXPECT_EQ(v_cache, (std::vector<float>{0, 0, 0, 0, 0, 0, 5, 6}));
}

}  // namespace
}  // namespace shardwise
