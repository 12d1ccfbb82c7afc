// Panel kernels for AVX-512 with BF16 and VNNI (compiled with those flags; called only where
// cpu_supports(CpuIsa::kAvx512)). One zmm register holds one panel's 16 outputs; a tile keeps
// MR input rows x NP panels of them in registers and broadcasts each input (bf16 pair, int8
// quad, fp32 value) against one 64-byte load of the panel.
// GCC 12 reports its own _mm512_undefined_ps() inside the intrinsics as maybe-uninitialised
// (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstring>

#include "kernels/cpu/matmul_tiling.h"

namespace shardwise::cpu::detail {
namespace {

// Panels per register tile: with few input rows, more panels keep more independent
// accumulator chains in flight (vdpbf16ps/vfmadd latency 4-6 cycles).
constexpr int panels_for(int rows) { return rows <= 2 ? 4 : 2; }
constexpr int int8_panels_for(int rows) { return rows <= 2 ? 4 : rows <= 4 ? 2 : 1; }

inline __m512 widen_f16(const void* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
}

inline __m512i broadcast_u32(const void* p) {
  std::int32_t value;
  std::memcpy(&value, p, sizeof(value));
  return _mm512_set1_epi32(value);
}

// Stores (or adds) one panel's 16 outputs; columns past `valid` are left alone.
inline void store_outputs(float* out, __m512 value, int valid, bool accumulate) {
  if (valid <= 0) return;
  const __mmask16 mask = valid >= 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1);
  if (accumulate) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask, out));
  _mm512_mask_storeu_ps(out, mask, value);
}

template <int MR, int NP>
void zero(__m512 (&acc)[MR][NP]) {
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) acc[i][p] = _mm512_setzero_ps();
}

template <int MR, int NP>
void store_tile(const TileArgs& a, int first, __m512 (&acc)[MR][NP]) {
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      store_outputs(a.out_at(i, first + p), acc[i][p], a.valid(first + p), a.accumulate);
    }
  }
}

// fp32 (or fp16 widened by vcvtph2ps) panels [k][16] against fp32 inputs.
template <bool kHalf>
struct FloatKernel {
  static constexpr int kMaxRows = 8;
  static constexpr int panels(int rows) { return panels_for(rows); }

  template <int MR, int NP>
  static void block(const TileArgs& a, int first) {
    __m512 acc[MR][NP];
    zero<MR, NP>(acc);
    const float* in = a.in.f32 + static_cast<std::size_t>(a.row0) * a.in.f32_stride;
    for (int k = a.k0; k < a.k1; ++k) {
      __m512 w[NP];
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        const unsigned char* panel = a.panel_data(first + p);
        w[p] = kHalf ? widen_f16(panel + 2 * 16 * std::size_t(k))
                     : _mm512_loadu_ps(panel + 4 * 16 * std::size_t(k));
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512 x = _mm512_set1_ps(in[static_cast<std::size_t>(i) * a.in.f32_stride + k]);
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) acc[i][p] = _mm512_fmadd_ps(w[p], x, acc[i][p]);
      }
    }
    store_tile<MR, NP>(a, first, acc);
  }
};

// bf16 panels [k/2][16][2] against inputs rounded to bf16: vdpbf16ps adds both products of a
// pair to each fp32 lane.
struct Bf16Kernel {
  static constexpr int kMaxRows = 8;
  static constexpr int panels(int rows) { return panels_for(rows); }

  template <int MR, int NP>
  static void block(const TileArgs& a, int first) {
    __m512 acc[MR][NP];
    zero<MR, NP>(acc);
    const std::uint16_t* in = a.in.bf16 + static_cast<std::size_t>(a.row0) * a.in.bf16_stride;
    for (int k = a.k0; k < a.k1; k += 2) {
      __m512bh w[NP];
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        w[p] = (__m512bh)_mm512_loadu_si512(a.panel_data(first + p) + 2 * 16 * std::size_t(k));
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512bh x =
            (__m512bh)broadcast_u32(in + static_cast<std::size_t>(i) * a.in.bf16_stride + k);
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) acc[i][p] = _mm512_dpbf16_ps(acc[i][p], w[p], x);
      }
    }
    store_tile<MR, NP>(a, first, acc);
  }
};

// int8 panels [k/4][16][4] (stored as q + 128) against int8 inputs: vpdpbusd multiplies the
// unsigned weight bytes by the signed input quad; starting each block's int32 sum at
// -128 * sum(input q) removes the +128. Each block of 32 is then scaled into fp32.
struct Int8Kernel {
  static constexpr int kMaxRows = 8;
  static constexpr int panels(int rows) { return int8_panels_for(rows); }

  template <int MR, int NP>
  static void block(const TileArgs& a, int first) {
    __m512 acc[MR][NP];
    zero<MR, NP>(acc);
    const PanelInput& in = a.in;
    const std::size_t scale_stride = static_cast<std::size_t>(a.w.k_padded / 32) * 16;
    for (int b = a.k0 / 32; b < a.k1 / 32; ++b) {
      __m512i sums[MR][NP];
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512i offset = _mm512_set1_epi32(in.q_offset[(a.row0 + i) * in.q_blocks + b]);
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) sums[i][p] = offset;
      }
#pragma GCC unroll 16
      for (int quad = 0; quad < 8; ++quad) {
        const int k = b * 32 + quad * 4;
        __m512i w[NP];
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) {
          w[p] = _mm512_loadu_si512(a.panel_data(first + p) + 16 * std::size_t(k));
        }
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
          const __m512i x =
              broadcast_u32(in.q + static_cast<std::size_t>(a.row0 + i) * in.q_stride + k);
#pragma GCC unroll 16
          for (int p = 0; p < NP; ++p) sums[i][p] = _mm512_dpbusd_epi32(sums[i][p], w[p], x);
        }
      }
      __m512 weight_scale[NP];
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        const std::uint16_t* scales =
            a.w.scales + static_cast<std::size_t>(a.panel + first + p) * scale_stride + b * 16;
        weight_scale[p] = widen_f16(scales);
      }
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512 input_scale = _mm512_set1_ps(in.q_scale[(a.row0 + i) * in.q_blocks + b]);
#pragma GCC unroll 16
        for (int p = 0; p < NP; ++p) {
          acc[i][p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[i][p]),
                                      _mm512_mul_ps(weight_scale[p], input_scale), acc[i][p]);
        }
      }
    }
    store_tile<MR, NP>(a, first, acc);
  }
};

}  // namespace

void matmul_panels_avx512(const PanelWeights& w, const PanelInput& input, float* out,
                          int out_stride, int panel_begin, int panel_end, bool accumulate) {
  run_panels_of_type<FloatKernel<false>, FloatKernel<true>, Bf16Kernel, Int8Kernel>(
      w, input, out, out_stride, panel_begin, panel_end, accumulate);
}

}  // namespace shardwise::cpu::detail
