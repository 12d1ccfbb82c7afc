// Internal to the vector matmul files (matmul_panels_avx2.cpp, matmul_panels_avx512.cpp): the
// loop over panels, input-row tiles and input blocks that drives their register tiles. It is
// included by each of them and compiled with that file's instruction set, so everything here
// has internal linkage (no shared out-of-line copy built for the wrong CPU).
#pragma once

#include "kernels/cpu/matmul_panels.h"

namespace shardwise::cpu::detail {
namespace {

constexpr int kPanelRows = 16;
constexpr int kPanelGroup = 4;
// Inputs per cache block when several row tiles reuse the same panels (prefill): 4 panels x
// 512 inputs are 32-128 KiB, which stay in L2 between tiles.
constexpr int kInputBlock = 512;

inline int min_int(int a, int b) { return a < b ? a : b; }

// What one register tile gets: panels [panel, panel + NP), input rows [row0, row0 + MR),
// inputs [k0, k1), written to (or, after the first input block, added to) out.
struct TileArgs {
  const PanelWeights& w;
  const PanelInput& in;
  int panel;
  int row0;
  int k0;
  int k1;
  float* out;
  int out_stride;
  bool accumulate;

  const unsigned char* panel_data(int p) const {
    return w.data + static_cast<std::size_t>(panel + p) * w.panel_bytes;
  }
  float* out_at(int i, int p) const {
    return out + static_cast<std::size_t>(row0 + i) * out_stride + (panel + p) * kPanelRows;
  }
  // Output columns of panel p that exist (the matrix's rows past w.rows are padding).
  int valid(int p) const { return w.rows - (panel + p) * kPanelRows; }
};

// Kernel: a struct with kMaxRows (input rows per tile), panels(rows) (panels per register
// tile, a divisor of kPanelGroup) and template <int MR, int NP> static void block(TileArgs,
// int first), the register tile of MR rows x panels [first, first + NP) of the group.
template <class Kernel, int MR>
void tile_group(const TileArgs& args) {
  if constexpr (MR > 1) {
    if (args.in.m - args.row0 < MR) return tile_group<Kernel, MR - 1>(args);
  }
  constexpr int NP = Kernel::panels(MR);
  for (int first = 0; first < kPanelGroup; first += NP) Kernel::template block<MR, NP>(args, first);
}

template <class Kernel>
void run_panels(const PanelWeights& w, const PanelInput& in, float* out, int out_stride,
                int panel_begin, int panel_end, bool accumulate) {
  constexpr int kMaxRows = Kernel::kMaxRows;
  // One row tile: stream each panel once over all inputs. Several: block the inputs so that
  // the later tiles find the panels' block in cache.
  const bool one_tile = in.m <= kMaxRows;
  const int block = one_tile ? w.k_padded : kInputBlock;
  for (int panel = panel_begin; panel < panel_end; panel += kPanelGroup) {
    for (int k0 = 0; k0 < w.k_padded; k0 += block) {
      const int k1 = min_int(k0 + block, w.k_padded);
      for (int row0 = 0; row0 < in.m; row0 += kMaxRows) {
        tile_group<Kernel, kMaxRows>(
            TileArgs{w, in, panel, row0, k0, k1, out, out_stride, accumulate || k0 > 0});
      }
    }
  }
}

// The entry point of an instruction set's file: its kernel for each weight type.
template <class F32Kernel, class F16Kernel, class Bf16Kernel, class Int8Kernel>
void run_panels_of_type(const PanelWeights& w, const PanelInput& input, float* out, int out_stride,
                        int panel_begin, int panel_end, bool accumulate) {
  switch (w.type) {
    case WeightType::kF32:
      return run_panels<F32Kernel>(w, input, out, out_stride, panel_begin, panel_end, accumulate);
    case WeightType::kF16:
      return run_panels<F16Kernel>(w, input, out, out_stride, panel_begin, panel_end, accumulate);
    case WeightType::kBF16:
      return run_panels<Bf16Kernel>(w, input, out, out_stride, panel_begin, panel_end, accumulate);
    case WeightType::kInt8:
      return run_panels<Int8Kernel>(w, input, out, out_stride, panel_begin, panel_end, accumulate);
  }
}

}  // namespace
}  // namespace shardwise::cpu::detail
