#include "comm/host_staged_communicator.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstring>

#include "common/check.h"
#include "common/logging.h"

namespace shardwise {
namespace {

// Aborts with a clear message when the caller tries to capture a host-staged collective.
void check_not_capturing(cudaStream_t stream, const char* operation) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  if (status != cudaStreamCaptureStatusNone) {
    log()->critical(
        "HostStagedCommunicator::{} was called on a stream that is capturing a CUDA graph; it "
        "synchronises on the host and cannot be captured: run the forward pass eagerly",
        operation);
    SW_CHECK(status == cudaStreamCaptureStatusNone);
  }
}

// fp32 -> `dtype` with round-to-nearest-even, `count` elements into `dst`.
void convert_from_f32(void* dst, const float* src, DType dtype, std::size_t count) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, src, count * sizeof(float));
      return;
    case DType::kF16: {
      auto* out = static_cast<__half*>(dst);
      for (std::size_t i = 0; i < count; ++i) out[i] = __float2half_rn(src[i]);
      return;
    }
    case DType::kBF16: {
      auto* out = static_cast<__nv_bfloat16*>(dst);
      for (std::size_t i = 0; i < count; ++i) out[i] = __float2bfloat16_rn(src[i]);
      return;
    }
  }
}

}  // namespace

HostStagedCommunicator::HostStagedCommunicator(MPI_Comm group, std::chrono::milliseconds timeout)
    : mpi_(group, timeout) {
  CUDA_CHECK(cudaEventCreateWithFlags(&copied_back_, cudaEventDisableTiming));
}

HostStagedCommunicator::~HostStagedCommunicator() {
  if (copied_back_ != nullptr) {
    cudaEventSynchronize(copied_back_);
    cudaEventDestroy(copied_back_);
  }
  if (pinned_ != nullptr) cudaFreeHost(pinned_);
}

void* HostStagedCommunicator::staging(std::size_t bytes) {
  CUDA_CHECK(cudaEventSynchronize(copied_back_));
  if (bytes > pinned_bytes_) {
    if (pinned_ != nullptr) CUDA_CHECK(cudaFreeHost(pinned_));
    CUDA_CHECK(cudaMallocHost(&pinned_, bytes));
    pinned_bytes_ = bytes;
  }
  return pinned_;
}

void HostStagedCommunicator::copy_back(void* device_dst, std::size_t bytes, cudaStream_t stream) {
  CUDA_CHECK(cudaMemcpyAsync(device_dst, pinned_, bytes, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaEventRecord(copied_back_, stream));
}

void HostStagedCommunicator::all_reduce_sum(void* data, std::size_t count, DType dtype,
                                            cudaStream_t stream) {
  if (size() == 1 || count == 0) return;
  check_not_capturing(stream, "all_reduce_sum");
  const std::size_t bytes = count * dtype_size(dtype);
  void* host = staging(bytes);
  CUDA_CHECK(cudaMemcpyAsync(host, data, bytes, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  if (dtype == DType::kF32) {
    mpi_.all_reduce_sum(static_cast<float*>(host), count);
  } else {
    send_f32_.resize(count);
    convert_to_f32(send_f32_.data(), host, dtype, count);
    mpi_.all_reduce_sum(send_f32_.data(), count);
    convert_from_f32(host, send_f32_.data(), dtype, count);
  }
  copy_back(data, bytes, stream);
}

void HostStagedCommunicator::all_gather(const void* send, std::size_t count, void* recv,
                                        DType dtype, cudaStream_t stream) {
  check_not_capturing(stream, "all_gather");
  const std::size_t n = static_cast<std::size_t>(size());
  const std::size_t bytes = count * dtype_size(dtype);
  // The staging buffer holds the gathered result; this rank's part is staged in its slot.
  auto* host = static_cast<unsigned char*>(staging(n * bytes));
  unsigned char* mine = host + rank() * bytes;
  CUDA_CHECK(cudaMemcpyAsync(mine, send, bytes, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  const std::vector<std::size_t> counts(n, count);
  send_f32_.resize(count);
  convert_to_f32(send_f32_.data(), mine, dtype, count);  // F16/BF16 -> F32 and back is exact
  recv_f32_.resize(n * count);
  mpi_.all_gather(send_f32_.data(), counts, recv_f32_.data());
  convert_from_f32(host, recv_f32_.data(), dtype, n * count);
  copy_back(recv, n * bytes, stream);
}

}  // namespace shardwise
