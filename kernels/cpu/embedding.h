#pragma once

#include <cstdint>

namespace shardwise::cpu {

// Gathers embedding rows. Ids must lie in [0, vocab); callers validate them.
void embedding_lookup(float* out,          // [n_tokens, hidden]
                      const float* table,  // [vocab, hidden]
                      const int32_t* ids,  // [n_tokens]
                      int n_tokens, int hidden);

}  // namespace shardwise::cpu
