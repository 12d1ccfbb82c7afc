// bf16 row-major weights against 4 or more input rows in AMX tiles (compiled with
// -mamx-tile -mamx-bf16; called only where amx_bf16_usable()). The weights are the tiles' A
// operand straight from the checkpoint: 16 weight rows x 32 inputs, one 64-byte row each, at
// the tensor's own row stride. The inputs are the B operand, prepared as bf16 pairs
// [k / 2][m_padded] (AmxInput). One tdpbf16ps then adds the products of 16 weight rows and 16
// inputs over 32 inputs to a 16 x 16 fp32 tile, which is out transposed.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "kernels/cpu/matmul_panels.h"

namespace shardwise::cpu::detail {
namespace {

constexpr int kTileRows = 16;
constexpr int kTileInputs = 32;  // bf16 per 64-byte tile row

// Tiles 0-3: fp32 sums (2 weight groups x 2 input groups); 4-5: weights; 6-7: inputs.
struct alignas(64) TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig config;
  for (int tile = 0; tile < 8; ++tile) {
    config.bytes_per_row[tile] = 64;
    config.rows[tile] = kTileRows;
  }
  _tile_loadconfig(&config);
}

// 16 weight rows from `first` as the A operand: in place when they lie in one part and the
// inputs fill whole tile rows; otherwise copied, zero-padded, into `scratch`.
struct WeightGroup {
  const unsigned char* data;
  std::size_t stride;
};

WeightGroup weight_group(const RowWeights& w, int first, int k_padded,
                         std::vector<std::uint16_t>& scratch) {
  int part = 0, part_first = 0;
  while (first >= part_first + w.part_rows[part]) part_first += w.part_rows[part++];
  if (w.cols == k_padded && first + kTileRows <= part_first + w.part_rows[part]) {
    return {w.data[part] + static_cast<std::size_t>(first - part_first) * w.stride[part],
            w.stride[part]};
  }
  scratch.assign(static_cast<std::size_t>(kTileRows) * k_padded, 0);
  for (int r = 0; r < kTileRows; ++r) {
    const int row = first + r;
    while (part < w.n_parts && row >= part_first + w.part_rows[part]) {
      part_first += w.part_rows[part++];
    }
    if (part == w.n_parts) break;
    std::memcpy(scratch.data() + static_cast<std::size_t>(r) * k_padded,
                w.data[part] + static_cast<std::size_t>(row - part_first) * w.stride[part],
                sizeof(std::uint16_t) * w.cols);
  }
  return {reinterpret_cast<const unsigned char*>(scratch.data()), sizeof(std::uint16_t) * k_padded};
}

// Writes the 16 x 16 sums of weight rows [n0, n0 + 16) and inputs [m0, m0 + 16), transposed,
// for the rows and inputs that exist.
void store_transposed(const float (&sums)[kTileRows][kTileRows], int n0, int rows, int m0, int m,
                      float* out, int out_stride) {
  const int valid_rows = rows - n0 < kTileRows ? rows - n0 : kTileRows;
  const int valid_inputs = m - m0 < kTileRows ? m - m0 : kTileRows;
  for (int j = 0; j < valid_inputs; ++j) {
    float* row = out + static_cast<std::size_t>(m0 + j) * out_stride + n0;
    for (int i = 0; i < valid_rows; ++i) row[i] = sums[i][j];
  }
}

}  // namespace

void matmul_rows_amx(const RowWeights& w, const AmxInput& in, float* out, int out_stride,
                     int row_begin, int row_end) {
  thread_local std::vector<std::uint16_t> scratch[2];
  alignas(64) float sums[4][kTileRows][kTileRows];
  const std::size_t input_stride = sizeof(std::uint32_t) * in.m_padded;
  configure_tiles();
  // Two groups of 16 weight rows at a time, read from memory once and from cache by every
  // pair of input groups.
  for (int n0 = row_begin; n0 < row_end; n0 += 2 * kTileRows) {
    const bool second = n0 + kTileRows < row_end;
    const WeightGroup a0 = weight_group(w, n0, in.k_padded, scratch[0]);
    const WeightGroup a1 = second ? weight_group(w, n0 + kTileRows, in.k_padded, scratch[1]) : a0;
    for (int m0 = 0; m0 < in.m_padded; m0 += 2 * kTileRows) {
      const bool wide = m0 + kTileRows < in.m_padded;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int k0 = 0; k0 < in.k_padded; k0 += kTileInputs) {
        const std::uint32_t* pairs = in.pairs + static_cast<std::size_t>(k0 / 2) * in.m_padded;
        _tile_loadd(4, a0.data + sizeof(std::uint16_t) * k0, a0.stride);
        _tile_loadd(6, pairs + m0, input_stride);
        _tile_dpbf16ps(0, 4, 6);
        if (second) {
          _tile_loadd(5, a1.data + sizeof(std::uint16_t) * k0, a1.stride);
          _tile_dpbf16ps(1, 5, 6);
        }
        if (wide) {
          _tile_loadd(7, pairs + m0 + kTileRows, input_stride);
          _tile_dpbf16ps(2, 4, 7);
          if (second) _tile_dpbf16ps(3, 5, 7);
        }
      }
      _tile_stored(0, sums[0], sizeof(sums[0][0]));
      _tile_stored(1, sums[1], sizeof(sums[0][0]));
      _tile_stored(2, sums[2], sizeof(sums[0][0]));
      _tile_stored(3, sums[3], sizeof(sums[0][0]));
      store_transposed(sums[0], n0, row_end, m0, in.m, out, out_stride);
      if (second) store_transposed(sums[1], n0 + kTileRows, row_end, m0, in.m, out, out_stride);
      if (wide) {
        store_transposed(sums[2], n0, row_end, m0 + kTileRows, in.m, out, out_stride);
        if (second) {
          store_transposed(sums[3], n0 + kTileRows, row_end, m0 + kTileRows, in.m, out, out_stride);
        }
      }
    }
  }
  _tile_release();
}

}  // namespace shardwise::cpu::detail
