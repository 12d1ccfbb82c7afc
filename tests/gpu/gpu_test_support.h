// Shared by the GPU tests: skip without a GPU, device buffers, poisoning.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/check.h"
#include "kernels/cuda/device.h"

// Skips the current test, with a message, when this machine has no usable GPU.
#define SKIP_WITHOUT_GPU()                                                        \
  do {                                                                            \
    if (::shardwise::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

namespace shardwise::testing {

// A device copy of a host vector, freed at scope end.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    CUDA_CHECK(cudaMalloc(&data_, count * sizeof(T)));
    // Poison: NaN for float, 0xFFFF (NaN) for bf16 — unwritten outputs then fail the comparison.
    CUDA_CHECK(cudaMemset(data_, 0xFF, count * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    CUDA_CHECK(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() { return data_; }
  std::vector<T> to_host() const {
    std::vector<T> host(count_);
    CUDA_CHECK(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* data_ = nullptr;
  std::size_t count_;
};

}  // namespace shardwise::testing
