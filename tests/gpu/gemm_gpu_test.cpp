// Gemm::linear (cuBLASLt, and launch_gemv for m <= 8) against cpu::matmul (fp32 weights and
// inputs), for every dtype, out in that dtype or F32, odd shapes.
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemv.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/kernel_test_util.h"

namespace shardwise {
namespace {

using testing::DeviceBuffer;

struct Shape {
  int m, n, k;
};

// m <= 8: the GEMV (k % 8 == 0: 16-byte path; otherwise element-wise), m > 8: cuBLASLt.
// 6144 x 4096 and 4096 x 14336 are the Llama-3-8B QKV and down projections.
const Shape kShapes[] = {{1, 257, 4095}, {3, 257, 4095}, {37, 257, 4095}, {2, 1000, 4100},
                         {7, 129, 64},   {8, 96, 4096},  {1, 6144, 4096}, {8, 4096, 14336},
                         {5, 33, 1},     {64, 512, 4096}};

template <typename T>
DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::kF32;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return DType::kBF16;
  return DType::kF16;
}

template <typename T>
class GemmGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(GemmGpuTest, testing::KernelTypes, testing::TypeNames);

TYPED_TEST(GemmGpuTest, MatchesCpuLinear) {
  SKIP_WITHOUT_GPU();
  using T = TypeParam;
  cuda::Gemm gemm;
  for (const Shape s : kShapes) {
    for (const bool f32_out : {false, true}) {
      SCOPED_TRACE(::testing::Message()
                   << s.m << " x " << s.n << " x " << s.k << (f32_out ? ", F32 out" : ""));
      std::mt19937 rng(s.m * 1000003 + s.n * 1009 + s.k);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      std::vector<float> in(static_cast<std::size_t>(s.m) * s.k);
      std::vector<float> weight(static_cast<std::size_t>(s.n) * s.k);
      for (auto& v : in) v = uniform(rng);
      for (auto& v : weight) v = uniform(rng);
      const auto in_t = testing::round_to<T>(in);
      const auto weight_t = testing::round_to<T>(weight);
      std::vector<float> expected(static_cast<std::size_t>(s.m) * s.n);
      const cpu::MatrixRows rows{reinterpret_cast<const std::byte*>(weight.data()), DType::kF32,
                                 s.n, s.k};
      cpu::matmul(expected.data(), in.data(), s.m, cpu::WeightMatrix::row_major({rows}, s.k));

      DeviceBuffer<T> d_in(in_t), d_weight(weight_t);
      std::vector<float> actual;
      if (f32_out) {
        DeviceBuffer<float> d_out(expected.size());
        gemm.linear(d_out.get(), DType::kF32, d_in.get(), d_weight.get(), dtype_of<T>(), s.m, s.n,
                    s.k, nullptr);
        CUDA_CHECK(cudaDeviceSynchronize());
        actual = d_out.to_host();
      } else {
        DeviceBuffer<T> d_out(expected.size());
        gemm.linear(d_out.get(), dtype_of<T>(), d_in.get(), d_weight.get(), dtype_of<T>(), s.m, s.n,
                    s.k, nullptr);
        CUDA_CHECK(cudaDeviceSynchronize());
        actual = testing::to_floats(d_out.to_host());
      }
      // fp32 accumulation of exact products: with F32 out only summation order differs, but
      // 16-bit inputs go through tensor cores (kF32TensorCore).
      const double tolerance = !f32_out                   ? testing::tolerance_for<T>()
                               : std::is_same_v<T, float> ? testing::Tolerance::kF32Kernel
                                                          : testing::Tolerance::kF32TensorCore;
      EXPECT_TRUE(testing::close_by_relative_error(actual, expected, tolerance));
    }
  }
}

// The GEMV's split-k reduction is in a fixed order: repeated calls agree bit for bit.
TEST(GemvGpuTest, Deterministic) {
  SKIP_WITHOUT_GPU();
  const int m = 4, n = 4096, k = 14336;
  std::mt19937 rng(7);
  auto in = testing::normal_vector(static_cast<std::size_t>(m) * k, rng);
  auto weight = testing::normal_vector(static_cast<std::size_t>(n) * k, rng);
  DeviceBuffer<__nv_bfloat16> d_in(testing::round_to<__nv_bfloat16>(in));
  DeviceBuffer<__nv_bfloat16> d_weight(testing::round_to<__nv_bfloat16>(weight));
  DeviceBuffer<float> first(static_cast<std::size_t>(m) * n),
      second(static_cast<std::size_t>(m) * n);
  cuda::launch_gemv(first.get(), d_in.get(), d_weight.get(), m, n, k, nullptr);
  cuda::launch_gemv(second.get(), d_in.get(), d_weight.get(), m, n, k, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(first.to_host(), second.to_host());
}

}  // namespace
}  // namespace shardwise
