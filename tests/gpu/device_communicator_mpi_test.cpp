// Device communicators across ranks, under mpirun -np 2 (or more): the factory's choice and
// exact collectives on known per-rank values. On a one-GPU machine the ranks share the GPU, so
// the factory must pick the host-staged communicator (NCCL refuses them); with a GPU per rank it
// picks NCCL, and the same exact answers are expected. Values are small multiples of 0.5, so
// every sum is exact in bf16 and f16 whatever the summation order.
#include <cuda_runtime.h>

#include <chrono>
#include <memory>

#include "comm/device_communicator_factory.h"
#include "comm/host_staged_communicator.h"
#include "comm/nccl_communicator.h"
#include "tests/gpu/comm_test_support.h"
#include "tests/gpu/gpu_test_support.h"

namespace shardwise {
namespace {

using testing::decode;
using testing::DeviceBytes;
using testing::encode;
using testing::exactly_equal;
using testing::test_session;

constexpr auto kTimeout = std::chrono::seconds(30);

// Rank r's element i: in [-8, 8 + r] halves, so sums over a few ranks stay exact in bf16.
float value_of(int rank, std::size_t i) {
  return static_cast<float>(static_cast<int>(i % 17) - 8 + rank) * 0.5f;
}

std::vector<float> rank_values(int rank, std::size_t count) {
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) values[i] = value_of(rank, i);
  return values;
}

// Created once, collectively (every rank runs the tests in the same order); destroyed after the
// last test, before MPI_Finalize and the CUDA runtime's shutdown.
std::unique_ptr<DeviceCommunicator> g_comm;

DeviceCommunicator& comm() {
  if (g_comm == nullptr) {
    auto made = make_device_communicator(test_session(), kTimeout);
    SW_CHECK(made.ok());
    g_comm = std::move(made).value();
  }
  return *g_comm;
}

class CommEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { g_comm.reset(); }
};
[[maybe_unused]] const auto* const g_environment =
    ::testing::AddGlobalTestEnvironment(new CommEnvironment);

TEST(DeviceCommunicatorFactory, FailsOnEveryRankWithoutGpu) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
  auto made = make_device_communicator(test_session(), kTimeout);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(made.status().message().find("no CUDA device"), std::string::npos)
      << made.status().to_string();
}

TEST(DeviceCommunicatorFactory, RanksSharingOneGpuGetHostStaged) {
  SKIP_WITHOUT_GPU();
  ASSERT_EQ(comm().size(), test_session().config().world_size);
  ASSERT_EQ(comm().rank(), test_session().config().tp().rank);
  if (cuda::device_count() >= comm().size()) {
    EXPECT_NE(dynamic_cast<NcclCommunicator*>(&comm()), nullptr) << "a GPU per rank: NCCL";
  } else {
    EXPECT_NE(dynamic_cast<HostStagedCommunicator*>(&comm()), nullptr);
  }
}

class DeviceCollectiveTest : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  void TearDown() override {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t stream_ = nullptr;
};

TEST_P(DeviceCollectiveTest, AllReduceSumIsExact) {
  const DType dtype = GetParam();
  const int n = comm().size();
  // Small, odd, then decode-sized (batch 64 x hidden 8192), then small again: the staging
  // buffers grow and are reused.
  for (std::size_t count :
       {std::size_t{1}, std::size_t{4097}, std::size_t{64} * 8192, std::size_t{33}}) {
    std::vector<float> expected(count, 0.0f);
    for (int r = 0; r < n; ++r) {
      for (std::size_t i = 0; i < count; ++i) expected[i] += value_of(r, i);
    }
    DeviceBytes data(encode(rank_values(comm().rank(), count), dtype));
    comm().all_reduce_sum(data.get(), count, dtype, stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(exactly_equal(decode(data.download(), dtype), expected))
        << "count " << count << " rank " << comm().rank();
  }
}

TEST_P(DeviceCollectiveTest, AllGatherIsExactAndInRankOrder) {
  const DType dtype = GetParam();
  const int n = comm().size();
  for (std::size_t count : {std::size_t{1}, std::size_t{1000}, std::size_t{8} * 4096}) {
    std::vector<float> expected;
    for (int r = 0; r < n; ++r) {
      const auto part = rank_values(r, count);
      expected.insert(expected.end(), part.begin(), part.end());
    }
    DeviceBytes send(encode(rank_values(comm().rank(), count), dtype));
    DeviceBytes recv(n * count * dtype_size(dtype));
    comm().all_gather(send.get(), count, recv.get(), dtype, stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(exactly_equal(decode(recv.download(), dtype), expected))
        << "count " << count << " rank " << comm().rank();
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, DeviceCollectiveTest,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kF16));

}  // namespace
}  // namespace shardwise
