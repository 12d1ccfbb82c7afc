#pragma once

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/weight_matrix.h"

namespace shardwise::cpu {

// out = in · Wᵀ (PyTorch nn.Linear layout, no bias), fp32 accumulation. The OpenMP threads
// split W's rows: each streams its share of the weights once per call, whatever m.
//  - Up to 8 input rows (a decode step) take one pass over the rows with every input's
//    accumulators in registers: row-major weights are read in place, packed ones panel by
//    panel.
//  - More rows are tiled so that each block of weights is reused from cache. Row-major weights
//    are still read in place up to a limit of the instruction set's (64 rows on AVX-512, 16 on
//    AVX2: batched decode, short prompts); past it (prefill) each block is first packed on the
//    fly into the panel layout.
//  - Except that row-major bf16 weights meet 4 or more rows in AMX tiles, read in place, where
//    the CPU has AMX-BF16 (amx_in_use()): at the read bandwidth for batched decode, and 4-6x
//    the AVX-512 kernels' GFLOP/s for prefill.
//
// Numerics by type: kF32/kF16 and kBF16 on scalar/AVX2 multiply fp32 inputs by the exact
// weights; kBF16 on AVX-512 rounds the inputs to bf16 first (vdpbf16ps); kInt8 quantises each
// block of 32 inputs to int8 (symmetric, fp32 scale) and sums the products exactly in int32.
void matmul(float* out,       // [m, w.rows()]
            const float* in,  // [m, w.cols()]
            int m, const WeightMatrix& w, CpuIsa isa = best_cpu_isa());

// Whether matmul uses AMX on AVX-512 (amx_bf16_usable() and allowed; allowed unless
// allow_amx(false)): tests and benchmarks turn it off to reach the AVX-512 kernels it replaces.
bool amx_in_use();
void allow_amx(bool allowed);

}  // namespace shardwise::cpu
