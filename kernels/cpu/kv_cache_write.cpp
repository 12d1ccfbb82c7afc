#include "kernels/cpu/kv_cache_write.h"

#include <cstddef>
#include <cstring>

#include "common/dtype.h"

namespace shardwise::cpu {

void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v,
                    const int32_t* slot_mapping, int n_tokens, int n_kv_heads, int head_dim) {
  const std::size_t row = static_cast<std::size_t>(n_kv_heads) * head_dim;
  for (int t = 0; t < n_tokens; ++t) {
    if (slot_mapping[t] < 0) continue;
    const std::size_t slot = static_cast<std::size_t>(slot_mapping[t]);
    std::memcpy(k_cache + slot * row, k + t * row, sizeof(float) * row);
    std::memcpy(v_cache + slot * row, v + t * row, sizeof(float) * row);
  }
}

void kv_cache_write(uint16_t* k_cache, uint16_t* v_cache, const float* k, const float* v,
                    const int32_t* slot_mapping, int n_tokens, int n_kv_heads, int head_dim) {
  const std::size_t row = static_cast<std::size_t>(n_kv_heads) * head_dim;
  for (int t = 0; t < n_tokens; ++t) {
    if (slot_mapping[t] < 0) continue;
    const std::size_t slot = static_cast<std::size_t>(slot_mapping[t]);
    for (std::size_t i = 0; i < row; ++i) {
      k_cache[slot * row + i] = f32_to_bf16(k[t * row + i]);
      v_cache[slot * row + i] = f32_to_bf16(v[t * row + i]);
    }
  }
}

}  // namespace shardwise::cpu
