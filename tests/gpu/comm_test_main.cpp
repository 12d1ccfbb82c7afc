// main() of the device-communicator tests: MPI around GoogleTest. Run directly (one process) or
// under mpirun. Every rank runs every test; the job fails when any rank fails, and exits with
// kSkipReturnCode (ctest: skipped) when the tests passed on a machine without a GPU.
#include <cuda_runtime.h>

#include <cstdio>
#include <memory>

#include "tests/gpu/comm_test_support.h"

namespace shardwise::testing {
namespace {
std::unique_ptr<MpiSession> g_session;
}  // namespace

const MpiSession& test_session() { return *g_session; }

}  // namespace shardwise::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto session = shardwise::MpiSession::start(&argc, &argv, shardwise::MpiSession::kWholeWorld);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
    return 2;
  }
  shardwise::testing::g_session = std::move(session).value();
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = failed;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  shardwise::testing::g_session.reset();  // MPI_Finalize
  if (any_failed) return 1;
  if (devices == 0) {
    std::printf("SKIP: no CUDA device; only the no-GPU checks ran\n");
    return shardwise::testing::kSkipReturnCode;
  }
  return 0;
}
