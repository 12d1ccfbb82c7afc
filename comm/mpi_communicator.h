// Collectives over MPI on host buffers: the CPU path's communicator. Every collective is
// non-blocking underneath and polled against a deadline, so a dead or hung rank turns into a
// log line naming the operation and an MPI_Abort of the whole job, never a silent hang.
#pragma once

#include <mpi.h>

#include <chrono>
#include <string_view>

#include "comm/communicator.h"

namespace shardwise {

class MpiCommunicator final : public Communicator {
 public:
  // `group` must outlive the communicator. `timeout` bounds every timed collective.
  MpiCommunicator(MPI_Comm group, std::chrono::milliseconds timeout);

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(float* data, std::size_t count) override;
  void all_gather(const float* send, std::span<const std::size_t> counts, float* recv) override;
  void broadcast(void* data, std::size_t bytes, int root, Wait wait = Wait::kTimed) override;
  void barrier() override;

 private:
  void wait(MPI_Request& request, std::string_view operation, Wait wait_kind);

  MPI_Comm group_;
  int rank_ = 0;
  int size_ = 1;
  std::chrono::milliseconds timeout_;
};

}  // namespace shardwise
