#include "kernels/cpu/rms_norm.h"

#include <cmath>
#include <cstddef>

namespace shardwise::cpu {
namespace {

void normalize_row(float* out, const float* in, const float* weight, int hidden, float eps) {
  double sum_squares = 0;
  for (int i = 0; i < hidden; ++i) sum_squares += static_cast<double>(in[i]) * in[i];
  const float inv_rms = 1.0f / std::sqrt(static_cast<float>(sum_squares / hidden) + eps);
  for (int i = 0; i < hidden; ++i) out[i] = weight[i] * (in[i] * inv_rms);
}

}  // namespace

void rms_norm(float* out, const float* in, const float* weight, int n_tokens, int hidden,
              float eps) {
#pragma omp parallel for if (n_tokens > 16)
  for (int t = 0; t < n_tokens; ++t) {
    const std::size_t row = static_cast<std::size_t>(t) * hidden;
    normalize_row(out + row, in + row, weight, hidden, eps);
  }
}

void fused_add_rms_norm(float* out, float* residual, const float* x, const float* weight,
                        int n_tokens, int hidden, float eps) {
#pragma omp parallel for if (n_tokens > 16)
  for (int t = 0; t < n_tokens; ++t) {
    const std::size_t row = static_cast<std::size_t>(t) * hidden;
    for (int i = 0; i < hidden; ++i) residual[row + i] += x[row + i];
    normalize_row(out + row, residual + row, weight, hidden, eps);
  }
}

}  // namespace shardwise::cpu
