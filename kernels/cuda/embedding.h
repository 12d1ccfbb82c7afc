#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace shardwise::cuda {

// Gathers embedding rows: out[t] = table[ids[t]]. Ids must lie in [0, vocab) (the model
// validates them on the host); T is float, __nv_bfloat16 or __half.
template <typename T>
void launch_embedding(T* out,              // [n_tokens, hidden]
                      const T* table,      // [vocab, hidden]
                      const int32_t* ids,  // [n_tokens]
                      int n_tokens, int hidden, cudaStream_t stream);

}  // namespace shardwise::cuda
