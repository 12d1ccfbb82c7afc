// Kernels for row-major weights on AVX-512 with BF16 (compiled with those flags; called only
// where cpu_supports(CpuIsa::kAvx512)): decode steps read the weights in place, straight from
// the mmapped checkpoint. One zmm load takes 32 bf16 or 16 fp32/fp16 inputs of one weight row;
// a tile keeps NR weight rows x MR input rows of fp32 accumulators and sums each one's lanes at
// the end. bf16 weights meet inputs rounded to bf16 in vdpbf16ps, as in the packed kernels.
// GCC 12 reports its own _mm512_undefined_ps() inside the intrinsics as maybe-uninitialised
// (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "kernels/cpu/matmul_row_tiling.h"

namespace shardwise::cpu::detail {
namespace {

template <WeightType kType>
struct RowTiles {
  // Inputs per step: one 64-byte load of bf16, one 16-lane load of fp32 or fp16.
  static constexpr int kStep = kType == WeightType::kBF16 ? 32 : 16;
  // Up to 16 accumulators.
  static constexpr int rows_for(int inputs) { return inputs <= 2 ? 8 : inputs <= 4 ? 4 : 2; }

  static __m512 weights(const unsigned char* row, int k, __mmask32 mask) {
    if constexpr (kType == WeightType::kF32) {
      return _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask), row + 4 * std::size_t(k));
    } else if constexpr (kType == WeightType::kF16) {
      return _mm512_cvtph_ps(
          _mm256_maskz_loadu_epi16(static_cast<__mmask16>(mask), row + 2 * std::size_t(k)));
    } else {
      return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, row + 2 * std::size_t(k)));
    }
  }

  static __m512 inputs(const PanelInput& in, int i, int k, __mmask32 mask) {
    if constexpr (kType == WeightType::kBF16) {
      return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(
          mask, in.bf16 + static_cast<std::size_t>(i) * in.bf16_stride + k));
    } else {
      return _mm512_maskz_loadu_ps(static_cast<__mmask16>(mask),
                                   in.f32 + static_cast<std::size_t>(i) * in.f32_stride + k);
    }
  }

  static __m512 multiply_add(__m512 acc, __m512 w, __m512 x) {
    if constexpr (kType == WeightType::kBF16) {
      return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)x);
    } else {
      return _mm512_fmadd_ps(w, x, acc);
    }
  }

  template <int MR, int NR>
  static void step(const RowTileArgs& a, int k, __mmask32 mask, __m512 (&acc)[MR][NR]) {
    __m512 w[NR];
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) w[r] = weights(a.rows[r], k, mask);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 x = inputs(a.in, a.row0 + i, k, mask);
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[i][r] = multiply_add(acc[i][r], w[r], x);
    }
  }

  template <int MR, int NR>
  static void block(const RowTileArgs& a) {
    __m512 acc[MR][NR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_setzero_ps();
    const int cols = a.w.cols;
    int k = 0;
    for (; k + kStep <= cols; k += kStep) step<MR, NR>(a, k, ~__mmask32(0), acc);
    if (k < cols) step<MR, NR>(a, k, (__mmask32(1) << (cols - k)) - 1, acc);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) *a.out_at(i, r) = _mm512_reduce_add_ps(acc[i][r]);
  }
};

}  // namespace

void matmul_rows_avx512(const RowWeights& w, const PanelInput& input, float* out, int out_stride,
                        int row_begin, int row_end) {
  switch (w.type) {
    case WeightType::kF32:
      return run_rows<RowTiles<WeightType::kF32>>(w, input, out, out_stride, row_begin, row_end);
    case WeightType::kF16:
      return run_rows<RowTiles<WeightType::kF16>>(w, input, out, out_stride, row_begin, row_end);
    case WeightType::kBF16:
      return run_rows<RowTiles<WeightType::kBF16>>(w, input, out, out_stride, row_begin, row_end);
    case WeightType::kInt8:
      break;  // int8 is always packed
  }
}

}  // namespace shardwise::cpu::detail
