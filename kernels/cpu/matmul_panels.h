// Internal to the CPU matmul: the plain-data interface between matmul.cpp (threads, activation
// preparation) and the kernels of each instruction set, for packed weights (matmul_panels_*.cpp)
// and row-major ones (matmul_rows_*.cpp). Only plain structs cross it: the per-ISA files are
// compiled with wider instruction sets and must not emit out-of-line copies of inline
// functions that portable code could end up calling.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/weight_type.h"

namespace shardwise::cpu::detail {

// A packed matrix (packed_matrix.h) as the kernels see it.
struct PanelWeights {
  WeightType type;
  const unsigned char* data;  // [panels][panel_bytes]
  std::size_t panel_bytes;
  const std::uint16_t* scales;  // kInt8: fp16 [panels][k_padded / 32][16]
  int rows;                     // valid output features
  int cols;                     // input features
  int k_padded;
};

// A row-major matrix (weight_matrix.h) as the kernels see it: its parts stacked by rows.
constexpr int kMaxRowParts = 4;
struct RowWeights {
  WeightType type;  // kF32, kF16 or kBF16
  int n_parts;
  const unsigned char* data[kMaxRowParts];  // part p's row r starts at data[p] + r * stride[p]
  std::size_t stride[kMaxRowParts];         // bytes
  int part_rows[kMaxRowParts];
  int cols;
};

// The m input rows, prepared once per call in the form the kernels for this type and ISA read.
struct PanelInput {
  int m;
  // kF32, kF16, and kBF16 on scalar/AVX2: fp32 rows, zero-padded to k_padded.
  const float* f32;  // [m][f32_stride]
  int f32_stride;
  // kBF16 on AVX-512: the rows rounded to bf16 (round to nearest even), zero-padded.
  const std::uint16_t* bf16;  // [m][bf16_stride]
  int bf16_stride;
  // kInt8: each block of 32 inputs quantised symmetrically like the weights.
  const std::int8_t* q;       // [m][q_stride]
  const std::uint8_t* q_abs;  // [m][q_stride], |q| (for AVX2's vpsignb/vpmaddubsw)
  int q_stride;
  const float* q_scale;          // [m][q_blocks]
  const std::int32_t* q_offset;  // [m][q_blocks]: -128 * sum(q) of the block (VNNI takes q + 128)
  int q_blocks;
};

// out[i][n] = sum_k in[i][k] * W[n][k] (+= with `accumulate`) for the rows n of panels
// [panel_begin, panel_end), both multiples of PackedMatrix::kPanelGroup.
using PanelKernel = void (*)(const PanelWeights& weights, const PanelInput& input, float* out,
                             int out_stride, int panel_begin, int panel_end, bool accumulate);

void matmul_panels_scalar(const PanelWeights& weights, const PanelInput& input, float* out,
                          int out_stride, int panel_begin, int panel_end, bool accumulate);
void matmul_panels_avx2(const PanelWeights& weights, const PanelInput& input, float* out,
                        int out_stride, int panel_begin, int panel_end, bool accumulate);
void matmul_panels_avx512(const PanelWeights& weights, const PanelInput& input, float* out,
                          int out_stride, int panel_begin, int panel_end, bool accumulate);

// out[i][n] = sum_k in[i][k] * W[n][k] for the rows n in [row_begin, row_end) of a row-major
// matrix and up to kMaxRowInputs input rows (decode): one pass over those rows.
constexpr int kMaxRowInputs = 8;
using RowKernel = void (*)(const RowWeights& weights, const PanelInput& input, float* out,
                           int out_stride, int row_begin, int row_end);

void matmul_rows_scalar(const RowWeights& weights, const PanelInput& input, float* out,
                        int out_stride, int row_begin, int row_end);
void matmul_rows_avx2(const RowWeights& weights, const PanelInput& input, float* out,
                      int out_stride, int row_begin, int row_end);
void matmul_rows_avx512(const RowWeights& weights, const PanelInput& input, float* out,
                        int out_stride, int row_begin, int row_end);

// The inputs as matmul_amx.cpp's B operand: each row rounded to bf16, zero-padded to k_padded
// (a multiple of 32), and stored as pairs of consecutive inputs, input rows innermost and
// zero-padded to m_padded (a multiple of 16).
struct AmxInput {
  const std::uint32_t* pairs;  // [k_padded / 2][m_padded]: bf16 (row, 2j) | (row, 2j + 1) << 16
  int m;
  int m_padded;
  int k_padded;
};

// out[i][n] = sum_k in[i][k] * W[n][k] for the rows n in [row_begin, row_end) of a row-major
// bf16 matrix, in AMX tiles (only where amx_bf16_usable()).
void matmul_rows_amx(const RowWeights& weights, const AmxInput& input, float* out, int out_stride,
                     int row_begin, int row_end);

}  // namespace shardwise::cpu::detail
