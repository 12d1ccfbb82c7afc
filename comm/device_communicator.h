// Collectives on device (GPU) buffers, enqueued on the compute stream: what the CUDA forward
// pass's row-parallel layers and vocabulary gather call. Implementations: NCCL (one GPU per
// rank), host-staged MPI (ranks that share a GPU, which NCCL refuses), and the group of one.
// Like Communicator, a collective that does not finish within the timeout aborts the group
// with a log line naming it.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "common/dtype.h"

namespace shardwise {

class DeviceCommunicator {
 public:
  virtual ~DeviceCommunicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place elementwise sum of `count` elements of `dtype` over all ranks, ordered on `stream`.
  virtual void all_reduce_sum(void* data, std::size_t count, DType dtype, cudaStream_t stream) = 0;
  // Concatenates each rank's `count` elements of `send` into `recv` ([size() * count]) in rank
  // order, ordered on `stream`.
  virtual void all_gather(const void* send, std::size_t count, void* recv, DType dtype,
                          cudaStream_t stream) = 0;
  // Puts the work enqueued so far on `stream` under the collective timeout, named `what` in the
  // log line: for a CUDA graph launch whose captured collectives are not watched by themselves.
  // Nothing to do for communicators without a watchdog.
  virtual void watch(cudaStream_t /*stream*/, std::string /*what*/) {}
};

// The group of one: all_reduce_sum does nothing; all_gather copies on the stream.
class SoloDeviceCommunicator final : public DeviceCommunicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(void*, std::size_t, DType, cudaStream_t) override {}
  void all_gather(const void* send, std::size_t count, void* recv, DType dtype,
                  cudaStream_t stream) override;
};

}  // namespace shardwise
