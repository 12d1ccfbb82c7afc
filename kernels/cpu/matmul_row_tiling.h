// Internal to the vector kernels for row-major weights (matmul_rows_avx2.cpp, _avx512.cpp):
// the loop over the matrix's parts and rows and the input rows that drives their register
// tiles. Compiled into each of them with its instruction set, so it has internal linkage.
#pragma once

#include "kernels/cpu/matmul_panels.h"

namespace shardwise::cpu::detail {
namespace {

// One register tile: NR consecutive weight rows (`rows[r]`, output column n0 + r) against MR
// input rows from row0.
struct RowTileArgs {
  const RowWeights& w;
  const PanelInput& in;
  const unsigned char* const* rows;
  int n0;
  int row0;
  float* out;
  int out_stride;

  float* out_at(int i, int r) const {
    return out + static_cast<std::size_t>(row0 + i) * out_stride + n0 + r;
  }
};

// Kernel: a struct with rows_for(MR) (weight rows per tile) and template <int MR, int NR>
// static void block(const RowTileArgs&).
template <class Kernel, int MR>
void row_tiles(const RowWeights& w, const PanelInput& in, int part, int first_row, int begin,
               int end, int row0, float* out, int out_stride) {
  if constexpr (MR > 1) {
    if (in.m - row0 < MR) {
      return row_tiles<Kernel, MR - 1>(w, in, part, first_row, begin, end, row0, out, out_stride);
    }
  }
  constexpr int NR = Kernel::rows_for(MR);
  const unsigned char* rows[NR];
  auto row_pointer = [&](int n) {
    return w.data[part] + static_cast<std::size_t>(n - first_row) * w.stride[part];
  };
  int n = begin;
  for (; n + NR <= end; n += NR) {
    for (int r = 0; r < NR; ++r) rows[r] = row_pointer(n + r);
    Kernel::template block<MR, NR>(RowTileArgs{w, in, rows, n, row0, out, out_stride});
  }
  for (; n < end; ++n) {
    rows[0] = row_pointer(n);
    Kernel::template block<MR, 1>(RowTileArgs{w, in, rows, n, row0, out, out_stride});
  }
}

// Weight rows per cache block when several input tiles read them (more than kMaxRowInputs
// inputs): about 256 KiB, which the later tiles find in L2, so that memory is read once.
constexpr std::size_t kRowBlockBytes = std::size_t{256} << 10;

template <class Kernel>
void run_rows(const RowWeights& w, const PanelInput& in, float* out, int out_stride, int row_begin,
              int row_end) {
  int first = 0;  // the part's first row in the matrix
  for (int part = 0; part < w.n_parts; first += w.part_rows[part], ++part) {
    const int begin = row_begin > first ? row_begin : first;
    const int end = row_end < first + w.part_rows[part] ? row_end : first + w.part_rows[part];
    if (begin >= end) continue;
    // A multiple of 8 rows, the widest tile, so that blocks leave no single-row tails.
    const std::size_t fit = kRowBlockBytes / w.stride[part] / 8 * 8;
    const int block = in.m <= kMaxRowInputs ? end - begin : fit < 8 ? 8 : static_cast<int>(fit);
    for (int block_begin = begin; block_begin < end; block_begin += block) {
      const int block_end = end - block_begin < block ? end : block_begin + block;
      for (int row0 = 0; row0 < in.m; row0 += kMaxRowInputs) {
        row_tiles<Kernel, kMaxRowInputs>(w, in, part, first, block_begin, block_end, row0, out,
                                         out_stride);
      }
    }
  }
}

}  // namespace
}  // namespace shardwise::cpu::detail
