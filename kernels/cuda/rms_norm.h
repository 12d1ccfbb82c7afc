#pragma once

#include <cuda_runtime.h>

namespace shardwise::cuda {

// out = in / sqrt(mean(in^2) + eps) * weight per row, accumulating in fp32.
// T is float, __nv_bfloat16 or __half. out may alias in.
template <typename T>
void launch_rms_norm(T* out,           // [n_tokens, hidden]
                     const T* in,      // [n_tokens, hidden]
                     const T* weight,  // [hidden]
                     int n_tokens, int hidden, float eps, cudaStream_t stream);

// residual += x; out = rms_norm(residual): the pre-norm block's "add, then normalise" in one
// pass over the row. The sum is rounded to T before it is stored and normalised, exactly as an
// unfused add followed by rms_norm would do.
template <typename T>
void launch_fused_add_rms_norm(T* out,           // [n_tokens, hidden]
                               T* residual,      // [n_tokens, hidden], updated in place
                               const T* x,       // [n_tokens, hidden]
                               const T* weight,  // [hidden]
                               int n_tokens, int hidden, float eps, cudaStream_t stream);

}  // namespace shardwise::cuda
