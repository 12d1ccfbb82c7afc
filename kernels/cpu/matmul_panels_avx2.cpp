// Panel kernels for AVX2 + FMA + F16C (compiled with those flags; called only where
// cpu_supports(CpuIsa::kAvx2)). A panel's 16 outputs take two ymm registers (rows 0-7, 8-15);
// bf16 and fp16 weights are widened to fp32 in registers and multiplied by fp32 inputs, int8
// weights by int8 inputs through vpmaddubsw/vpmaddwd.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/matmul_tiling.h"

namespace shardwise::cpu::detail {
namespace {

// 16 ymm registers: at most 8 accumulators per tile (2 per panel and input row).
constexpr int panels_for(int rows) { return rows == 1 ? 4 : rows == 2 ? 2 : 1; }

inline __m256i broadcast_u32(const void* p) {
  std::int32_t value;
  std::memcpy(&value, p, sizeof(value));
  return _mm256_set1_epi32(value);
}

// Stores (or adds) 8 outputs; columns past `valid` are left alone.
inline void store_outputs(float* out, __m256 value, int valid, bool accumulate) {
  if (valid <= 0) return;
  if (valid >= 8) {
    if (accumulate) value = _mm256_add_ps(value, _mm256_loadu_ps(out));
    _mm256_storeu_ps(out, value);
    return;
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, value);
  for (int j = 0; j < valid; ++j) out[j] = accumulate ? out[j] + lanes[j] : lanes[j];
}

template <int MR, int NP>
void store_tile(const TileArgs& a, int first, __m256 (&acc)[MR][NP][2]) {
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
#pragma GCC unroll 16
      for (int half = 0; half < 2; ++half) {
        store_outputs(a.out_at(i, first + p) + 8 * half, acc[i][p][half],
                      a.valid(first + p) - 8 * half, a.accumulate);
      }
    }
  }
}

template <int MR, int NP>
void zero(__m256 (&acc)[MR][NP][2]) {
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[i][p][0] = acc[i][p][1] = _mm256_setzero_ps();
}

// fp32 (or fp16, widened by vcvtph2ps) panels [k][16].
template <bool kHalf>
struct FloatKernel {
  static constexpr int kMaxRows = 4;
  static constexpr int panels(int rows) { return panels_for(rows); }

  static __m256 load8(const unsigned char* panel, std::size_t element) {
    return kHalf ? _mm256_cvtph_ps(
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(panel + 2 * element)))
                 : _mm256_loadu_ps(reinterpret_cast<const float*>(panel + 4 * element));
  }

  template <int MR, int NP>
  static void block(const TileArgs& a, int first) {
    __m256 acc[MR][NP][2];
    zero<MR, NP>(acc);
    const float* in = a.in.f32 + static_cast<std::size_t>(a.row0) * a.in.f32_stride;
    for (int k = a.k0; k < a.k1; ++k) {
      __m256 w[NP][2];
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        w[p][0] = load8(a.panel_data(first + p), 16 * std::size_t(k));
        w[p][1] = load8(a.panel_data(first + p), 16 * std::size_t(k) + 8);
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m256 x = _mm256_set1_ps(in[static_cast<std::size_t>(i) * a.in.f32_stride + k]);
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) {
          acc[i][p][0] = _mm256_fmadd_ps(w[p][0], x, acc[i][p][0]);
          acc[i][p][1] = _mm256_fmadd_ps(w[p][1], x, acc[i][p][1]);
        }
      }
    }
    store_tile<MR, NP>(a, first, acc);
  }
};

// bf16 panels [k/2][16][2]: each 32-bit lane holds one row's pair (k, k+1); shifting the lane
// left by 16 gives w[k] in fp32, masking its low half gives w[k+1].
struct Bf16Kernel {
  static constexpr int kMaxRows = 4;
  static constexpr int panels(int rows) { return panels_for(rows); }

