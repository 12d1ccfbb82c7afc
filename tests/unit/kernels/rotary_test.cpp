#include "kernels/cpu/rotary.h"

#include <cmath>
#include <numbers>

#include "tests/support/test_support.h"
#include "tests/unit/kernels/random.h"

namespace shardwise {
namespace {

// Transformers' rope init functions, transcribed in double precision.
std::vector<float> reference_inv_freq(int head_dim, const RopeParams& p) {
  std::vector<float> inv_freq(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) {
    double freq = 1.0 / std::pow(static_cast<double>(p.theta), 2.0 * i / head_dim);
    if (p.type == RopeType::kLlama3) {
      const double wavelen = 2 * std::numbers::pi / freq;
      const double low_wavelen = p.original_max_position_embeddings / p.low_freq_factor;
      const double high_wavelen = p.original_max_position_embeddings / p.high_freq_factor;
      if (wavelen > low_wavelen) {
        freq /= p.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (p.original_max_position_embeddings / wavelen - p.low_freq_factor) /
                              (p.high_freq_factor - p.low_freq_factor);
        freq = (1 - smooth) * freq / p.factor + smooth * freq;
      }
    }
    inv_freq[i] = static_cast<float>(freq);
  }
  return inv_freq;
}

TEST(RopeInvFreq, DefaultMatchesReference) {
  RopeParams params;
  params.theta = 10000;
  std::vector<float> inv_freq(64);
  cpu::rope_inv_freq(inv_freq.data(), 128, params);
  EXPECT_TRUE(testing::close_by_relative_error(inv_freq, reference_inv_freq(128, params), 1e-6));
}

TEST(RopeInvFreq, Llama3ScalingCoversAllThreeBands) {
  RopeParams params{RopeType::kLlama3, 500000.0f, 8.0f, 1.0f, 4.0f, 8192};
  std::vector<float> inv_freq(64), unscaled(64);
  cpu::rope_inv_freq(inv_freq.data(), 128, params);
  cpu::rope_inv_freq(unscaled.data(), 128, RopeParams{RopeType::kDefault, 500000.0f});
  EXPECT_TRUE(testing::close_by_relative_error(inv_freq, reference_inv_freq(128, params), 1e-6));
  // Highest frequency untouched, lowest divided by the factor, some in between smoothed.
  EXPECT_EQ(inv_freq[0], unscaled[0]);
  EXPECT_FLOAT_EQ(inv_freq[63], unscaled[63] / 8.0f);
  int smoothed = 0;
  for (int i = 0; i < 64; ++i) {
    smoothed += inv_freq[i] != unscaled[i] &&
                std::fabs(inv_freq[i] - unscaled[i] / 8) > 1e-6f * unscaled[i];
  }
  EXPECT_GT(smoothed, 0);
}

TEST(ApplyRotary, MatchesDoubleReferenceRotateHalf) {
  for (auto [n_tokens, heads, kv_heads, head_dim] :
       {std::tuple{1, 1, 1, 2}, std::tuple{5, 8, 2, 16}, std::tuple{37, 4, 4, 64},
        std::tuple{3, 6, 3, 10}}) {
    std::mt19937 rng(n_tokens * 31 + head_dim);
    auto q = testing::random_normal(n_tokens * heads * head_dim, rng);
    auto k = testing::random_normal(n_tokens * kv_heads * head_dim, rng);
    std::vector<int32_t> positions(n_tokens);
    for (int t = 0; t < n_tokens; ++t) positions[t] = (t * 97 + 3) % 4000;
    const auto inv_freq = reference_inv_freq(head_dim, RopeParams{});

    auto rotate = [&](const std::vector<float>& x, int n_heads) {
      std::vector<float> out(x.size());
      const int half = head_dim / 2;
      for (int t = 0; t < n_tokens; ++t) {
        for (int h = 0; h < n_heads; ++h) {
          const float* in = x.data() + (t * n_heads + h) * head_dim;
          float* o = out.data() + (t * n_heads + h) * head_dim;
          for (int i = 0; i < half; ++i) {
            const double angle =
                static_cast<double>(static_cast<float>(positions[t]) * inv_freq[i]);
            o[i] = static_cast<float>(in[i] * std::cos(angle) - in[i + half] * std::sin(angle));
            o[i + half] =
                static_cast<float>(in[i + half] * std::cos(angle) + in[i] * std::sin(angle));
          }
        }
      }
      return out;
    };
    const auto expected_q = rotate(q, heads);
    const auto expected_k = rotate(k, kv_heads);
    cpu::apply_rotary(q.data(), k.data(), positions.data(), inv_freq.data(), n_tokens, heads,
                      kv_heads, head_dim);
    EXPECT_TRUE(testing::close_by_relative_error(q, expected_q, testing::Tolerance::kF32Kernel));
    EXPECT_TRUE(testing::close_by_relative_error(k, expected_k, testing::Tolerance::kF32Kernel));
  }
}

}  // namespace
}  // namespace shardwise
