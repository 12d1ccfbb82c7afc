#include "kernels/cpu/linear.h"

#include "kernels/cpu/lm_head.h"
#include "tests/support/test_support.h"
#include "tests/unit/kernels/random.h"

namespace shardwise {
namespace {

std::vector<float> reference_linear(const std::vector<float>& in, const std::vector<float>& weight,
                                    int n_tokens, int out_features, int in_features) {
  std::vector<float> out(n_tokens * out_features);
  for (int t = 0; t < n_tokens; ++t) {
    for (int o = 0; o < out_features; ++o) {
      double sum = 0;
      for (int i = 0; i < in_features; ++i)
        sum += static_cast<double>(in[t * in_features + i]) * weight[o * in_features + i];
      out[t * out_features + o] = static_cast<float>(sum);
    }
  }
  return out;
}

TEST(Linear, MatchesDoubleReferenceOnOddSizes) {
  for (auto [n, out_f, in_f] :
       {std::tuple{1, 1, 1}, std::tuple{3, 17, 65}, std::tuple{37, 129, 250}}) {
    std::mt19937 rng(n * 1000 + out_f);
    auto in = testing::random_normal(n * in_f, rng);
    auto weight = testing::random_normal(out_f * in_f, rng);
    std::vector<float> out(n * out_f, NAN);
    cpu::linear(out.data(), in.data(), weight.data(), n, out_f, in_f);
    EXPECT_TRUE(testing::close_by_relative_error(out, reference_linear(in, weight, n, out_f, in_f),
                                                 testing::Tolerance::kF32Kernel));
  }
}

TEST(LmHead, ComputesOnlyTheSelectedRows) {
  std::mt19937 rng(5);
  const int n_tokens = 9, hidden = 33, vocab = 101;
  auto states = testing::random_normal(n_tokens * hidden, rng);
  auto weight = testing::random_normal(vocab * hidden, rng);
  const auto all = reference_linear(states, weight, n_tokens, vocab, hidden);
  const std::vector<int32_t> rows{8, 0, 4};
  std::vector<float> logits(rows.size() * vocab, NAN), expected;
  for (int32_t row : rows)
    expected.insert(expected.end(), all.begin() + row * vocab, all.begin() + (row + 1) * vocab);
  cpu::lm_head(logits.data(), states.data(), rows.data(), weight.data(), 3, vocab, hidden);
  EXPECT_TRUE(testing::close_by_relative_error(logits, expected, testing::Tolerance::kF32Kernel));
}

}  // namespace
}  // namespace shardwise
