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
// For m <= kGemvMaxM (decode) with F16/BF16 weights, linear uses launch_gemv (gemv.h), which
// streams the weights faster than cuBLAS does at these shapes. One Gemm per stream: calls share
// one workspace.
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
  // m, n, k, dtype, out_dtype, alignment in bytes common to the three pointers (up to 16)
  using Key = std::tuple<int, int, int, int, int, int>;
  const Plan& plan_for(int m, int n, int k, DType dtype, DType out_dtype, int alignment);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_;
  std::map<Key, Plan*> plans_;
};

}  // namespace shardwise::cuda
