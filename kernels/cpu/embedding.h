#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace shardwise::cpu {

// Gathers embedding rows, widened to fp32 from the table's stored type (a mmapped checkpoint
// tensor: rows need not be aligned). Ids must lie in [0, vocab); callers validate them.
void embedding_lookup(float* out,         // [n_tokens, hidden]
                      const void* table,  // [vocab, hidden] of `dtype`
                      DType dtype,
                      const int32_t* ids,  // [n_tokens]
                      int n_tokens, int hidden);

}  // namespace shardwise::cpu
