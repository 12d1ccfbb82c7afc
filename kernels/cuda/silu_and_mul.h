#pragma once

#include <cuda_runtime.h>

namespace shardwise::cuda {

// out = silu(gate) * up per row of gate_up = [gate (intermediate) | up (intermediate)], in fp32,
// rounded once to T (float, __nv_bfloat16 or __half). As cpu::silu_and_mul.
template <typename T>
void launch_silu_and_mul(T* out,            // [n_tokens, intermediate]
                         const T* gate_up,  // [n_tokens, 2 * intermediate]
                         int n_tokens, int intermediate, cudaStream_t stream);

}  // namespace shardwise::cuda
