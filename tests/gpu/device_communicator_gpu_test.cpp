// Device communicators in one process: the group of one, NCCL with TP=1 (all a one-GPU machine
// can run of NCCL), and an NCCL collective captured in a CUDA graph and replayed. Results are
// exact: a collective over one rank copies, it never rounds.
#include <cuda_runtime.h>

#include <chrono>
#include <memory>

#include "comm/device_communicator_factory.h"
#include "comm/nccl_communicator.h"
#include "tests/gpu/comm_test_support.h"
#include "tests/gpu/gpu_test_support.h"

namespace shardwise {
namespace {

using testing::decode;
using testing::DeviceBytes;
using testing::encode;
using testing::exactly_equal;

constexpr auto kTimeout = std::chrono::seconds(30);

// Values exact in bf16 and f16: small integers and halves.
std::vector<float> known_values(std::size_t count, int seed) {
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) {
    values[i] = static_cast<float>(static_cast<int>((i * 7 + seed) % 61) - 30) * 0.5f;
  }
  return values;
}

// One NCCL communicator for the whole binary (its bootstrap takes a while), destroyed after the
// last test and before the CUDA runtime shuts down (not by a static destructor).
std::unique_ptr<NcclCommunicator> g_nccl;

NcclCommunicator& nccl() {
  if (g_nccl == nullptr) {
    CUDA_CHECK(cudaSetDevice(0));
    g_nccl = std::make_unique<NcclCommunicator>(MPI_COMM_SELF, kTimeout);
  }
  return *g_nccl;
}

class NcclEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { g_nccl.reset(); }
};
[[maybe_unused]] const auto* const g_environment =
    ::testing::AddGlobalTestEnvironment(new NcclEnvironment);

class StreamFixture : public ::testing::TestWithParam<DType> {
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

// --- The group of one --------------------------------------------------------------------------

using SoloTest = StreamFixture;

TEST_P(SoloTest, AllReduceLeavesDataAndAllGatherCopies) {
  const DType dtype = GetParam();
  const auto values = known_values(1000, 3);
  SoloDeviceCommunicator solo;
  DeviceBytes data(encode(values, dtype)), gathered(values.size() * dtype_size(dtype));
  solo.all_reduce_sum(data.get(), values.size(), dtype, stream_);
  solo.all_gather(data.get(), values.size(), gathered.get(), dtype, stream_);
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  EXPECT_TRUE(exactly_equal(decode(data.download(), dtype), values));
  EXPECT_TRUE(exactly_equal(decode(gathered.download(), dtype), values));
}

INSTANTIATE_TEST_SUITE_P(DTypes, SoloTest,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kF16));

TEST(DeviceCommunicatorFactory, GroupOfOneIsSolo) {
  auto comm = make_device_communicator(MPI_COMM_SELF, 0, 1, kTimeout);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    ASSERT_FALSE(comm.ok());
    EXPECT_EQ(comm.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(comm.status().message().find("no CUDA device"), std::string::npos)
        << comm.status().to_string();
    GTEST_SKIP() << "no CUDA device: checked the factory's error only ("
                 << comm.status().to_string() << ")";
  }
  ASSERT_TRUE(comm.ok()) << comm.status().to_string();
  EXPECT_EQ((*comm)->size(), 1);
  EXPECT_NE(dynamic_cast<SoloDeviceCommunicator*>(comm->get()), nullptr);
}

// --- NCCL, TP=1 ----------------------------------------------------------------------------------

using NcclTpOneTest = StreamFixture;

TEST_P(NcclTpOneTest, AllReduceAndAllGatherAreExact) {
  const DType dtype = GetParam();
  EXPECT_EQ(nccl().size(), 1);
  for (std::size_t count : {std::size_t{1}, std::size_t{4095}, std::size_t{64} * 8192}) {
    const auto values = known_values(count, static_cast<int>(count));
    DeviceBytes data(encode(values, dtype)), gathered(count * dtype_size(dtype));
    nccl().all_reduce_sum(data.get(), count, dtype, stream_);
    nccl().all_gather(data.get(), count, gathered.get(), dtype, stream_);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    EXPECT_TRUE(exactly_equal(decode(data.download(), dtype), values)) << "count " << count;
    EXPECT_TRUE(exactly_equal(decode(gathered.download(), dtype), values)) << "count " << count;
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, NcclTpOneTest,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kF16));

// A graph of [copy src -> buf, all-reduce buf, all-gather buf -> out] replays with fresh inputs:
// `out` is poisoned before every replay, so only the replayed NCCL all-gather can fill it.
class NcclGraphTest : public ::testing::TestWithParam<cudaStreamCaptureMode> {};

TEST_P(NcclGraphTest, CapturedCollectivesReplayWithFreshInputs) {
  SKIP_WITHOUT_GPU();
  const DType dtype = DType::kBF16;
  const std::size_t count = 8 * 4096;
  const std::size_t bytes = count * dtype_size(dtype);
  NcclCommunicator& comm = nccl();
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  DeviceBytes src(bytes), buf(bytes), out(bytes);

  CUDA_CHECK(cudaStreamBeginCapture(stream, GetParam()));
  CUDA_CHECK(cudaMemcpyAsync(buf.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, stream));
  comm.all_reduce_sum(buf.get(), count, dtype, stream);
  comm.all_gather(buf.get(), count, out.get(), dtype, stream);
  cudaGraph_t graph;
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));

  for (int replay = 0; replay < 5; ++replay) {
    const auto values = known_values(count, 11 * replay + 1);
    src.upload(encode(values, dtype));
    out.poison();
    CUDA_CHECK(cudaGraphLaunch(exec, stream));
    comm.watch(stream, "graph replay of an all-reduce and an all-gather");
    CUDA_CHECK(cudaStreamSynchronize(stream));
    EXPECT_TRUE(exactly_equal(decode(out.download(), dtype), values)) << "replay " << replay;
  }
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
  CUDA_CHECK(cudaStreamDestroy(stream));
}

INSTANTIATE_TEST_SUITE_P(CaptureModes, NcclGraphTest,
                         ::testing::Values(cudaStreamCaptureModeGlobal,
                                           cudaStreamCaptureModeThreadLocal));

}  // namespace
}  // namespace shardwise
