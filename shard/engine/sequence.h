// One request inside the engine: its tokens (prompt, then generated), how many of them have
// K/V in the cache, and the cache blocks holding them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "shard/engine/request.h"
#include "shard/engine/sampler.h"

namespace shardwise {

struct Sequence {
  Sequence(RequestId id, Request request)
      : id(id),
        prompt(std::move(request.prompt_ids)),
        params(std::move(request.sampling)),
        sampler(params),
        on_event(std::move(request.on_event)) {}

  int length() const { return static_cast<int>(prompt.size() + output.size()); }
  // Tokens not yet in the cache: the rest of the prompt, or the last sampled token.
  int num_uncomputed() const { return length() - num_computed_tokens; }
  int32_t token_at(int i) const {
    const int n_prompt = static_cast<int>(prompt.size());
    return i < n_prompt ? prompt[i] : output[i - n_prompt];
  }
  // [count] tokens from position `first`.
  std::vector<int32_t> tokens(int first, int count) const {
    std::vector<int32_t> out(count);
    for (int i = 0; i < count; ++i) out[i] = token_at(first + i);
    return out;
  }

  const RequestId id;
  const std::vector<int32_t> prompt;  // [n_prompt]
  std::vector<int32_t> output;        // [n_generated]
  const SamplingParams params;
  // Lives with the sequence (not the step), so a preempted sequence resumes its random stream.
  Sampler sampler;
  const StreamCallback on_event;

  std::vector<int32_t> block_table;    // [ceil(tokens in cache / block_size)] cache block ids
  std::vector<uint64_t> block_hashes;  // [n_full_blocks_committed] prefix-cache key per block
  int num_computed_tokens = 0;         // tokens whose K/V are in the cache
  int num_preemptions = 0;
};

}  // namespace shardwise
