// Device collectives over NCCL for one tensor-parallel group whose ranks each own a GPU.
//
// Never waits forever (STYLE.md practice 5): after every collective that is not being captured
// into a CUDA graph, an event is recorded on the caller's stream; a watchdog thread checks the
// oldest unfinished events against the timeout and polls ncclCommGetAsyncError. On a timeout or
// an NCCL error it logs "<op> of N elements did not finish within T s on rank r" (or the NCCL
// error), aborts the NCCL communicator and then the whole MPI job. Collectives do no host
// synchronisation and stay capturable: graph replays are not watched unless the caller calls
// watch() after launching the graph.
#pragma once

#include <mpi.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/device_communicator.h"

namespace shardwise {

class NcclCommunicator final : public DeviceCommunicator {
 public:
  // Collective over `group` (every rank of it must call this). The calling thread's current CUDA
  // device is this rank's GPU; it must differ from every other rank's (NCCL refuses duplicates).
  // Group rank 0 creates the NCCL id and broadcasts it over `group`. `timeout` bounds every
  // collective (counted from the moment it is enqueued) and the id's broadcast; ncclCommInitRank
  // gets max(timeout, 60 s).
  NcclCommunicator(MPI_Comm group, std::chrono::milliseconds timeout);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(void* data, std::size_t count, DType dtype, cudaStream_t stream) override;
  void all_gather(const void* send, std::size_t count, void* recv, DType dtype,
                  cudaStream_t stream) override;

  // Puts the work enqueued so far on `stream` under the watchdog, named `what` in the log line:
  // for a CUDA graph launch containing collectives. Does nothing while `stream` is capturing.
  void watch(cudaStream_t stream, std::string what) override;

  ncclComm_t nccl_comm() const { return comm_; }

 private:
  struct Pending {
    cudaEvent_t event;
    std::string what;  // "all_reduce_sum of 4096 elements (BF16)"
    std::chrono::steady_clock::time_point enqueued;
  };

  void record(cudaStream_t stream, std::string what);   // an event after `stream`'s work
  std::chrono::milliseconds bootstrap_timeout() const;  // bounds ncclCommInitRank
  void watchdog_loop();
  [[noreturn]] void abort_group(const std::string& reason);

  ncclComm_t comm_ = nullptr;
  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
  std::chrono::milliseconds timeout_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::deque<Pending> pending_;     // oldest first
  std::vector<cudaEvent_t> spare_;  // finished events, reused
  bool stopping_ = false;
  // Bootstrap: set while ncclCommInitRank runs, so the watchdog bounds it too.
  std::chrono::steady_clock::time_point init_deadline_{};
  bool initialising_ = false;
  std::thread watchdog_;
};

}  // namespace shardwise
