#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "common/check.h"
#include "kernels/cuda/gemv.h"

namespace shardwise::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRows = 4;        // weight rows per warp
constexpr int kChunk = 8;       // elements per lane per load: 16 bytes of bf16/half
constexpr int kMinSlice = 512;  // elements of k per warp at least, when splitting k

__device__ inline float2 to_float2(__nv_bfloat162 v) { return __bfloat1622float2(v); }
__device__ inline float2 to_float2(__half2 v) { return __half22float2(v); }

// Eight elements of T at p (p[0..limit) valid; the rest read as zero) as floats.
template <typename T, bool kVec, bool kStream>
__device__ inline void load8(float (&f)[kChunk], const T* p, int limit) {
  if constexpr (kVec) {
    using T2 = std::conditional_t<std::is_same_v<T, __half>, __half2, __nv_bfloat162>;
    const uint4 raw = kStream ? __ldcs(reinterpret_cast<const uint4*>(p))
                              : __ldg(reinterpret_cast<const uint4*>(p));
    const T2* pairs = reinterpret_cast<const T2*>(&raw);
#pragma unroll
    for (int j = 0; j < kChunk / 2; ++j) {
      const float2 pair = to_float2(pairs[j]);
      f[2 * j] = pair.x;
      f[2 * j + 1] = pair.y;
    }
  } else {
#pragma unroll
    for (int j = 0; j < kChunk; ++j) f[j] = j < limit ? static_cast<float>(p[j]) : 0.0f;
  }
}

// grid: (ceil(n / (kRows * kWarps / k_split))), block: (kThreads). The block's warps form
// kWarps / k_split groups; each group owns kRows consecutive output rows, and its k_split warps
// take consecutive slices of k (`slice` elements, a multiple of kChunk). Every lane loads
// kChunk elements of each of its warp's kRows weight rows per step (a warp reads 512
// contiguous bytes per row per step), multiplies them by the same elements of all M input
// rows, and the partial sums are reduced across lanes, then across the group's warps.
// M is the number of input rows (the vector path) or kGemvMaxM with the real count in m.
template <typename T, typename TOut, int M, bool kVec>
__global__ void __launch_bounds__(kThreads)
    gemv_kernel(TOut* __restrict__ out,        // [m, n]
                const T* __restrict__ in,      // [m, k]
                const T* __restrict__ weight,  // [n, k]
                int m, int n, int k, int k_split, int slice) {
  __shared__ float partial[kWarps][M][kRows];
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int groups = kWarps / k_split;
  const int group = warp / k_split;
  const int part = warp % k_split;
  const int row0 = (blockIdx.x * groups + group) * kRows;
  const int k_begin = part * slice;
  const int k_end = min(k, k_begin + slice);

  const T* w_rows[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    // Rows past n read row n - 1 (valid memory); their sums are discarded.
    w_rows[r] = weight + static_cast<size_t>(min(row0 + r, n - 1)) * k;
  }
  float acc[M][kRows] = {};
  for (int kk = k_begin + lane * kChunk; kk < k_end; kk += 32 * kChunk) {
    const int limit = k_end - kk;
    float w[kRows][kChunk];
#pragma unroll
    for (int r = 0; r < kRows; ++r) load8<T, kVec, true>(w[r], w_rows[r] + kk, limit);
#pragma unroll
    for (int mi = 0; mi < M; ++mi) {
      if (mi >= m) break;
      float x[kChunk];
      load8<T, kVec, false>(x, in + static_cast<size_t>(mi) * k + kk, limit);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
#pragma unroll
        for (int j = 0; j < kChunk; ++j) acc[mi][r] = fmaf(w[r][j], x[j], acc[mi][r]);
      }
    }
  }
#pragma unroll
  for (int mi = 0; mi < M; ++mi) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float value = acc[mi][r];
      for (int offset = 16; offset > 0; offset /= 2)
        value += __shfl_xor_sync(0xffffffff, value, offset);
      if (lane == 0) partial[warp][mi][r] = value;
    }
  }
  __syncthreads();
  for (int t = threadIdx.x; t < groups * M * kRows; t += kThreads) {
    const int g = t / (M * kRows);
    const int mi = (t / kRows) % M;
    const int r = t % kRows;
    const int row = (blockIdx.x * groups + g) * kRows + r;
    if (mi >= m || row >= n) continue;
    float sum = 0.0f;
    for (int p = 0; p < k_split; ++p) sum += partial[g * k_split + p][mi][r];
    out[static_cast<size_t>(mi) * n + row] = static_cast<TOut>(sum);
  }
}

int sm_count() {
  int device = 0, count = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

template <typename T, typename TOut, int M, bool kVec>
void launch(TOut* out, const T* in, const T* weight, int m, int n, int k, cudaStream_t stream) {
  // Split k until the grid has about 32 warps per SM (one full wave of 4 blocks per SM), while
  // each warp keeps at least kMinSlice elements of k.
  const int row_groups = (n + kRows - 1) / kRows;
  const int target_warps = sm_count() * 32;
  int k_split = 1;
  while (k_split < kWarps && row_groups * k_split < target_warps &&
         k / (2 * k_split) >= kMinSlice) {
    k_split *= 2;
  }
  const int slice = ((k + k_split - 1) / k_split + kChunk - 1) / kChunk * kChunk;
  const int rows_per_block = kRows * (kWarps / k_split);
  const int blocks = (n + rows_per_block - 1) / rows_per_block;
  gemv_kernel<T, TOut, M, kVec>
      <<<blocks, kThreads, 0, stream>>>(out, in, weight, m, n, k, k_split, slice);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

template <typename T, typename TOut>
void launch_gemv(TOut* out, const T* in, const T* weight, int m, int n, int k,
                 cudaStream_t stream) {
  SW_CHECK(m >= 1 && m <= kGemvMaxM && k >= 1);
  if (n == 0) return;
  const bool vec = k % kChunk == 0 && reinterpret_cast<uintptr_t>(in) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(weight) % 16 == 0;
  if (!vec) return launch<T, TOut, kGemvMaxM, false>(out, in, weight, m, n, k, stream);
  switch (m) {
    case 1:
      return launch<T, TOut, 1, true>(out, in, weight, m, n, k, stream);
    case 2:
      return launch<T, TOut, 2, true>(out, in, weight, m, n, k, stream);
    case 3:
      return launch<T, TOut, 3, true>(out, in, weight, m, n, k, stream);
    case 4:
      return launch<T, TOut, 4, true>(out, in, weight, m, n, k, stream);
    case 5:
      return launch<T, TOut, 5, true>(out, in, weight, m, n, k, stream);
    case 6:
      return launch<T, TOut, 6, true>(out, in, weight, m, n, k, stream);
    case 7:
      return launch<T, TOut, 7, true>(out, in, weight, m, n, k, stream);
    default:
      return launch<T, TOut, 8, true>(out, in, weight, m, n, k, stream);
  }
}

template void launch_gemv<__nv_bfloat16, __nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*,
                                                        const __nv_bfloat16*, int, int, int,
                                                        cudaStream_t);
template void launch_gemv<__nv_bfloat16, float>(float*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                int, int, int, cudaStream_t);
template void launch_gemv<__half, __half>(__half*, const __half*, const __half*, int, int, int,
                                          cudaStream_t);
template void launch_gemv<__half, float>(float*, const __half*, const __half*, int, int, int,
                                         cudaStream_t);

}  // namespace shardwise::cuda
