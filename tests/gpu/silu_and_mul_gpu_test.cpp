// launch_silu_and_mul against cpu::silu_and_mul.
#include "kernels/cpu/silu_and_mul.h"
#include "kernels/cuda/silu_and_mul.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/kernel_test_util.h"

namespace shardwise {
namespace {

using testing::DeviceBuffer;

template <typename T>
class SiluAndMulGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(SiluAndMulGpuTest, testing::KernelTypes, testing::TypeNames);

TYPED_TEST(SiluAndMulGpuTest, MatchesCpu) {
  SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (auto [n_tokens, intermediate] :
       {std::pair{1, 257}, std::pair{37, 4095}, std::pair{3, 14336}, std::pair{5, 1},
        std::pair{65537, 3}}) {  // more tokens than a grid's y dimension holds
    SCOPED_TRACE(::testing::Message() << n_tokens << " x " << intermediate);
    std::mt19937 rng(n_tokens * 13 + intermediate);
    // Wide inputs: exp(-gate) over- and underflows at both ends.
    auto gate_up =
        testing::normal_vector(static_cast<std::size_t>(n_tokens) * 2 * intermediate, rng, 0, 4);
    const auto gate_up_t = testing::round_to<T>(gate_up);
    std::vector<float> expected(static_cast<std::size_t>(n_tokens) * intermediate);
    cpu::silu_and_mul(expected.data(), gate_up.data(), n_tokens, intermediate);
    DeviceBuffer<T> d_gate_up(gate_up_t), d_out(expected.size());
    cuda::launch_silu_and_mul(d_out.get(), d_gate_up.get(), n_tokens, intermediate, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    EXPECT_TRUE(testing::close_by_relative_error(testing::to_floats(d_out.to_host()), expected,
                                                 testing::tolerance_for<T>()));
  }
}

}  // namespace
}  // namespace shardwise
