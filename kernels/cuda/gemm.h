#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <tuple>

#include "common/dtype.h"

namespace shardwise::cuda {

// Linear layers through cuBLASLt: out[m, n] = in[m, k] · weight[n, k]^T, row-major, with fp32
// accumulation. in and weight share one dtype (F32, F16 or BF16); out is that dtype or F32
// (logits). The algorithm for each shape is chosen once by cuBLASLt's heuristic and cached, so
// steady-state calls (and CUDA graph capture) do no host work beyond the launch.
class Gemm {
 public:
  explicit Gemm(std::size_t workspace_bytes = 32 << 20);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  void linear(void* out, DType out_dtype, const void* in, const void* weight, DType dtype, int m,
              int n, int k, cudaStream_t stream);

 private:
  struct Plan;
  using Key = std::tuple<int, int, int, int, int>;  // m, n, k, dtype, out_dtype
  const Plan& plan_for(int m, int n, int k, DType dtype, DType out_dtype);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_;
  std::map<Key, Plan*> plans_;
};

}  // namespace shardwise::cuda
