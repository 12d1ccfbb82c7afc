#pragma once

namespace shardwise::cpu {

// out = in · weightᵀ (PyTorch nn.Linear layout, no bias), through OpenBLAS sgemm.
void linear(float* out,           // [n_tokens, out_features]
            const float* in,      // [n_tokens, in_features]
            const float* weight,  // [out_features, in_features]
            int n_tokens, int out_features, int in_features);

}  // namespace shardwise::cpu
