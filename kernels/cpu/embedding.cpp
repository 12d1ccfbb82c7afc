#include "kernels/cpu/embedding.h"

#include <cstddef>

namespace shardwise::cpu {

void embedding_lookup(float* out, const void* table, DType dtype, const int32_t* ids, int n_tokens,
                      int hidden) {
  const std::size_t row_bytes = static_cast<std::size_t>(hidden) * dtype_size(dtype);
  for (int t = 0; t < n_tokens; ++t) {
    convert_to_f32(
        out + static_cast<std::size_t>(t) * hidden,
        static_cast<const std::byte*>(table) + static_cast<std::size_t>(ids[t]) * row_bytes, dtype,
        hidden);
  }
}

}  // namespace shardwise::cpu
