#include "kernels/cpu/paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace shardwise::cpu {

void paged_attention(float* out, const float* q, const float* k_cache, const float* v_cache,
                     const int32_t* block_tables, const int32_t* seq_index,
                     const int32_t* context_lens, int n_tokens, int n_heads, int n_kv_heads,
                     int head_dim, int block_size, int max_blocks_per_seq, float scale) {
  const int group = n_heads / n_kv_heads;
  const std::size_t slot_stride = static_cast<std::size_t>(n_kv_heads) * head_dim;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int t = 0; t < n_tokens; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      const int context = context_lens[t];
      const int32_t* table =
          block_tables + static_cast<std::size_t>(seq_index[t]) * max_blocks_per_seq;
      const float* query = q + (static_cast<std::size_t>(t) * n_heads + h) * head_dim;
      const std::size_t head_offset = static_cast<std::size_t>(h / group) * head_dim;
      auto slot_of = [&](int pos) {
        return static_cast<std::size_t>(table[pos / block_size]) * block_size + pos % block_size;
      };

      std::vector<float> scores(context);
      float max_score = -INFINITY;
      for (int pos = 0; pos < context; ++pos) {
        const float* key = k_cache + slot_of(pos) * slot_stride + head_offset;
        float dot = 0;
        for (int d = 0; d < head_dim; ++d) dot += query[d] * key[d];
        scores[pos] = dot * scale;
        max_score = std::max(max_score, scores[pos]);
      }
      float denominator = 0;
      for (int pos = 0; pos < context; ++pos) {
        scores[pos] = std::exp(scores[pos] - max_score);
        denominator += scores[pos];
      }
      float* result = out + (static_cast<std::size_t>(t) * n_heads + h) * head_dim;
      std::fill(result, result + head_dim, 0.0f);
      for (int pos = 0; pos < context; ++pos) {
        const float* value = v_cache + slot_of(pos) * slot_stride + head_offset;
        const float weight = scores[pos] / denominator;
        for (int d = 0; d < head_dim; ++d) result[d] += weight * value[d];
      }
    }
  }
}

}  // namespace shardwise::cpu
