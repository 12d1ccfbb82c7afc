#include "kernels/cpu/silu_and_mul.h"

#include <cmath>
#include <cstddef>

namespace shardwise::cpu {

void silu_and_mul(float* out, const float* gate_up, int n_tokens, int intermediate) {
#pragma omp parallel for if (n_tokens > 16)
  for (int t = 0; t < n_tokens; ++t) {
    const float* gate = gate_up + static_cast<std::size_t>(t) * 2 * intermediate;
    const float* up = gate + intermediate;
    float* row = out + static_cast<std::size_t>(t) * intermediate;
    for (int i = 0; i < intermediate; ++i) {
      row[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    }
  }
}

}  // namespace shardwise::cpu
