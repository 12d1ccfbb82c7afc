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
//
// Numerics by type: kF32/kF16 and kBF16 on scalar/AVX2 multiply fp32 inputs by the exact
// weights; kBF16 on AVX-512 rounds the inputs to bf16 first (vdpbf16ps); kInt8 quantises each
// block of 32 inputs to int8 (symmetric, fp32 scale) and sums the products exactly in int32.
void matmul(float* out,       // [m, w.rows()]
            const float* in,  // [m, w.cols()]
            int m, const WeightMatrix& w, CpuIsa isa = best_cpu_isa());

}  // namespace shardwise::cpu
