#pragma once

#include <cuda_runtime.h>

namespace shardwise::cuda {

// The largest m launch_gemv takes.
constexpr int kGemvMaxM = 8;

// out[m, n] = in[m, k] · weight[n, k]^T for a few rows (m <= kGemvMaxM): the decode-time linear
// layer, bound by streaming the weight matrix once. Each warp reads kRows weight rows with
// 16-byte loads and multiplies them by all m input rows, accumulating in fp32; when n is small
// the k dimension is split between the warps of a block (reduced in shared memory, in a fixed
// order, so results are deterministic). T is __nv_bfloat16 or __half; TOut is T or float.
// Any k works: when k is not a multiple of 8 or a pointer is not 16-byte aligned, a slower
// element-wise path is taken.
template <typename T, typename TOut>
void launch_gemv(TOut* out,        // [m, n]
                 const T* in,      // [m, k]
                 const T* weight,  // [n, k]
                 int m, int n, int k, cudaStream_t stream);

}  // namespace shardwise::cuda
