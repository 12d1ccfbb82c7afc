// launch_embedding: a copy, so the rows must match bit for bit (16-byte and element-wise paths).
#include <cstring>

#include "kernels/cuda/embedding.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/kernel_test_util.h"

namespace shardwise {
namespace {

using testing::DeviceBuffer;

template <typename T>
class EmbeddingGpuTest : public ::testing::Test {};
TYPED_TEST_SUITE(EmbeddingGpuTest, testing::KernelTypes, testing::TypeNames);

TYPED_TEST(EmbeddingGpuTest, GathersRowsExactly) {
  SKIP_WITHOUT_GPU();
  using T = TypeParam;
  // 4096: 16-byte rows; 4095 and 3: rows not a multiple of 16 bytes (element-wise path).
  for (auto [n_tokens, hidden] : {std::pair{37, 4096}, std::pair{1, 4095}, std::pair{7, 3}}) {
    SCOPED_TRACE(::testing::Message() << n_tokens << " x " << hidden);
    const int vocab = 1001;
    std::mt19937 rng(hidden);
    auto table = testing::normal_vector(static_cast<std::size_t>(vocab) * hidden, rng);
    const auto table_t = testing::round_to<T>(table);
    std::vector<int32_t> ids(n_tokens);
    std::uniform_int_distribution<int32_t> id(0, vocab - 1);
    for (auto& value : ids) value = id(rng);
    ids[0] = vocab - 1;  // the last row
    std::vector<T> expected(static_cast<std::size_t>(n_tokens) * hidden);
    for (int t = 0; t < n_tokens; ++t) {
      std::memcpy(&expected[static_cast<std::size_t>(t) * hidden],
                  &table_t[static_cast<std::size_t>(ids[t]) * hidden], hidden * sizeof(T));
    }
    DeviceBuffer<T> d_table(table_t), d_out(expected.size());
    DeviceBuffer<int32_t> d_ids(ids);
    cuda::launch_embedding(d_out.get(), d_table.get(), d_ids.get(), n_tokens, hidden, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    const auto actual = d_out.to_host();
    EXPECT_EQ(std::memcmp(actual.data(), expected.data(), expected.size() * sizeof(T)), 0);
  }
}

}  // namespace
}  // namespace shardwise
