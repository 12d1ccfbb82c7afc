#pragma once

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/packed_matrix.h"

namespace shardwise::cpu {

// out = in · Wᵀ (PyTorch nn.Linear layout, no bias) for a weight packed at load, with fp32
// accumulation. The OpenMP threads split W's rows: each streams its share of the weights once
// per call, whatever m. Up to 8 input rows (a decode step) take a single pass over each panel
// with all rows' accumulators in registers; more rows are tiled so that each block of weights
// is reused from cache (prefill).
//
// Numerics by type: kF32/kF16 and kBF16 on scalar/AVX2 multiply fp32 inputs by the exact
// weights; kBF16 on AVX-512 rounds the inputs to bf16 first (vdpbf16ps); kInt8 quantises each
// block of 32 inputs to int8 (symmetric, fp32 scale) and sums the products exactly in int32.
void matmul(float* out,       // [m, w.rows()]
            const float* in,  // [m, w.cols()]
            int m, const PackedMatrix& w, CpuIsa isa = best_cpu_isa());

}  // namespace shardwise::cpu
