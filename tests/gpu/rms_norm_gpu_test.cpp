#include <cuda_bf16.h>

#include <random>

#include "kernels/cpu/rms_norm.h"
#include "kernels/cuda/rms_norm.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

using testing::DeviceBuffer;
using testing::Tolerance;

std::vector<float> random_vector(std::size_t n, std::mt19937& rng, float mean = 0.0f) {
  std::normal_distribution<float> normal(mean, 1.0f);
  std::vector<float> values(n);
  for (auto& value : values) value = normal(rng);
  return values;
}

class RmsNormGpuTest : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(RmsNormGpuTest, Float32MatchesCpu) {
  SKIP_WITHOUT_GPU();
  const auto [n_tokens, hidden] = GetParam();
  std::mt19937 rng(n_tokens * 131 + hidden);
  auto in = random_vector(static_cast<std::size_t>(n_tokens) * hidden, rng);
  auto weight = random_vector(hidden, rng, 1.0f);
  std::vector<float> expected(in.size());
  cpu::rms_norm(expected.data(), in.data(), weight.data(), n_tokens, hidden, 1e-5f);

  DeviceBuffer<float> d_in(in), d_weight(weight), d_out(in.size());
  cuda::launch_rms_norm(d_out.get(), d_in.get(), d_weight.get(), n_tokens, hidden, 1e-5f, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(testing::close_by_relative_error(d_out.to_host(), expected, Tolerance::kF32Kernel));
}

TEST_P(RmsNormGpuTest, BFloat16MatchesCpu) {
  SKIP_WITHOUT_GPU();
  const auto [n_tokens, hidden] = GetParam();
  std::mt19937 rng(n_tokens * 17 + hidden);
  auto in = random_vector(static_cast<std::size_t>(n_tokens) * hidden, rng);
  auto weight = random_vector(hidden, rng, 1.0f);
  std::vector<__nv_bfloat16> in_bf16(in.size()), weight_bf16(hidden);
  // The reference sees the same bf16-rounded inputs.
  for (std::size_t i = 0; i < in.size(); ++i) {
    in_bf16[i] = __float2bfloat16(in[i]);
    in[i] = __bfloat162float(in_bf16[i]);
  }
  for (int i = 0; i < hidden; ++i) {
    weight_bf16[i] = __float2bfloat16(weight[i]);
    weight[i] = __bfloat162float(weight_bf16[i]);
  }
  std::vector<float> expected(in.size());
  cpu::rms_norm(expected.data(), in.data(), weight.data(), n_tokens, hidden, 1e-5f);

  DeviceBuffer<__nv_bfloat16> d_in(in_bf16), d_weight(weight_bf16), d_out(in.size());
  cuda::launch_rms_norm(d_out.get(), d_in.get(), d_weight.get(), n_tokens, hidden, 1e-5f, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> actual;
  for (auto value : d_out.to_host()) actual.push_back(__bfloat162float(value));
  EXPECT_TRUE(testing::close_by_relative_error(actual, expected, Tolerance::kBF16));
}

// Odd sizes: rows not a multiple of the block, hidden not a multiple of a warp.
INSTANTIATE_TEST_SUITE_P(OddSizes, RmsNormGpuTest,
                         ::testing::Values(std::pair{1, 64}, std::pair{7, 100}, std::pair{37, 4096},
                                           std::pair{3, 8191}, std::pair{2, 1}));

}  // namespace
}  // namespace shardwise
