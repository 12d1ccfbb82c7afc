#include "kernels/cpu/silu_and_mul.h"

#include <cmath>

#include "tests/support/test_support.h"
#include "tests/unit/kernels/random.h"

namespace shardwise {
namespace {

TEST(SiluAndMul, MatchesDoubleReferenceOnOddSizes) {
  for (auto [n_tokens, intermediate] : {std::pair{1, 1}, std::pair{5, 43}, std::pair{37, 172}}) {
    std::mt19937 rng(n_tokens + intermediate);
    auto gate_up = testing::random_normal(n_tokens * 2 * intermediate, rng, 0.0f, 3.0f);
    std::vector<float> out(n_tokens * intermediate, NAN), expected(out.size());
    for (int t = 0; t < n_tokens; ++t) {
      for (int i = 0; i < intermediate; ++i) {
        const double gate = gate_up[t * 2 * intermediate + i];
        const double up = gate_up[t * 2 * intermediate + intermediate + i];
        expected[t * intermediate + i] = static_cast<float>(gate / (1 + std::exp(-gate)) * up);
      }
    }
    cpu::silu_and_mul(out.data(), gate_up.data(), n_tokens, intermediate);
    EXPECT_TRUE(testing::close_by_relative_error(out, expected, testing::Tolerance::kF32Kernel))
        << n_tokens << "x" << intermediate;
  }
}

}  // namespace
}  // namespace shardwise
