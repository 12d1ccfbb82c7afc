// launch_rotary against cpu::apply_rotary, on rows strided inside a fused QKV buffer.
#include <cstring>

#include "kernels/cpu/rotary.h"
#include "kernels/cuda/rotary.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/kernel_test_util.h"

namespace shardwise {
namespace {

using testing::DeviceBuffer;

struct RotaryCase {
  int n_tokens, n_heads, n_kv_heads, head_dim;
};

template <typename T>
class RotaryGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(RotaryGpuTest, testing::KernelTypes, testing::TypeNames);

TYPED_TEST(RotaryGpuTest, MatchesCpuInsideFusedQkv) {
  SKIP_WITHOUT_GPU();
  using T = TypeParam;
  RopeParams llama3;
  llama3.type = RopeType::kLlama3;
  llama3.theta = 500000.0f;
  for (const RotaryCase c : {RotaryCase{1, 4, 2, 64}, RotaryCase{7, 3, 1, 128},
                             RotaryCase{37, 5, 5, 96}, RotaryCase{2, 32, 8, 128}}) {
    SCOPED_TRACE(::testing::Message() << c.n_tokens << " tokens, " << c.n_heads << "/"
                                      << c.n_kv_heads << " heads of " << c.head_dim);
    std::mt19937 rng(c.n_tokens * 31 + c.head_dim);
    std::vector<float> inv_freq(c.head_dim / 2);
    cpu::rope_inv_freq(inv_freq.data(), c.head_dim, llama3);
    std::vector<int32_t> positions(c.n_tokens);
    std::uniform_int_distribution<int32_t> position(0, 100000);
    for (auto& p : positions) p = position(rng);
    positions[0] = 131071;  // the far end of a 128k context

    // Row: [q | k | v | 3 padding elements]: the kernel must touch q and k only.
    const int q_size = c.n_heads * c.head_dim, kv_size = c.n_kv_heads * c.head_dim;
    const int stride = q_size + 2 * kv_size + 3;
    auto qkv = testing::normal_vector(static_cast<std::size_t>(c.n_tokens) * stride, rng);
    const auto qkv_t = testing::round_to<T>(qkv);
    std::vector<float> q(static_cast<std::size_t>(c.n_tokens) * q_size);
    std::vector<float> k(static_cast<std::size_t>(c.n_tokens) * kv_size);
    for (int t = 0; t < c.n_tokens; ++t) {
      std::memcpy(&q[t * q_size], &qkv[t * stride], q_size * sizeof(float));
      std::memcpy(&k[t * kv_size], &qkv[t * stride + q_size], kv_size * sizeof(float));
    }
    cpu::apply_rotary(q.data(), k.data(), positions.data(), inv_freq.data(), c.n_tokens, c.n_heads,
                      c.n_kv_heads, c.head_dim);

    DeviceBuffer<T> d_qkv(qkv_t);
    DeviceBuffer<int32_t> d_positions(positions);
    DeviceBuffer<float> d_inv_freq(inv_freq);
    cuda::launch_rotary(d_qkv.get(), d_qkv.get() + q_size, d_positions.get(), d_inv_freq.get(),
                        c.n_tokens, c.n_heads, c.n_kv_heads, c.head_dim, stride, stride, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const auto out = d_qkv.to_host();
    std::vector<float> actual_q(q.size()), actual_k(k.size());
    bool rest_untouched = true;
    for (int t = 0; t < c.n_tokens; ++t) {
      for (int i = 0; i < stride; ++i) {
        const float value = testing::to_float(out[t * stride + i]);
        if (i < q_size) {
          actual_q[t * q_size + i] = value;
        } else if (i < q_size + kv_size) {
          actual_k[t * kv_size + i - q_size] = value;
        } else if (std::memcmp(&out[t * stride + i], &qkv_t[t * stride + i], sizeof(T)) != 0) {
          rest_untouched = false;
        }
      }
    }
    EXPECT_TRUE(rest_untouched) << "v or padding changed";
    EXPECT_TRUE(testing::close_by_relative_error(actual_q, q, testing::tolerance_for<T>()));
    EXPECT_TRUE(testing::close_by_relative_error(actual_k, k, testing::tolerance_for<T>()));
  }
}

}  // namespace
}  // namespace shardwise
