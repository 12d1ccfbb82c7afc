#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace shardwise::cuda {

// Rotates q and k in place ("rotate_half" layout: element i pairs with i + head_dim/2), as
// cpu::apply_rotary does. cos/sin are computed in fp32 from position * inv_freq (the table
// cpu::rope_inv_freq fills, copied to the device), so default and llama3 rope share one kernel.
// Rows are strided so the kernel can work inside the fused QKV projection's output:
// q of token t starts at q + t * q_row_stride, k of token t at k + t * k_row_stride.
// T is float, __nv_bfloat16 or __half.
template <typename T>
void launch_rotary(T* q,                      // [n_tokens, q_row_stride], n_heads heads used
                   T* k,                      // [n_tokens, k_row_stride], n_kv_heads heads used
                   const int32_t* positions,  // [n_tokens]
                   const float* inv_freq,     // [head_dim / 2]
                   int n_tokens, int n_heads, int n_kv_heads, int head_dim, int q_row_stride,
                   int k_row_stride, cudaStream_t stream);

}  // namespace shardwise::cuda
