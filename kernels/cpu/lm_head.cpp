#include "kernels/cpu/lm_head.h"

#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/cpu/linear.h"

namespace shardwise::cpu {

void lm_head(float* logits, const float* hidden, const int32_t* rows, const float* weight,
             int n_rows, int vocab, int hidden_size) {
  std::vector<float> gathered(static_cast<std::size_t>(n_rows) * hidden_size);
  for (int r = 0; r < n_rows; ++r) {
    std::memcpy(gathered.data() + static_cast<std::size_t>(r) * hidden_size,
                hidden + static_cast<std::size_t>(rows[r]) * hidden_size,
                sizeof(float) * hidden_size);
  }
  linear(logits, gathered.data(), weight, n_rows, vocab, hidden_size);
}

}  // namespace shardwise::cpu
