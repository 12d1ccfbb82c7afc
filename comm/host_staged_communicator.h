// Device collectives for ranks that share one GPU, which NCCL refuses ("Duplicate GPU
// detected"): copy the device buffer to pinned host memory, sum (or gather) on the host through
// MpiCommunicator in fp32, and copy the result back. Slow, but exact and available anywhere;
// it is how a TP>1 group is exercised on a machine with a single GPU.
//
// Every call synchronises `stream` on the host, so it CANNOT be captured in a CUDA graph:
// callers must run the forward pass eagerly with this communicator (a call on a capturing
// stream aborts with a message saying so). Timeouts are MpiCommunicator's: a peer that dies or
// hangs turns into a log line naming the collective and an MPI_Abort.
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "comm/device_communicator.h"
#include "comm/mpi_communicator.h"

namespace shardwise {

class HostStagedCommunicator final : public DeviceCommunicator {
 public:
  // `group` must outlive the communicator; `timeout` bounds every collective.
  HostStagedCommunicator(MPI_Comm group, std::chrono::milliseconds timeout);
  ~HostStagedCommunicator() override;
  HostStagedCommunicator(const HostStagedCommunicator&) = delete;
  HostStagedCommunicator& operator=(const HostStagedCommunicator&) = delete;

  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  // Sums in fp32 and rounds once to `dtype` (NCCL rounds after every step of its ring, so the
  // two can differ in the last bit for F16/BF16; each is identical on every rank of a TP=2
  // group).
  void all_reduce_sum(void* data, std::size_t count, DType dtype, cudaStream_t stream) override;
  void all_gather(const void* send, std::size_t count, void* recv, DType dtype,
                  cudaStream_t stream) override;

 private:
  // Pinned staging buffer of at least `bytes`, reused across calls; waits until the previous
  // call's copy back to the device has read it.
  void* staging(std::size_t bytes);
  void copy_back(void* device_dst, std::size_t bytes, cudaStream_t stream);

  MpiCommunicator mpi_;
  void* pinned_ = nullptr;  // [pinned_bytes_] raw dtype elements, staged to and from the device
  std::size_t pinned_bytes_ = 0;
  cudaEvent_t copied_back_ = nullptr;  // recorded after the last host-to-device copy
  std::vector<float> send_f32_;        // [count] fp32 values (F16/BF16 only)
  std::vector<float> recv_f32_;        // [size() * count] gathered fp32 values
};

}  // namespace shardwise
