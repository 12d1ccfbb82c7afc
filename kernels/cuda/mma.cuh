// Tensor-core and asynchronous-copy building blocks (sm_80 and later, so sm_90a too) for the
// kernels that use warp-level mma.sync: fragment packing, the m16n8k16 product with fp32
// accumulation, and cp.async 16-byte copies from global to shared memory.
//
// m16n8k16 fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with
// gid = lane / 4 and tig = lane % 4; each .b32 register holds two 16-bit elements, the one of
// lower column (A, C) or row (B) index in its low half:
//   A (16 x 16, row-major):  a[0] = (gid, 2tig..+1)    a[1] = (gid + 8, 2tig..+1)
//                            a[2] = (gid, 2tig+8..+9)  a[3] = (gid + 8, 2tig+8..+9)
//   B (16 x 8, k x n):       b0 = (k 2tig..+1, n gid)  b1 = (k 2tig+8..+9, n gid)
//   C (16 x 8, fp32):        c[0..1] = (gid, 2tig..+1) c[2..3] = (gid + 8, 2tig..+1)
// So the C fragments of two adjacent n-tiles, narrowed, are the A fragment of one k-step.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace shardwise::cuda::mma {

// d += a * b for one 16x8x16 tile; T is __nv_bfloat16 or __half (PTX type bf16 or f16).
#define SW_MMA_16816(ptx_type)                                                     \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." ptx_type "." ptx_type      \
               ".f32 "                                                             \
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n" \
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                    \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1))
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                          uint32_t b1);
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4],
                                                         uint32_t b0, uint32_t b1) {
  SW_MMA_16816("bf16");
}
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&d)[4], const uint32_t (&a)[4],
                                                  uint32_t b0, uint32_t b1) {
  SW_MMA_16816("f16");
}
#undef SW_MMA_16816

// Two fp32 values narrowed to T and packed, `lo` in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack_floats(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack_floats<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&pair);
}
template <>
__device__ __forceinline__ uint32_t pack_floats<__half>(float lo, float hi) {
  const __half2 pair = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&pair);
}

// Two 16-bit elements packed, `lo` in the low half.
__device__ __forceinline__ uint32_t pack_halves(uint16_t lo, uint16_t hi) {
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// Starts a 16-byte copy from global to shared memory (both 16-byte aligned).
__device__ __forceinline__ void cp_async_16(void* shared, const void* global) {
  const auto address = static_cast<uint32_t>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(address), "l"(global)
               : "memory");
}

// Closes the group of this thread's cp.async copies started since the last commit.
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most kPending of this thread's committed groups are still in flight. Other
// threads' copies are visible only after a barrier that follows their wait.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

}  // namespace shardwise::cuda::mma
