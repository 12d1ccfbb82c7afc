#include "comm/device_communicator_factory.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "comm/host_staged_communicator.h"
#include "comm/nccl_communicator.h"
#include "common/check.h"
#include "common/logging.h"

namespace shardwise {
namespace {

// What each rank tells the others about its GPU; exchanged as raw bytes.
struct GpuIdentity {
  char host[64] = {};
  int device = -1;  // CUDA ordinal in that process; -1: no GPU
  int device_count = 0;
  unsigned char uuid[16] = {};  // cudaDeviceProp::uuid: the physical GPU, whatever the ordinal
};

// MPI_Allgather polled against `timeout`, like MpiCommunicator's collectives: a peer that died
// before reaching the factory turns into a log line and an MPI_Abort, not a hang.
void timed_all_gather(const GpuIdentity& mine, std::vector<GpuIdentity>& all, MPI_Comm group,
                      std::chrono::milliseconds timeout) {
  MPI_Request request;
  MPI_CHECK(MPI_Iallgather(&mine, sizeof(GpuIdentity), MPI_BYTE, all.data(), sizeof(GpuIdentity),
                           MPI_BYTE, group, &request));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int done = 0;
    MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    if (std::chrono::steady_clock::now() > deadline) {
      log()->critical(
          "the exchange of GPU identities of {} ranks did not finish within {:.1f} s on host {}: "
          "another rank died or hung. Aborting the job.",
          all.size(), std::chrono::duration<double>(timeout).count(), mine.host);
      log()->flush();
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

std::string uuid_text(const unsigned char* uuid) {
  std::string text;
  for (int i = 0; i < 16; ++i) text += fmt::format("{:02x}", uuid[i]);
  return text;
}

}  // namespace

StatusOr<std::unique_ptr<DeviceCommunicator>> make_device_communicator(
    MPI_Comm group, int local_rank, int local_size, std::chrono::milliseconds timeout) {
  int rank = 0, size = 1;
  MPI_CHECK(MPI_Comm_rank(group, &rank));
  MPI_CHECK(MPI_Comm_size(group, &size));

  GpuIdentity mine;
  gethostname(mine.host, sizeof(mine.host) - 1);
  if (cudaGetDeviceCount(&mine.device_count) != cudaSuccess) {
    cudaGetLastError();  // clear the "no device / no driver" error
    mine.device_count = 0;
  }
  if (mine.device_count > 0) {
    mine.device = local_rank % mine.device_count;
    CUDA_CHECK(cudaSetDevice(mine.device));
    set_check_context_device(mine.device);
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, mine.device));
    std::memcpy(mine.uuid, prop.uuid.bytes, sizeof(mine.uuid));
  }
  std::vector<GpuIdentity> all(size);
  if (size == 1) {
    all[0] = mine;
  } else {
    timed_all_gather(mine, all, group, timeout);
  }

  for (int r = 0; r < size; ++r) {
    if (all[r].device < 0) {
      return failed_precondition(
          "no CUDA device visible to group rank {} of {} on host {} (check the driver, "
          "CUDA_VISIBLE_DEVICES, or run the CPU backend)",
          r, size, all[r].host);
    }
  }
  if (size == 1) {
    log()->info("device communicator: solo (group of one) on device {} of {}", mine.device,
                mine.device_count);
    return std::unique_ptr<DeviceCommunicator>(new SoloDeviceCommunicator());
  }

  std::set<std::string> gpus;
  for (const GpuIdentity& identity : all) gpus.insert(uuid_text(identity.uuid));
  if (static_cast<int>(gpus.size()) == size) {
    if (rank == 0)
      log()->info("device communicator: NCCL, {} ranks on {} distinct GPUs", size, size);
    return std::unique_ptr<DeviceCommunicator>(new NcclCommunicator(group, timeout));
  }
  if (rank == 0) {
    log()->info(
        "device communicator: host-staged MPI (no CUDA graphs), because {} ranks share {} "
        "GPU(s) and NCCL refuses two ranks on one GPU ({} ranks on this host, {} device(s) "
        "visible to rank 0)",
        size, gpus.size(), local_size, mine.device_count);
  }
  return std::unique_ptr<DeviceCommunicator>(new HostStagedCommunicator(group, timeout));
}

StatusOr<std::unique_ptr<DeviceCommunicator>> make_device_communicator(
    const MpiSession& session, std::chrono::milliseconds timeout) {
  return make_device_communicator(session.tp_group(), session.config().local_rank,
                                  session.config().local_size, timeout);
}

}  // namespace shardwise
