#include "kernels/cpu/embedding.h"

#include <cstring>

namespace shardwise::cpu {

void embedding_lookup(float* out, const float* table, const int32_t* ids, int n_tokens,
                      int hidden) {
  for (int t = 0; t < n_tokens; ++t) {
    std::memcpy(out + static_cast<std::size_t>(t) * hidden,
                table + static_cast<std::size_t>(ids[t]) * hidden, sizeof(float) * hidden);
  }
}

}  // namespace shardwise::cpu
