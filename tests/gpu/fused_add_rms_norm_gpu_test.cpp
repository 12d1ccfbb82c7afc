// launch_fused_add_rms_norm (all types) and launch_rms_norm for __half against cpu::rms_norm.
#include <cstring>

#include "kernels/cpu/rms_norm.h"
#include "kernels/cuda/rms_norm.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/kernel_test_util.h"

namespace shardwise {
namespace {

using testing::DeviceBuffer;

template <typename T>
class FusedAddRmsNormGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(FusedAddRmsNormGpuTest, testing::KernelTypes, testing::TypeNames);

TYPED_TEST(FusedAddRmsNormGpuTest, MatchesAddThenRmsNorm) {
  SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (auto [n_tokens, hidden] : {std::pair{1, 64}, std::pair{7, 257}, std::pair{37, 4095},
                                  std::pair{3, 8192}, std::pair{2, 1}}) {
    SCOPED_TRACE(::testing::Message() << n_tokens << " x " << hidden);
    std::mt19937 rng(n_tokens * 7919 + hidden);
    const std::size_t count = static_cast<std::size_t>(n_tokens) * hidden;
    auto residual = testing::normal_vector(count, rng);
    auto x = testing::normal_vector(count, rng);
    auto weight = testing::normal_vector(hidden, rng, 1.0f, 0.2f);
    const auto residual_t = testing::round_to<T>(residual);
    const auto x_t = testing::round_to<T>(x);
    const auto weight_t = testing::round_to<T>(weight);

    // The stored sum is the fp32 sum rounded to T, exactly as an unfused add would store it.
    std::vector<T> expected_residual_t(count);
    std::vector<float> expected_residual(count);
    for (std::size_t i = 0; i < count; ++i) {
      expected_residual_t[i] = testing::from_float<T>(residual[i] + x[i]);
      expected_residual[i] = testing::to_float(expected_residual_t[i]);
    }
    std::vector<float> expected(count);
    cpu::rms_norm(expected.data(), expected_residual.data(), weight.data(), n_tokens, hidden,
                  1e-5f);

    DeviceBuffer<T> d_residual(residual_t), d_x(x_t), d_weight(weight_t), d_out(count);
    cuda::launch_fused_add_rms_norm(d_out.get(), d_residual.get(), d_x.get(), d_weight.get(),
                                    n_tokens, hidden, 1e-5f, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const auto actual_residual = d_residual.to_host();
    EXPECT_EQ(std::memcmp(actual_residual.data(), expected_residual_t.data(), count * sizeof(T)), 0)
        << "the stored residual is not the sum rounded to T";
    EXPECT_TRUE(testing::close_by_relative_error(testing::to_floats(d_out.to_host()), expected,
                                                 testing::tolerance_for<T>()));
  }
}

TEST(RmsNormHalfGpuTest, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (auto [n_tokens, hidden] : {std::pair{1, 64}, std::pair{37, 4096}, std::pair{3, 4095}}) {
    std::mt19937 rng(hidden);
    const std::size_t count = static_cast<std::size_t>(n_tokens) * hidden;
    auto in = testing::normal_vector(count, rng);
    auto weight = testing::normal_vector(hidden, rng, 1.0f, 0.2f);
    const auto in_t = testing::round_to<__half>(in);
    const auto weight_t = testing::round_to<__half>(weight);
    std::vector<float> expected(count);
    cpu::rms_norm(expected.data(), in.data(), weight.data(), n_tokens, hidden, 1e-5f);
    DeviceBuffer<__half> d_in(in_t), d_weight(weight_t), d_out(count);
    cuda::launch_rms_norm(d_out.get(), d_in.get(), d_weight.get(), n_tokens, hidden, 1e-5f,
                          nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_TRUE(testing::close_by_relative_error(testing::to_floats(d_out.to_host()), expected,
                                                 testing::Tolerance::kF16));
  }
}

}  // namespace
}  // namespace shardwise
