// make_cuda_replica in a build without the CUDA backend (-DSHARDWISE_CUDA=OFF).
#include "shard/runner/replica.h"

namespace shardwise {

StatusOr<std::unique_ptr<Replica>> make_cuda_replica(const ReplicaOptions&, const ReplicaGroup&) {
  return failed_precondition(
      "--device cuda: this build of shardwise has no CUDA support (built without CUDA; "
      "configure with -DSHARDWISE_CUDA=ON), use --device cpu");
}

}  // namespace shardwise
