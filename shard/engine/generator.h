// Generation for one sequence at a time: prefill the prompt, then decode token by token with
// the KV cache. The continuous-batching engine generalises this to many sequences.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/llama_model.h"
#include "shard/engine/sampler.h"
#include "shard/runner/model_runner.h"

namespace shardwise {

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;  // e.g. {1} (BOS)
  int max_new_tokens = 16;          // >= 1
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;  // e.g. the model's EOS ids; empty: never stop early
  int block_size = 16;                  // KV cache block size in tokens
};

struct GenerationResult {
  std::vector<int32_t> token_ids;  // the new tokens only
  std::string finish_reason;       // "stop" (a stop token) or "length" (max_new_tokens)
};

// Called with each new token as soon as it is sampled.
using TokenCallback = std::function<void(int32_t token_id)>;

// Runs on `runner`'s cache (its first blocks); request.block_size is ignored.
StatusOr<GenerationResult> generate(ModelRunner& runner, const GenerationRequest& request,
                                    const TokenCallback& on_token = {});
// Runs on a private cache just large enough for the request.
StatusOr<GenerationResult> generate(LlamaModel& model, const GenerationRequest& request,
                                    const TokenCallback& on_token = {});

// The logits at every prompt position, [prompt length, vocab]: one prefill pass, on the
// runner's first cache blocks or on a private cache just large enough.
StatusOr<std::vector<float>> prompt_logits(ModelRunner& runner,
                                           const std::vector<int32_t>& prompt_ids);
StatusOr<std::vector<float>> prompt_logits(LlamaModel& model,
                                           const std::vector<int32_t>& prompt_ids,
                                           int block_size = 16);

}  // namespace shardwise
