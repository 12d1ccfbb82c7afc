#include "shard/engine/generator.h"

#include <algorithm>
#include <numeric>

namespace shardwise {
namespace {

// A batch of one sequence's tokens at consecutive positions starting at `first_position`,
// the sequence owning cache blocks 0, 1, 2, ... in order, so a position's slot is itself.
ForwardBatch sequence_batch(std::span<const int32_t> ids, int first_position, int n_blocks,
                            bool all_logits) {
  ForwardBatch batch;
  batch.block_tables.resize(n_blocks);
  std::iota(batch.block_tables.begin(), batch.block_tables.end(), 0);
  batch.max_blocks_per_seq = n_blocks;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const int position = first_position + static_cast<int>(i);
    batch.token_ids.push_back(ids[i]);
    batch.positions.push_back(position);
    batch.seq_index.push_back(0);
    batch.slot_mapping.push_back(position);
    if (all_logits || i + 1 == ids.size()) batch.logit_rows.push_back(static_cast<int32_t>(i));
  }
  return batch;
}

Status validate_request(const LlamaConfig& config, const GenerationRequest& request) {
  const int context = config.max_position_embeddings;
  if (request.prompt_ids.empty()) return invalid_argument("the prompt is empty");
  if (request.max_new_tokens < 1) {
    return invalid_argument("max_new_tokens must be at least 1, got {}", request.max_new_tokens);
  }
  if (request.sampling.temperature < 0) {
    return invalid_argument("temperature must be >= 0, got {}", request.sampling.temperature);
  }
  if (!(request.sampling.top_p > 0 && request.sampling.top_p <= 1)) {
    return invalid_argument("top_p must be in (0, 1], got {}", request.sampling.top_p);
  }
  if (request.sampling.top_k < 0)
    return invalid_argument("top_k must be >= 0, got {}", request.sampling.top_k);
  const long long needed =
      static_cast<long long>(request.prompt_ids.size()) + request.max_new_tokens;
  if (needed > context) {
    return out_of_range(
        "prompt ({} tokens) + max_new_tokens ({}) exceeds the context window of {} tokens",
        request.prompt_ids.size(), request.max_new_tokens, context);
  }
  if (request.block_size < 1) return invalid_argument("block_size must be >= 1");
  return ok_status();
}

}  // namespace

StatusOr<GenerationResult> generate(ModelRunner& runner, const GenerationRequest& request,
                                    const TokenCallback& on_token) {
  SW_RETURN_IF_ERROR(validate_request(runner.config(), request));
  const int prompt_length = static_cast<int>(request.prompt_ids.size());
  const int n_blocks =
      kv_blocks_for_tokens(prompt_length + request.max_new_tokens, runner.block_size());
  if (n_blocks > runner.num_kv_blocks()) {
    return resource_exhausted("the request needs {} KV cache blocks, the cache has {}", n_blocks,
                              runner.num_kv_blocks());
  }
  auto batch = [&](std::span<const int32_t> ids, int first_position) {
    return sequence_batch(ids, first_position, n_blocks, false);
  };
  Sampler sampler(request.sampling);
  GenerationResult result{{}, "length"};
  SW_ASSIGN_OR_RETURN(std::vector<float> logits, runner.execute(batch(request.prompt_ids, 0)));
  for (int step = 0; step < request.max_new_tokens; ++step) {
    const int32_t token = sampler.sample(logits);
    result.token_ids.push_back(token);
    if (on_token) on_token(token);
    if (std::find(request.stop_token_ids.begin(), request.stop_token_ids.end(), token) !=
        request.stop_token_ids.end()) {
      result.finish_reason = "stop";
      break;
    }
    if (step + 1 == request.max_new_tokens) break;
    const int32_t ids[] = {token};
    SW_ASSIGN_OR_RETURN(logits, runner.execute(batch(ids, prompt_length + step)));
  }
  return result;
}

StatusOr<GenerationResult> generate(LlamaModel& model, const GenerationRequest& request,
                                    const TokenCallback& on_token) {
  SW_RETURN_IF_ERROR(validate_request(model.config(), request));
  const int n_positions = static_cast<int>(request.prompt_ids.size()) + request.max_new_tokens;
  LocalModelRunner runner(model, kv_blocks_for_tokens(n_positions, request.block_size),
                          request.block_size);
  return generate(runner, request, on_token);
}

StatusOr<std::vector<float>> prompt_logits(ModelRunner& runner,
                                           const std::vector<int32_t>& prompt_ids) {
  if (prompt_ids.empty()) return invalid_argument("the prompt is empty");
  if (static_cast<long long>(prompt_ids.size()) > runner.config().max_position_embeddings) {
    return out_of_range("prompt ({} tokens) exceeds the context window of {} tokens",
                        prompt_ids.size(), runner.config().max_position_embeddings);
  }
  const int n_blocks =
      kv_blocks_for_tokens(static_cast<int>(prompt_ids.size()), runner.block_size());
  if (n_blocks > runner.num_kv_blocks()) {
    return resource_exhausted("the prompt needs {} KV cache blocks, the cache has {}", n_blocks,
                              runner.num_kv_blocks());
  }
  return runner.execute(sequence_batch(prompt_ids, 0, n_blocks, true));
}

StatusOr<std::vector<float>> prompt_logits(LlamaModel& model,
                                           const std::vector<int32_t>& prompt_ids, int block_size) {
  // No larger than a context window: a longer prompt is refused before it runs.
  const int context_blocks =
      kv_blocks_for_tokens(model.config().max_position_embeddings, block_size);
  const int n_blocks = kv_blocks_for_tokens(static_cast<int>(prompt_ids.size()), block_size);
  LocalModelRunner runner(model, std::clamp(n_blocks, 1, context_blocks), block_size);
  return prompt_logits(runner, prompt_ids);
}

}  // namespace shardwise
