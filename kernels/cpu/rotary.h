#pragma once

#include <cstdint>

#include "kernels/rope_params.h"

namespace shardwise::cpu {

// The rotary inverse frequencies as Hugging Face computes them (in fp32), with llama3 scaling
// applied when params.type is kLlama3.
void rope_inv_freq(float* inv_freq,  // [head_dim / 2]
                   int head_dim, const RopeParams& params);

// Rotates q and k in place, "rotate_half" layout: element i pairs with i + head_dim/2.
void apply_rotary(float* q,                  // [n_tokens, n_heads, head_dim]
                  float* k,                  // [n_tokens, n_kv_heads, head_dim]
                  const int32_t* positions,  // [n_tokens]
                  const float* inv_freq,     // [head_dim / 2]
                  int n_tokens, int n_heads, int n_kv_heads, int head_dim);

}  // namespace shardwise::cpu
