#include "kernels/cpu/rms_norm.h"

#include <cmath>

#include "tests/support/test_support.h"
#include "tests/unit/kernels/random.h"

namespace shardwise {
namespace {

using testing::Tolerance;

std::vector<float> reference_rms_norm(const std::vector<float>& in,
                                      const std::vector<float>& weight, int n_tokens, int hidden,
                                      double eps) {
  std::vector<float> out(in.size());
  for (int t = 0; t < n_tokens; ++t) {
    double sum = 0;
    for (int i = 0; i < hidden; ++i)
      sum += static_cast<double>(in[t * hidden + i]) * in[t * hidden + i];
    const double inv_rms = 1.0 / std::sqrt(sum / hidden + eps);
    for (int i = 0; i < hidden; ++i)
      out[t * hidden + i] = static_cast<float>(in[t * hidden + i] * inv_rms * weight[i]);
  }
  return out;
}

class RmsNormTest : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(RmsNormTest, MatchesDoubleReference) {
  const auto [n_tokens, hidden] = GetParam();
  std::mt19937 rng(n_tokens * 7 + hidden);
  auto in = testing::random_normal(n_tokens * hidden, rng, 0.3f, 2.0f);
  auto weight = testing::random_normal(hidden, rng, 1.0f, 0.2f);
  std::vector<float> out(in.size(), NAN);
  cpu::rms_norm(out.data(), in.data(), weight.data(), n_tokens, hidden, 1e-5f);
  EXPECT_TRUE(testing::close_by_relative_error(
      out, reference_rms_norm(in, weight, n_tokens, hidden, 1e-5), Tolerance::kF32Kernel));
}

TEST_P(RmsNormTest, FusedAddUpdatesResidualAndNormalisesTheSum) {
  const auto [n_tokens, hidden] = GetParam();
  std::mt19937 rng(n_tokens * 11 + hidden);
  auto residual = testing::random_normal(n_tokens * hidden, rng);
  auto x = testing::random_normal(n_tokens * hidden, rng);
  auto weight = testing::random_normal(hidden, rng, 1.0f, 0.2f);
  std::vector<float> sum(residual.size());
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = residual[i] + x[i];
  std::vector<float> out(residual.size(), NAN);
  cpu::fused_add_rms_norm(out.data(), residual.data(), x.data(), weight.data(), n_tokens, hidden,
                          1e-6f);
  EXPECT_EQ(residual, sum);
  EXPECT_TRUE(testing::close_by_relative_error(
      out, reference_rms_norm(sum, weight, n_tokens, hidden, 1e-6), Tolerance::kF32Kernel));
}

INSTANTIATE_TEST_SUITE_P(OddSizes, RmsNormTest,
                         ::testing::Values(std::pair{1, 1}, std::pair{3, 7}, std::pair{37, 100},
                                           std::pair{17, 4096}, std::pair{40, 33}));

}  // namespace
}  // namespace shardwise
