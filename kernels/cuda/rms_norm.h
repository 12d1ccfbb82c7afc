#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace shardwise::cuda {

// out = in / sqrt(mean(in^2) + eps) * weight per row, accumulating in fp32.
// T is float or __nv_bfloat16. out may alias in.
template <typename T>
void launch_rms_norm(T* out,           // [n_tokens, hidden]
                     const T* in,      // [n_tokens, hidden]
                     const T* weight,  // [hidden]
                     int n_tokens, int hidden, float eps, cudaStream_t stream);

}  // namespace shardwise::cuda
