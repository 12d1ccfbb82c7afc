// Shared by the device-communicator tests: MPI start-up around GoogleTest, exact comparison of
// collective results, and bf16/f16 host conversions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "comm/mpi_session.h"
#include "common/dtype.h"

namespace shardwise::testing {

// Exit status of a test binary that found no GPU: ctest reports it as skipped (SKIP_RETURN_CODE).
constexpr int kSkipReturnCode = 77;

// The MPI session the test binary's main started (every rank of MPI_COMM_WORLD, one group).
const MpiSession& test_session();

// Host values as `dtype`'s bytes (values must be exact in `dtype` for exact tests).
inline std::vector<std::uint8_t> encode(const std::vector<float>& values, DType dtype) {
  std::vector<std::uint8_t> bytes(values.size() * dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(bytes.data() + 4 * i, &values[i], 4);
    } else if (dtype == DType::kBF16) {
      const __nv_bfloat16 value = __float2bfloat16_rn(values[i]);
      std::memcpy(bytes.data() + 2 * i, &value, 2);
    } else {
      const __half value = __float2half_rn(values[i]);
      std::memcpy(bytes.data() + 2 * i, &value, 2);
    }
  }
  return bytes;
}

inline std::vector<float> decode(const std::vector<std::uint8_t>& bytes, DType dtype) {
  std::vector<float> values(bytes.size() / dtype_size(dtype));
  convert_to_f32(values.data(), bytes.data(), dtype, values.size());
  return values;
}

// Bit-exact equality, printing the first mismatches with their indices.
inline ::testing::AssertionResult exactly_equal(const std::vector<float>& actual,
                                                const std::vector<float>& expected) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "size " << actual.size() << " != expected " << expected.size();
  }
  auto failure = ::testing::AssertionFailure();
  int mismatches = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (actual[i] != expected[i]) {  // NaN (poison left unwritten) never compares equal
      if (mismatches < 8) failure << "[" << i << "] " << actual[i] << " != " << expected[i] << "; ";
      ++mismatches;
    }
  }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return failure << mismatches << " of " << actual.size() << " elements differ";
}

// A poisoned (all bits set: NaN) device buffer of `bytes`, freed at scope end. Its writes go to
// the legacy default stream, which the tests' non-blocking streams do not wait for (cudaMemset
// is asynchronous, and a pageable cudaMemcpy may return before its DMA lands): each write is
// finished with a device synchronisation before a collective can read the buffer.
class DeviceBytes {
 public:
  explicit DeviceBytes(std::size_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&data_, bytes) != cudaSuccess || cudaMemset(data_, 0xFF, bytes) != cudaSuccess ||
        cudaDeviceSynchronize() != cudaSuccess) {
      ADD_FAILURE() << "cudaMalloc/cudaMemset of " << bytes << " bytes failed";
    }
  }
  explicit DeviceBytes(const std::vector<std::uint8_t>& host) : DeviceBytes(host.size()) {
    upload(host);
  }
  ~DeviceBytes() { cudaFree(data_); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;

  void* get() { return data_; }
  void upload(const std::vector<std::uint8_t>& host) {
    EXPECT_EQ(cudaMemcpy(data_, host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  void poison() {
    EXPECT_EQ(cudaMemset(data_, 0xFF, bytes_), cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  std::vector<std::uint8_t> download() const {
    std::vector<std::uint8_t> host(bytes_);
    EXPECT_EQ(cudaMemcpy(host.data(), data_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

 private:
  void* data_ = nullptr;
  std::size_t bytes_;
};

}  // namespace shardwise::testing
