#pragma once

namespace shardwise::cpu {

// out = in / sqrt(mean(in^2) + eps) * weight, row by row. out may alias in.
void rms_norm(float* out,           // [n_tokens, hidden]
              const float* in,      // [n_tokens, hidden]
              const float* weight,  // [hidden]
              int n_tokens, int hidden, float eps);

// residual += x; out = rms_norm(residual). The pre-norm transformer's "add then normalise".
void fused_add_rms_norm(float* out,           // [n_tokens, hidden]
                        float* residual,      // [n_tokens, hidden], updated in place
                        const float* x,       // [n_tokens, hidden]
                        const float* weight,  // [hidden]
                        int n_tokens, int hidden, float eps);

}  // namespace shardwise::cpu
