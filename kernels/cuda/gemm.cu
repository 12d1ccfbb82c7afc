#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <memory>

#include "common/check.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemv.h"

namespace shardwise::cuda {

// Everything cuBLASLt needs for one shape: descriptors and the heuristic's algorithm.
struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr;  // weight
  cublasLtMatrixLayout_t b = nullptr;  // in
  cublasLtMatrixLayout_t d = nullptr;  // out (also C, with beta = 0)
  cublasLtMatmulAlgo_t algo{};
};

namespace {

cudaDataType_t cuda_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
  }
  SW_CHECK(false);
  return CUDA_R_32F;
}

// The largest power of two (at most 16) dividing every pointer's address.
int common_alignment(const void* a, const void* b, const void* c) {
  const auto bits = reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b) |
                    reinterpret_cast<uintptr_t>(c) | 16;
  return static_cast<int>(bits & (~bits + 1));
}

template <typename T>
void gemv(void* out, DType out_dtype, const void* in, const void* weight, int m, int n, int k,
          cudaStream_t stream) {
  const auto* typed_in = static_cast<const T*>(in);
  const auto* typed_weight = static_cast<const T*>(weight);
  if (out_dtype == DType::kF32) {
    launch_gemv<T, float>(static_cast<float*>(out), typed_in, typed_weight, m, n, k, stream);
  } else {
    launch_gemv<T, T>(static_cast<T*>(out), typed_in, typed_weight, m, n, k, stream);
  }
}

}  // namespace

Gemm::Gemm(std::size_t workspace_bytes) : workspace_bytes_(workspace_bytes) {
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspace_bytes_ > 0) CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

Gemm::~Gemm() {
  for (auto& [key, plan] : plans_) {
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(plan->a));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(plan->b));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(plan->d));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(plan->desc));
    delete plan;
  }
  if (workspace_) CUDA_CHECK(cudaFree(workspace_));
  CUBLAS_CHECK(cublasLtDestroy(handle_));
}

const Gemm::Plan& Gemm::plan_for(int m, int n, int k, DType dtype, DType out_dtype, int alignment) {
  const Key key{m, n, k, static_cast<int>(dtype), static_cast<int>(out_dtype), alignment};
  if (auto it = plans_.find(key); it != plans_.end()) return *it->second;

  auto plan = std::make_unique<Plan>();
  // Row-major out[m, n] = in[m, k] · W[n, k]^T is, column-major, out^T[n, m] = W · in^T with
  // W seen as a k x n column-major matrix (transposed: TRANSA = T) and in as k x m.
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T, no_transpose = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
                                              sizeof(transpose)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                              &no_transpose, sizeof(no_transpose)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->a, cuda_type(dtype), k, n, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->b, cuda_type(dtype), k, m, k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan->d, cuda_type(out_dtype), n, m, n));

  cublasLtMatmulPreference_t preference = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference,
                                                    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes_, sizeof(workspace_bytes_)));
  const uint32_t align = static_cast<uint32_t>(alignment);
  for (auto attribute :
       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES}) {
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(preference, attribute, &align, sizeof(align)));
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, plan->desc, plan->a, plan->b, plan->d,
                                              plan->d, preference, 1, &result, &found));
  CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(preference));
  SW_CHECK(found > 0);  // no cuBLASLt algorithm for this shape and dtype combination
  plan->algo = result.algo;
  return *plans_.emplace(key, plan.release()).first->second;
}

void Gemm::linear(void* out, DType out_dtype, const void* in, const void* weight, DType dtype,
                  int m, int n, int k, cudaStream_t stream) {
  SW_CHECK(out_dtype == dtype || out_dtype == DType::kF32);
  SW_CHECK(k > 0);
  if (m == 0 || n == 0) return;
  if (m <= kGemvMaxM && dtype != DType::kF32) {
    if (dtype == DType::kBF16)
      return gemv<__nv_bfloat16>(out, out_dtype, in, weight, m, n, k, stream);
    return gemv<__half>(out, out_dtype, in, weight, m, n, k, stream);
  }
  const Plan& plan = plan_for(m, n, k, dtype, out_dtype, common_alignment(out, in, weight));
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(handle_, plan.desc, &alpha, weight, plan.a, in, plan.b, &beta, out,
                              plan.d, out, plan.d, &plan.algo, workspace_, workspace_bytes_,
                              stream));
}

}  // namespace shardwise::cuda
