// Kernels for row-major weights on AVX2 + FMA + F16C (compiled with those flags; called only
// where cpu_supports(CpuIsa::kAvx2)): decode steps read the weights in place. Each step widens
// 8 inputs' weights of a row to fp32 in registers (bf16: zero-extend and shift; fp16:
// vcvtph2ps) and multiplies them by fp32 inputs; a tile keeps NR weight rows x MR input rows of
// accumulators and sums each one's lanes at the end.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/matmul_row_tiling.h"

namespace shardwise::cpu::detail {
namespace {

inline float sum_lanes(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <WeightType kType>
struct RowTiles {
  static constexpr std::size_t kElement = kType == WeightType::kF32 ? 4 : 2;
  // Up to 8 accumulators of the 16 registers.
  static constexpr int rows_for(int inputs) {
    return inputs == 1 ? 8 : inputs == 2 ? 4 : inputs <= 4 ? 2 : 1;
  }

  // 8 weights from `p` (8 * kElement bytes) in fp32.
  static __m256 weights(const unsigned char* p) {
    if constexpr (kType == WeightType::kF32) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
    } else {
      const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      if constexpr (kType == WeightType::kF16) return _mm256_cvtph_ps(bits);
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    }
  }

  // One step of 8 inputs from k; the last one (n < 8 inputs left) reads zero-padded copies.
  template <int MR, int NR>
  static void step(const RowTileArgs& a, int k, int n, __m256 (&acc)[MR][NR]) {
    __m256 w[NR];
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r) {
      const unsigned char* p = a.rows[r] + kElement * k;
      if (n < 8) {
        unsigned char padded[32] = {};
        std::memcpy(padded, p, kElement * n);
        w[r] = weights(padded);
      } else {
        w[r] = weights(p);
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const float* in = a.in.f32 + static_cast<std::size_t>(a.row0 + i) * a.in.f32_stride + k;
      __m256 x;
      if (n < 8) {
        float padded[8] = {};
        std::memcpy(padded, in, sizeof(float) * n);
        x = _mm256_loadu_ps(padded);
      } else {
        x = _mm256_loadu_ps(in);
      }
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_fmadd_ps(w[r], x, acc[i][r]);
    }
  }

  template <int MR, int NR>
  static void block(const RowTileArgs& a) {
    __m256 acc[MR][NR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_setzero_ps();
    const int cols = a.w.cols;
    int k = 0;
    for (; k + 8 <= cols; k += 8) step<MR, NR>(a, k, 8, acc);
    if (k < cols) step<MR, NR>(a, k, cols - k, acc);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
      for (int r = 0; r < NR; ++r) *a.out_at(i, r) = sum_lanes(acc[i][r]);
  }
};

}  // namespace

void matmul_rows_avx2(const RowWeights& w, const PanelInput& input, float* out, int out_stride,
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
