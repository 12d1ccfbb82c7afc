#pragma once

namespace shardwise::cpu {

// out = silu(gate) * up, where each row of gate_up is [gate (intermediate) | up (intermediate)]:
// the fused gate/up projection's output.
void silu_and_mul(float* out,            // [n_tokens, intermediate]
                  const float* gate_up,  // [n_tokens, 2 * intermediate]
                  int n_tokens, int intermediate);

}  // namespace shardwise::cpu
