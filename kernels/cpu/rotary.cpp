#include "kernels/cpu/rotary.h"

#include <cmath>
#include <cstddef>
#include <numbers>
#include <vector>

namespace shardwise::cpu {

void rope_inv_freq(float* inv_freq, int head_dim, const RopeParams& params) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[i] = 1.0f / std::pow(params.theta, exponent);
  }
  if (params.type != RopeType::kLlama3) return;
  // Llama 3.1 "llama3" scaling: long wavelengths are slowed by `factor`, short ones kept,
  // and the band between is interpolated smoothly.
  const float old_context = static_cast<float>(params.original_max_position_embeddings);
  const float low_freq_wavelen = old_context / params.low_freq_factor;
  const float high_freq_wavelen = old_context / params.high_freq_factor;
  for (int i = 0; i < half; ++i) {
    const float freq = inv_freq[i];
    const float wavelen = 2.0f * std::numbers::pi_v<float> / freq;
    if (wavelen > low_freq_wavelen) {
      inv_freq[i] = freq / params.factor;
    } else if (wavelen >= high_freq_wavelen) {
      const float smooth = (old_context / wavelen - params.low_freq_factor) /
                           (params.high_freq_factor - params.low_freq_factor);
      inv_freq[i] = (1.0f - smooth) * freq / params.factor + smooth * freq;
    }
  }
}

namespace {

void rotate_heads(float* x, int n_heads, int head_dim, const float* cos, const float* sin) {
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* head = x + static_cast<std::size_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      const float x1 = head[i];
      const float x2 = head[i + half];
      head[i] = x1 * cos[i] - x2 * sin[i];
      head[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

}  // namespace

void apply_rotary(float* q, float* k, const int32_t* positions, const float* inv_freq, int n_tokens,
                  int n_heads, int n_kv_heads, int head_dim) {
  const int half = head_dim / 2;
#pragma omp parallel for if (n_tokens > 16)
  for (int t = 0; t < n_tokens; ++t) {
    std::vector<float> cos(half), sin(half);
    for (int i = 0; i < half; ++i) {
      // fp32 angle, as transformers computes position * inv_freq in fp32.
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];
      cos[i] = std::cos(angle);
      sin[i] = std::sin(angle);
    }
    rotate_heads(q + static_cast<std::size_t>(t) * n_heads * head_dim, n_heads, head_dim,
                 cos.data(), sin.data());
    rotate_heads(k + static_cast<std::size_t>(t) * n_kv_heads * head_dim, n_kv_heads, head_dim,
                 cos.data(), sin.data());
  }
}

}  // namespace shardwise::cpu