  template <int MR, int NP>
  static void block(const TileArgs& a, int first) {
    __m256 acc[MR][NP][2];
    zero<MR, NP>(acc);
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    const float* in = a.in.f32 + static_cast<std::size_t>(a.row0) * a.in.f32_stride;
    for (int k = a.k0; k < a.k1; k += 2) {
      __m256 even[NP][2], odd[NP][2];
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
#pragma GCC unroll 16
        for (int half = 0; half < 2; ++half) {
          const __m256i pairs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
              a.panel_data(first + p) + 2 * (16 * std::size_t(k) + 16 * half)));
          even[p][half] = _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16));
          odd[p][half] = _mm256_castsi256_ps(_mm256_and_si256(pairs, high));
        }
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const float* row = in + static_cast<std::size_t>(i) * a.in.f32_stride + k;
        const __m256 x0 = _mm256_set1_ps(row[0]), x1 = _mm256_set1_ps(row[1]);
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) {
#pragma GCC unroll 16
          for (int half = 0; half < 2; ++half) {
            acc[i][p][half] = _mm256_fmadd_ps(even[p][half], x0, acc[i][p][half]);
            acc[i][p][half] = _mm256_fmadd_ps(odd[p][half], x1, acc[i][p][half]);
          }
        }
      }
    }
    store_tile<MR, NP>(a, first, acc);
  }
};

// int8 panels [k/4][16][4] stored as q + 128. vpmaddubsw multiplies unsigned by signed bytes,
// so each product is formed as |x| * (w * sign(x)) (vpsignb), with w recovered by flipping
// the stored byte's top bit; pairs of products fit int16 (2 * 127 * 127 < 32768).
struct Int8Kernel {
  static constexpr int kMaxRows = 2;
  static constexpr int panels(int rows) { return rows == 1 ? 2 : 1; }

  template <int MR, int NP>
  static void block(const TileArgs& a, int first) {
    __m256 acc[MR][NP][2];
    zero<MR, NP>(acc);
    const PanelInput& in = a.in;
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    const __m256i ones = _mm256_set1_epi16(1);
    const std::size_t scale_stride = static_cast<std::size_t>(a.w.k_padded / 32) * 16;
    for (int b = a.k0 / 32; b < a.k1 / 32; ++b) {
      __m256i sums[MR][NP][2];
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) sums[i][p][0] = sums[i][p][1] = _mm256_setzero_si256();
#pragma GCC unroll 16
      for (int quad = 0; quad < 8; ++quad) {
        const int k = b * 32 + quad * 4;
        __m256i w[NP][2];
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) {
#pragma GCC unroll 16
          for (int half = 0; half < 2; ++half) {
            w[p][half] =
                _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                     a.panel_data(first + p) + 16 * std::size_t(k) + 32 * half)),
                                 flip);
          }
        }
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
          const std::size_t at = static_cast<std::size_t>(a.row0 + i) * in.q_stride + k;
          const __m256i x = broadcast_u32(in.q + at), x_abs = broadcast_u32(in.q_abs + at);
#pragma GCC unroll 16
          for (int p = 0; p < NP; ++p) {
#pragma GCC unroll 16
            for (int half = 0; half < 2; ++half) {
              const __m256i pairs = _mm256_maddubs_epi16(x_abs, _mm256_sign_epi8(w[p][half], x));
              sums[i][p][half] = _mm256_add_epi32(sums[i][p][half], _mm256_madd_epi16(pairs, ones));
            }
          }
        }
      }
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        const std::uint16_t* scales =
            a.w.scales + static_cast<std::size_t>(a.panel + first + p) * scale_stride + b * 16;
        __m256 weight_scale[2];
#pragma GCC unroll 16
        for (int half = 0; half < 2; ++half) {
          weight_scale[half] =
              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 8 * half)));
        }
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
          const __m256 input_scale = _mm256_set1_ps(in.q_scale[(a.row0 + i) * in.q_blocks + b]);
#pragma GCC unroll 16
          for (int half = 0; half < 2; ++half) {
            acc[i][p][half] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[i][p][half]),
                                _mm256_mul_ps(weight_scale[half], input_scale), acc[i][p][half]);
          }
        }
      }
    }
    store_tile<MR, NP>(a, first, acc);
  }
};

}  // namespace

void matmul_panels_avx2(const PanelWeights& w, const PanelInput& input, float* out, int out_stride,
                        int panel_begin, int panel_end, bool accumulate) {
  run_panels_of_type<FloatKernel<false>, FloatKernel<true>, Bf16Kernel, Int8Kernel>(
      w, input, out, out_stride, panel_begin, panel_end, accumulate);
}

}  // namespace shardwise::cpu::detail
