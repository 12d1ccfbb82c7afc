// Fault injection for the device communicators: the job must end with a non-zero status and a
// log line naming the collective, within the timeout (3 s), never hang.
//   hung    (mpirun -np 2): rank 1 stops itself (SIGSTOP) before an all-reduce; rank 0's
//           collective (host-staged on one GPU, NCCL with a GPU per rank) times out.
//   killed  (mpirun -np 2): rank 1 kills itself (SIGKILL) before an all-reduce.
//   stalled (mpirun -np 1): NCCL at TP=1 behind a stream that never drains (a host callback
//           that sleeps): the watchdog finds the all-reduce's event unfinished, aborts the NCCL
//           communicator and the job. This exercises the NCCL watchdog on a one-GPU machine.
// Exits kSkipReturnCode (77) when there is no GPU.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "comm/device_communicator_factory.h"
#include "comm/nccl_communicator.h"
#include "common/check.h"
#include "common/logging.h"

namespace {

constexpr int kSkipReturnCode = 77;
constexpr auto kTimeout = std::chrono::seconds(3);

void CUDART_CB sleep_forever(void*) { std::this_thread::sleep_for(std::chrono::minutes(5)); }

}  // namespace

int main(int argc, char** argv) {
  using namespace shardwise;
  const std::string mode = argc == 2 ? argv[1] : "";
  if (mode != "hung" && mode != "killed" && mode != "stalled") {
    std::fprintf(stderr, "usage: mpirun -np 2 %s hung|killed, or mpirun -np 1 %s stalled\n",
                 argv[0], argv[0]);
    return 2;
  }
  auto session = MpiSession::start(&argc, &argv, MpiSession::kWholeWorld);
  if (!session.ok()) return 2;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIP: no CUDA device\n");
    return kSkipReturnCode;
  }

  std::unique_ptr<DeviceCommunicator> comm;
  if (mode == "stalled") {
    CUDA_CHECK(cudaSetDevice(0));
    comm = std::make_unique<NcclCommunicator>((*session)->tp_group(), kTimeout);
  } else {
    auto made = make_device_communicator(**session, kTimeout);
    if (!made.ok()) {
      log()->error("{}", made.status().to_string());
      return 2;
    }
    comm = std::move(made).value();
  }
  const std::size_t count = 8 * 4096;  // a decode step's all-reduce: batch 8, hidden 4096
  void* data = nullptr;
  CUDA_CHECK(cudaMalloc(&data, count * 2));
  CUDA_CHECK(cudaMemset(data, 0, count * 2));
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  for (int step = 0; step < 10; ++step) {
    if (step == 5 && comm->rank() == 1) {
      log()->warn("fault injection: rank 1 {} itself", mode == "killed" ? "kills" : "stops");
      log()->flush();
      raise(mode == "killed" ? SIGKILL : SIGSTOP);
    }
    if (step == 5 && mode == "stalled") {
      log()->warn("fault injection: the stream stalls before the all-reduce");
      CUDA_CHECK(cudaLaunchHostFunc(stream, sleep_forever, nullptr));
    }
    comm->all_reduce_sum(data, count, DType::kBF16, stream);
    CUDA_CHECK(cudaStreamSynchronize(stream));
  }
  log()->error("fault injection: the job outlived the fault ({})", mode);
  return 0;  // the test fails: nothing noticed
}
