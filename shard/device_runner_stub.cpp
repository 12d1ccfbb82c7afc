// make_cuda_replica in a build without the CUDA backend (-DSHARDWISE_CUDA=OFF).
#include "shard/device_runner.h"

namespace shardwise {

StatusOr<std::unique_ptr<DeviceReplica>> make_cuda_replica(const std::filesystem::path&,
                                                           const DeviceOptions&, const MpiSession*,
                                                           Communicator*, int, int,
                                                           std::chrono::milliseconds) {
  return failed_precondition(
      "--device cuda: this build of shardwise has no CUDA support (built without CUDA; "
      "configure with -DSHARDWISE_CUDA=ON), use --device cpu");
}

}  // namespace shardwise
