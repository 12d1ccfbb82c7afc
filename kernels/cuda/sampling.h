#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace shardwise::cuda {

// One row's sampling choices (the device-side subset of shard/engine/sampler.h's SamplingParams;
// penalties and logprobs stay on the host path).
struct SamplingRow {
  float temperature = 0.0f;  // 0 (or so small that 1 / it overflows): greedy (argmax, lowest
                             // index on ties)
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  uint64_t seed = 0;         // with `offset`, picks the Philox stream: reproducible per request
  uint64_t offset = 0;       // e.g. the number of tokens the request has sampled so far
};

// Bytes of device workspace launch_sample needs (0 today: one block per row works in shared
// memory; callers still pass a buffer of this size, possibly null).
std::size_t sample_workspace_bytes(int n_rows, int vocab);

// Samples one token per row of logits without copying the logits to the host: greedy rows take
// the argmax; the others draw from softmax(logits / temperature) restricted to the top_k most
// likely tokens, then to tokens of probability >= min_p * max probability, then to the smallest
// set whose (renormalised) probability reaches top_p: the order of shard/engine/sampler.cpp, ties
// going to the lower token id. top_k == 1 is greedy. Philox draws from (seed, offset) alone, so
// a request's tokens do not depend on its row in the batch.
void launch_sample(int32_t* tokens,          // [n_rows] device output
                   const float* logits,      // [n_rows, vocab] device
                   const SamplingRow* rows,  // [n_rows] device
                   int n_rows, int vocab, void* workspace, cudaStream_t stream);

}  // namespace shardwise::cuda
