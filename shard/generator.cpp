#include "shard/generator.h"

#include <algorithm>
#include <numeric>

namespace shardwise {
namespace {

// One sequence owning blocks 0..n-1 of a private cache.
struct SingleSequence {
  PagedKvCache cache;
  std::vector<int32_t> block_table;

  SingleSequence(LlamaModel& model, int n_positions, int block_size)
      : cache(model.make_kv_cache((n_positions + block_size - 1) / block_size, block_size)),
        block_table(cache.num_blocks()) {
    std::iota(block_table.begin(), block_table.end(), 0);
  }

  // A batch of tokens at consecutive positions starting at `first_position`.
  ForwardBatch batch(std::span<const int32_t> ids, int first_position, bool all_logits) const {
    ForwardBatch batch;
    batch.block_tables = block_table;
    batch.max_blocks_per_seq = static_cast<int>(block_table.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const int position = first_position + static_cast<int>(i);
      batch.token_ids.push_back(ids[i]);
      batch.positions.push_back(position);
      batch.seq_index.push_back(0);
      batch.slot_mapping.push_back(block_table[position / cache.block_size()] * cache.block_size() +
                                   position % cache.block_size());
      if (all_logits || i + 1 == ids.size()) batch.logit_rows.push_back(static_cast<int32_t>(i));
    }
    return batch;
  }
};

Status validate_request(const LlamaModel& model, const GenerationRequest& request) {
  const int context = model.config().max_position_embeddings;
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
  if (request.sampling.top_k < 0) return invalid_argument("top_k must be >= 0, got {}", request.sampling.top_k);
  const long long needed = static_cast<long long>(request.prompt_ids.size()) + request.max_new_tokens;
  if (needed > context) {
    return out_of_range("prompt ({} tokens) + max_new_tokens ({}) exceeds the context window of {} tokens",
                        request.prompt_ids.size(), request.max_new_tokens, context);
  }
  if (request.block_size < 1) return invalid_argument("block_size must be >= 1");
  return ok_status();
}

}  // namespace

StatusOr<GenerationResult> generate(LlamaModel& model, const GenerationRequest& request,
                                    const TokenCallback& on_token) {
  SW_RETURN_IF_ERROR(validate_request(model, request));
  const int prompt_length = static_cast<int>(request.prompt_ids.size());
  SingleSequence sequence(model, prompt_length + request.max_new_tokens, request.block_size);
  Sampler sampler(request.sampling);

  GenerationResult result{{}, "length"};
  SW_ASSIGN_OR_RETURN(std::vector<float> logits,
                      model.forward(sequence.batch(request.prompt_ids, 0, false), sequence.cache));
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
    SW_ASSIGN_OR_RETURN(logits, model.forward(sequence.batch(ids, prompt_length + step, false),
                                              sequence.cache));
  }
  return result;
}

StatusOr<std::vector<float>> prompt_logits(LlamaModel& model, const std::vector<int32_t>& prompt_ids,
                                           int block_size) {
  if (prompt_ids.empty()) return invalid_argument("the prompt is empty");
  if (static_cast<long long>(prompt_ids.size()) > model.config().max_position_embeddings) {
    return out_of_range("prompt ({} tokens) exceeds the context window of {} tokens",
                        prompt_ids.size(), model.config().max_position_embeddings);
  }
  SingleSequence sequence(model, static_cast<int>(prompt_ids.size()), block_size);
  return model.forward(sequence.batch(prompt_ids, 0, true), sequence.cache);
}

}  // namespace shardwise
