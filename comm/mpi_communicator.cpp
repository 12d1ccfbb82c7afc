#include "comm/mpi_communicator.h"

#include <climits>
#include <thread>
#include <vector>

#include "common/check.h"
#include "common/logging.h"

namespace shardwise {
namespace {

int as_int_count(std::size_t count) {
  SW_CHECK(count <= static_cast<std::size_t>(INT_MAX));
  return static_cast<int>(count);
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm group, std::chrono::milliseconds timeout)
    : group_(group), timeout_(timeout) {
  MPI_CHECK(MPI_Comm_rank(group_, &rank_));
  MPI_CHECK(MPI_Comm_size(group_, &size_));
}

void MpiCommunicator::wait(MPI_Request& request, std::string_view operation, Wait wait_kind) {
  const auto start = std::chrono::steady_clock::now();
  for (long polls = 0;; ++polls) {
    int done = 0;
    MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    const auto waited = std::chrono::steady_clock::now() - start;
    if (wait_kind == Wait::kTimed && waited > timeout_) {
      log()->critical(
          "{} did not finish within {:.1f} s on group rank {} of {}: another rank died "
          "or hung. Aborting the job.",
          operation, std::chrono::duration<double>(timeout_).count(), rank_, size_);
      log()->flush();
      MPI_Abort(MPI_COMM_WORLD, 3);
    }
    // Spin briefly (a decode step's collectives take microseconds), then yield the core:
    // ranks are often oversubscribed on CPU hosts, and an idle follower must not burn one.
    if (polls > 2000) {
      std::this_thread::sleep_for(wait_kind == Wait::kIdle ? std::chrono::microseconds(500)
                                                           : std::chrono::microseconds(20));
    }
  }
}

void MpiCommunicator::all_reduce_sum(float* data, std::size_t count) {
  if (size_ == 1) return;
  MPI_Request request;
  MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, as_int_count(count), MPI_FLOAT, MPI_SUM, group_,
                           &request));
  wait(request, fmt::format("all_reduce_sum of {} floats", count), Wait::kTimed);
}

void MpiCommunicator::all_gather(const float* send, std::span<const std::size_t> counts,
                                 float* recv) {
  std::vector<int> int_counts(size_), displacements(size_);
  int offset = 0;
  for (int r = 0; r < size_; ++r) {
    int_counts[r] = as_int_count(counts[r]);
    displacements[r] = offset;
    offset += int_counts[r];
  }
  MPI_Request request;
  MPI_CHECK(MPI_Iallgatherv(send, int_counts[rank_], MPI_FLOAT, recv, int_counts.data(),
                            displacements.data(), MPI_FLOAT, group_, &request));
  wait(request, fmt::format("all_gather of {} floats", offset), Wait::kTimed);
}

void MpiCommunicator::broadcast(void* data, std::size_t bytes, int root, Wait wait_kind) {
  if (size_ == 1) return;
  MPI_Request request;
  MPI_CHECK(MPI_Ibcast(data, as_int_count(bytes), MPI_BYTE, root, group_, &request));
  wait(request, fmt::format("broadcast of {} bytes from rank {}", bytes, root), wait_kind);
}

void MpiCommunicator::barrier() {
  MPI_Request request;
  MPI_CHECK(MPI_Ibarrier(group_, &request));
  wait(request, "barrier", Wait::kTimed);
}

}  // namespace shardwise
