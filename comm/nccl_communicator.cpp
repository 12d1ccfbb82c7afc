#include "comm/nccl_communicator.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "comm/mpi_communicator.h"
#include "common/check.h"
#include "common/logging.h"

namespace shardwise {
namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF16:
      return ncclFloat16;
    case DType::kBF16:
      return ncclBfloat16;
  }
  SW_CHECK(false && "unknown dtype");
  return ncclFloat32;
}

bool is_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

double seconds(std::chrono::milliseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

// ncclCommInitRank sets up transports (a second or more on a cold GPU), so it gets at least a
// minute whatever the collective timeout.
constexpr std::chrono::milliseconds kMinBootstrapTimeout = std::chrono::seconds(60);

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm group, std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  CUDA_CHECK(cudaGetDevice(&device_));
  MpiCommunicator mpi(group, timeout);  // timed broadcast of the id: a dead peer cannot hang us
  rank_ = mpi.rank();
  size_ = mpi.size();
  ncclUniqueId id{};
  if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
  mpi.broadcast(&id, sizeof(id), 0);

  // The watchdog starts first so that it bounds ncclCommInitRank, which waits for every peer.
  {
    std::lock_guard lock(mutex_);
    initialising_ = true;
    init_deadline_ = std::chrono::steady_clock::now() + bootstrap_timeout();
  }
  watchdog_ = std::thread([this] { watchdog_loop(); });
  ncclComm_t comm = nullptr;
  NCCL_CHECK(ncclCommInitRank(&comm, size_, id, rank_));
  {
    std::lock_guard lock(mutex_);
    comm_ = comm;
    initialising_ = false;
  }
  log()->info("NCCL communicator: group rank {} of {} on device {} (NCCL {})", rank_, size_,
              device_, NCCL_VERSION_CODE);
}

NcclCommunicator::~NcclCommunicator() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  for (const Pending& pending : pending_) cudaEventDestroy(pending.event);
  for (cudaEvent_t event : spare_) cudaEventDestroy(event);
  if (comm_ != nullptr) ncclCommDestroy(comm_);
}

void NcclCommunicator::all_reduce_sum(void* data, std::size_t count, DType dtype,
                                      cudaStream_t stream) {
  NCCL_CHECK(ncclAllReduce(data, data, count, nccl_type(dtype), ncclSum, comm_, stream));
  if (!is_capturing(stream)) {
    record(stream, fmt::format("all_reduce_sum of {} elements ({})", count, dtype_name(dtype)));
  }
}

void NcclCommunicator::all_gather(const void* send, std::size_t count, void* recv, DType dtype,
                                  cudaStream_t stream) {
  NCCL_CHECK(ncclAllGather(send, recv, count, nccl_type(dtype), comm_, stream));
  if (!is_capturing(stream)) {
    record(stream,
           fmt::format("all_gather of {} x {} elements ({})", size_, count, dtype_name(dtype)));
  }
}

void NcclCommunicator::watch(cudaStream_t stream, std::string what) {
  if (!is_capturing(stream)) record(stream, std::move(what));
}

void NcclCommunicator::record(cudaStream_t stream, std::string what) {
  std::lock_guard lock(mutex_);
  cudaEvent_t event;
  if (spare_.empty()) {
    CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  } else {
    event = spare_.back();
    spare_.pop_back();
  }
  CUDA_CHECK(cudaEventRecord(event, stream));
  pending_.push_back({event, std::move(what), std::chrono::steady_clock::now()});
}

std::chrono::milliseconds NcclCommunicator::bootstrap_timeout() const {
  return std::max(timeout_, kMinBootstrapTimeout);
}

void NcclCommunicator::watchdog_loop() {
  CUDA_CHECK(cudaSetDevice(device_));
  // Our queries must not break (or be refused by) a capture that the engine thread runs in
  // cudaStreamCaptureModeGlobal: the events we query were recorded outside any capture.
  cudaStreamCaptureMode relaxed = cudaStreamCaptureModeRelaxed;
  CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&relaxed));
  // Poll often enough that a failure is reported well within the timeout, rarely enough to
  // cost nothing (a query is a few microseconds).
  const auto interval = std::clamp<std::chrono::milliseconds>(
      timeout_ / 10, std::chrono::milliseconds(1), std::chrono::milliseconds(50));
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval, [this] { return stopping_; });
    if (stopping_) break;
    const auto now = std::chrono::steady_clock::now();
    if (initialising_) {
      if (now > init_deadline_) {
        abort_group(fmt::format(
            "NCCL bootstrap (ncclCommInitRank) of {} ranks did not finish within {:.1f} s on "
            "rank {}: another rank died or hung",
            size_, seconds(bootstrap_timeout()), rank_));
      }
      continue;
    }
    ncclResult_t async_error = ncclSuccess;
    NCCL_CHECK(ncclCommGetAsyncError(comm_, &async_error));
    if (async_error != ncclSuccess && async_error != ncclInProgress) {
      abort_group(fmt::format("NCCL asynchronous error on rank {} of {}: {} ({})", rank_, size_,
                              ncclGetErrorString(async_error), ncclGetLastError(comm_)));
    }
    while (!pending_.empty()) {
      Pending& oldest = pending_.front();
      const cudaError_t state = cudaEventQuery(oldest.event);
      if (state == cudaSuccess) {
        spare_.push_back(oldest.event);
        pending_.pop_front();
        continue;
      }
      if (state != cudaErrorNotReady) {
        abort_group(fmt::format("{} failed on rank {} of {}: CUDA error {}", oldest.what, rank_,
                                size_, cudaGetErrorString(state)));
      }
      if (now - oldest.enqueued > timeout_) {
        abort_group(fmt::format(
            "{} did not finish within {:.1f} s on rank {} of {}: another rank died or hung",
            oldest.what, seconds(timeout_), rank_, size_));
      }
      break;
    }
  }
}

void NcclCommunicator::abort_group(const std::string& reason) {
  log()->critical("{}. Aborting the NCCL communicator and the job.", reason);
  log()->flush();
  if (comm_ != nullptr) {
    // ncclCommAbort stops this rank's NCCL kernels; bound it too, MPI_Abort must happen anyway.
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::thread([comm = comm_, done] {
      ncclCommAbort(comm);
      *done = true;
    }).detach();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!*done && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();  // MPI_Abort does not return; keep [[noreturn]] honest
}

}  // namespace shardwise
