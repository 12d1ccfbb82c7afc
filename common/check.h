// The one home of fatal status checks for CUDA, cuBLAS, NCCL and MPI calls, and of internal
// invariants. A failing check logs rank, host, device, file:line and the failing expression,
// then aborts: a shard must die loudly so its group dies with it (DESIGN.md). Code that must
// survive bad input (the coordinator, loaders) returns Status instead.
//
// The macros name library symbols only when expanded, so including this header needs no CUDA.
#pragma once

namespace shardwise {

[[noreturn]] void check_failed(const char* library, long long code, const char* error_text,
                               const char* expression, const char* file, int line);

// Context printed by check_failed; set once at start-up by comm/ and the CUDA backend.
void set_check_context_rank(int rank);
void set_check_context_device(int device);

}  // namespace shardwise

#define SW_CHECK(cond)                                                                          \
  do {                                                                                          \
    if (!(cond)) ::shardwise::check_failed("invariant", 0, "false", #cond, __FILE__, __LINE__); \
  } while (0)

#define CUDA_CHECK(expr)                                                                       \
  do {                                                                                         \
    cudaError_t sw_err_ = (expr);                                                              \
    if (sw_err_ != cudaSuccess)                                                                \
      ::shardwise::check_failed("CUDA", sw_err_, cudaGetErrorString(sw_err_), #expr, __FILE__, \
                                __LINE__);                                                     \
  } while (0)

#define CUBLAS_CHECK(expr)                                                                \
  do {                                                                                    \
    cublasStatus_t sw_err_ = (expr);                                                      \
    if (sw_err_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::shardwise::check_failed("cuBLAS", sw_err_, cublasGetStatusString(sw_err_), #expr, \
                                __FILE__, __LINE__);                                      \
  } while (0)

#define NCCL_CHECK(expr)                                                                       \
  do {                                                                                         \
    ncclResult_t sw_err_ = (expr);                                                             \
    if (sw_err_ != ncclSuccess && sw_err_ != ncclInProgress)                                   \
      ::shardwise::check_failed("NCCL", sw_err_, ncclGetErrorString(sw_err_), #expr, __FILE__, \
                                __LINE__);                                                     \
  } while (0)

#define MPI_CHECK(expr)                                                               \
  do {                                                                                \
    int sw_err_ = (expr);                                                             \
    if (sw_err_ != MPI_SUCCESS) {                                                     \
      char sw_text_[MPI_MAX_ERROR_STRING];                                            \
      int sw_len_ = 0;                                                                \
      MPI_Error_string(sw_err_, sw_text_, &sw_len_);                                  \
      ::shardwise::check_failed("MPI", sw_err_, sw_text_, #expr, __FILE__, __LINE__); \
    }                                                                                 \
  } while (0)
