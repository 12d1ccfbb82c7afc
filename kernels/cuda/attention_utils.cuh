// Device helpers shared by the attention kernels (kv_cache_write, paged_attention_decode,
// prefill_attention): conversions to and from fp32 and vectorised loads of N elements.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace shardwise::cuda::attention {

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half(x);
}

// The raw storage of N elements of T in one load: 16, 8, 4 or 2 bytes.
template <int kBytes>
struct RawVec;
template <>
struct RawVec<16> {
  using type = uint4;
};
template <>
struct RawVec<8> {
  using type = uint2;
};
template <>
struct RawVec<4> {
  using type = uint32_t;
};
template <>
struct RawVec<2> {
  using type = uint16_t;
};

// Loads N consecutive elements at p (aligned to N * sizeof(T) bytes) and widens them to fp32.
template <typename T, int N>
__device__ __forceinline__ void load_as_float(const T* p, float (&out)[N]) {
  using Raw = typename RawVec<N * sizeof(T)>::type;
  const Raw raw = *reinterpret_cast<const Raw*>(p);
  const T* elems = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = to_float(elems[i]);
}

// Copies N consecutive elements (aligned as above) in one load and one store.
template <typename T, int N>
__device__ __forceinline__ void copy_vec(T* dst, const T* src) {
  using Raw = typename RawVec<N * sizeof(T)>::type;
  *reinterpret_cast<Raw*>(dst) = *reinterpret_cast<const Raw*>(src);
}

// Narrows N fp32 values to T and stores them at p (aligned as above) in one store.
template <typename T, int N>
__device__ __forceinline__ void store_from_float(T* p, const float (&in)[N]) {
  using Raw = typename RawVec<N * sizeof(T)>::type;
  Raw raw;
  T* elems = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int i = 0; i < N; ++i) elems[i] = from_float<T>(in[i]);
  *reinterpret_cast<Raw*>(p) = raw;
}

// Whether p is aligned to `bytes`.
inline bool is_aligned(const void* p, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

}  // namespace shardwise::cuda::attention
