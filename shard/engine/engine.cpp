#include "shard/engine/engine.h"

#include <algorithm>

#include "common/check.h"

namespace shardwise {

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "unknown";
}

Engine::Engine(ModelRunner& runner, EngineOptions options)
    : runner_(runner),
      blocks_(runner.num_kv_blocks(), runner.block_size(), options.enable_prefix_caching),
      scheduler_(blocks_, options.scheduler) {}

Status Engine::validate(const Request& request) const {
  const LlamaConfig& config = runner_.config();
  if (request.prompt_ids.empty()) return invalid_argument("the prompt is empty");
  for (std::size_t i = 0; i < request.prompt_ids.size(); ++i) {
    const int32_t id = request.prompt_ids[i];
    if (id < 0 || id >= config.vocab_size) {
      return invalid_argument("prompt token id {} (at index {}) is outside the vocabulary [0, {})",
                              id, i, config.vocab_size);
    }
  }
  const long long prompt = static_cast<long long>(request.prompt_ids.size());
  if (request.pooling != Pooling::kNone) return validate_embedding(prompt);
  SW_RETURN_IF_ERROR(validate_sampling_params(request.sampling));
  for (const auto& [token, bias] : request.sampling.logit_bias) {
    if (token < 0 || token >= config.vocab_size) {
      return invalid_argument("logit_bias token id {} is outside the vocabulary [0, {})", token,
                              config.vocab_size);
    }
  }
  const int context = config.max_position_embeddings;
  if (prompt >= context) {
    return out_of_range("the prompt ({} tokens) leaves no room in the context window of {} tokens",
                        prompt, context);
  }
  const long long total = prompt + request.sampling.max_tokens;
  if (total > context) {
    return out_of_range(
        "prompt ({} tokens) + max_tokens ({}) exceeds the context window of {} tokens", prompt,
        request.sampling.max_tokens, context);
  }
  // The last generated token is never fed back, so it needs no cache slot.
  const long long cache_tokens =
      static_cast<long long>(blocks_.num_blocks()) * blocks_.block_size();
  if (total - 1 > cache_tokens) {
    return out_of_range(
        "prompt ({} tokens) + max_tokens ({}) needs more KV cache than the whole cache holds ({} "
        "blocks of {} tokens)",
        prompt, request.sampling.max_tokens, blocks_.num_blocks(), blocks_.block_size());
  }
  return ok_status();
}

Status Engine::validate_embedding(long long prompt) const {
  const int context = runner_.config().max_position_embeddings;
  if (prompt > context) {
    return out_of_range("the input ({} tokens) exceeds the context window of {} tokens", prompt,
                        context);
  }
  const long long cache_tokens =
      static_cast<long long>(blocks_.num_blocks()) * blocks_.block_size();
  if (prompt > cache_tokens) {
    return out_of_range("the input ({} tokens) needs more KV cache than the whole cache holds",
                        prompt);
  }
  return ok_status();
}

StatusOr<RequestId> Engine::add_request(Request request) {
  SW_RETURN_IF_ERROR(validate(request));
  // One rule for the host and the device samplers: the device one sees only 0 for greedy.
  if (request.sampling.temperature < kGreedyTemperature) request.sampling.temperature = 0.0f;
  const RequestId id = next_id_++;
  auto seq = std::make_unique<Sequence>(id, std::move(request));
  scheduler_.add(seq.get());
  sequences_.emplace(id, std::move(seq));
  return id;
}

bool Engine::cancel(RequestId id) {
  if (!sequences_.contains(id)) return false;
  cancel_requests_.insert(id);
  return true;
}

void Engine::finish(Sequence* seq, StreamEvent event, FinishReason reason) {
  scheduler_.remove(seq);
  cancel_requests_.erase(seq->id);
  event.request_id = seq->id;
  event.finish_reason = reason;
  // Keep the sequence alive through the callback; it may add or cancel requests.
  auto owned = std::move(sequences_.at(seq->id));
  sequences_.erase(seq->id);
  if (owned->on_event) owned->on_event(event);
}

Status Engine::step() {
  for (RequestId id : std::vector<RequestId>(cancel_requests_.begin(), cancel_requests_.end())) {
    if (auto it = sequences_.find(id); it != sequences_.end()) {
      finish(it->second.get(), {}, FinishReason::kCancelled);
    }
  }
  cancel_requests_.clear();

  const SchedulerOutput plan = scheduler_.schedule();
  stats_.preemptions += static_cast<int64_t>(plan.preempted.size());
  if (plan.chunks.empty()) return ok_status();
  note_first_scheduled(plan);
  auto sampled = run_and_sample(plan, build_batch(plan));
  if (!sampled.ok()) {
    StreamEvent error_event;
    error_event.error = sampled.status().to_string();
    for (const auto& chunk : plan.chunks) finish(chunk.seq, error_event, FinishReason::kError);
    return sampled.status();
  }
  ++stats_.steps;
  stats_.scheduled_tokens += plan.n_tokens;
  for (const auto& chunk : plan.chunks) {
    const int prompt = static_cast<int>(chunk.seq->prompt.size());
    stats_.prefill_tokens +=
        std::max(0, std::min(chunk.first_position + chunk.n_tokens, prompt) - chunk.first_position);
  }
  scheduler_.complete(plan);
  stream(plan, std::move(sampled).value());
  return ok_status();
}

std::pair<int, int> Engine::prompt_logprob_positions(const ScheduledChunk& chunk) {
  const Sequence& seq = *chunk.seq;
  if (!seq.params.prompt_logprobs || seq.prompt_logprobs_sent) return {0, 0};
  const int last = static_cast<int>(seq.prompt.size()) - 1;  // its row predicts no prompt token
  const int begin = std::min(chunk.first_position, last);
  return {begin, std::clamp(chunk.first_position + chunk.n_tokens, begin, last)};
}

StatusOr<std::vector<SampledToken>> Engine::run_and_sample(const SchedulerOutput& plan,
                                                           const ForwardBatch& batch) {
  std::vector<SampledToken> sampled;
  bool on_device = runner_.samples_on_device() && batch.hidden_rows.empty();
  std::vector<RowSampling> rows;
  for (const auto& chunk : plan.chunks) {
    if (!chunk.samples || chunk.seq->is_embedding()) continue;
    const SamplingParams& p = chunk.seq->params;
    on_device = on_device && device_samplable(p);
    rows.push_back({p.temperature, p.top_k, p.top_p, p.min_p, p.seed, chunk.seq->output.size()});
  }
  // Prompt log-probabilities add rows the device sampler would not know from sampled ones.
  on_device = on_device && batch.logit_rows.size() == rows.size();
  if (on_device) {
    SW_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, runner_.execute_and_sample(batch, rows));
    SW_CHECK(tokens.size() == rows.size());
    ++stats_.device_sampled_steps;
    for (int32_t token : tokens) sampled.push_back({token, std::nullopt});
    return sampled;
  }
  SW_ASSIGN_OR_RETURN(std::vector<float> out, runner_.execute(batch));
  const std::size_t vocab = runner_.config().vocab_size;
  const std::size_t hidden = runner_.config().hidden_size;
  SW_CHECK(out.size() == batch.logit_rows.size() * vocab + batch.hidden_rows.size() * hidden);
  const float* row = out.data();
  const float* hidden_row = out.data() + batch.logit_rows.size() * vocab;
  for (const auto& chunk : plan.chunks) {
    Sequence* seq = chunk.seq;
    const auto [begin, end] = prompt_logprob_positions(chunk);
    if (begin < end) seq->prompt_logprobs.resize(seq->prompt.size() - 1);
    for (int position = begin; position < end; ++position, row += vocab) {
      seq->prompt_logprobs[position] =
          token_logprobs(std::span<const float>(row, vocab), seq->prompt[position + 1],
                         *seq->params.prompt_logprobs);
    }
    if (seq->is_embedding()) {
      hidden_row = pool(chunk, hidden_row);
      continue;
    }
    if (!chunk.samples) continue;
    sampled.push_back(
        seq->sampler.sample(std::span<const float>(row, vocab), seq->prompt, seq->output));
    row += vocab;
  }
  return sampled;
}

const float* Engine::pool(const ScheduledChunk& chunk, const float* hidden_rows) {
  Sequence& seq = *chunk.seq;
  const std::size_t hidden = runner_.config().hidden_size;
  // Last pooling may start after a cached prefix; mean pooling always starts at 0.
  if (chunk.first_position == 0 || seq.hidden_sum.empty()) seq.hidden_sum.assign(hidden, 0.0);
  const int n_rows = seq.pooling == Pooling::kMean ? chunk.n_tokens : chunk.samples ? 1 : 0;
  for (int r = 0; r < n_rows; ++r, hidden_rows += hidden) {
    for (std::size_t i = 0; i < hidden; ++i) {
      seq.hidden_sum[i] = seq.pooling == Pooling::kMean ? seq.hidden_sum[i] + hidden_rows[i]
                                                        : static_cast<double>(hidden_rows[i]);
    }
  }
  return hidden_rows;
}

ForwardBatch Engine::build_batch(const SchedulerOutput& plan) const {
  const int block_size = blocks_.block_size();
  ForwardBatch batch;
  for (const auto& chunk : plan.chunks) {
    batch.max_blocks_per_seq =
        std::max(batch.max_blocks_per_seq, static_cast<int>(chunk.seq->block_table.size()));
  }
  // Rows are padded with block 0: entries past a sequence's last block are never read.
  batch.block_tables.assign(plan.chunks.size() * batch.max_blocks_per_seq, 0);
  for (std::size_t s = 0; s < plan.chunks.size(); ++s) {
    const ScheduledChunk& chunk = plan.chunks[s];
    const Sequence& seq = *chunk.seq;
    const std::vector<int32_t>& table = seq.block_table;
    std::copy(table.begin(), table.end(),
              batch.block_tables.begin() + s * batch.max_blocks_per_seq);
    const int first_row = batch.n_tokens();
    for (int position = chunk.first_position; position < chunk.first_position + chunk.n_tokens;
         ++position) {
      batch.token_ids.push_back(seq.token_at(position));
      batch.positions.push_back(position);
      batch.seq_index.push_back(static_cast<int32_t>(s));
      batch.slot_mapping.push_back(table[position / block_size] * block_size +
                                   position % block_size);
    }
    // Rows in the order run_and_sample reads them: prompt log-probabilities, then the sample.
    const auto [begin, end] = prompt_logprob_positions(chunk);
    for (int position = begin; position < end; ++position) {
      batch.logit_rows.push_back(first_row + position - chunk.first_position);
    }
    if (seq.pooling == Pooling::kMean) {
      for (int t = first_row; t < batch.n_tokens(); ++t) batch.hidden_rows.push_back(t);
    } else if (chunk.samples && seq.is_embedding()) {
      batch.hidden_rows.push_back(batch.n_tokens() - 1);
    } else if (chunk.samples) {
      batch.logit_rows.push_back(batch.n_tokens() - 1);
    }
  }
  return batch;
}

bool Engine::is_stop_token(const Sequence& seq, int32_t token) const {
  const auto& stops = seq.params.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) return true;
  const auto& eos = runner_.config().eos_token_ids;
  return !seq.params.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end();
}

void Engine::note_first_scheduled(const SchedulerOutput& plan) {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& chunk : plan.chunks) {
    Sequence& seq = *chunk.seq;
    if (seq.first_scheduled) continue;
    seq.first_scheduled = now;
    stats_.queue_time.observe(std::chrono::duration<double>(now - seq.arrival).count());
  }
}

void Engine::stream(const SchedulerOutput& plan, std::vector<SampledToken> tokens) {
  const auto now = std::chrono::steady_clock::now();
  std::size_t row = 0;
  for (const auto& chunk : plan.chunks) {
    if (!chunk.samples) continue;
    Sequence* seq = chunk.seq;
    StreamEvent event;
    event.request_id = seq->id;
    if (seq->is_embedding()) {
      const double scale = seq->pooling == Pooling::kMean ? 1.0 / seq->prompt.size() : 1.0;
      for (double sum : seq->hidden_sum) event.embedding.push_back(static_cast<float>(sum * scale));
      finish(seq, std::move(event), FinishReason::kStop);
      continue;
    }
    SampledToken& sampled = tokens[row++];
    if (seq->output.empty() && seq->first_scheduled) {
      stats_.prefill_time.observe(
          std::chrono::duration<double>(now - *seq->first_scheduled).count());
    }
    seq->output.push_back(sampled.token);
    ++stats_.generated_tokens;
    event.token = sampled.token;
    event.logprobs = std::move(sampled.logprobs);
    if (seq->params.prompt_logprobs && !seq->prompt_logprobs_sent) {
      event.prompt_logprobs = std::move(seq->prompt_logprobs);
      seq->prompt_logprobs_sent = true;
    }
    if (is_stop_token(*seq, sampled.token)) {
      finish(seq, std::move(event), FinishReason::kStop);
    } else if (static_cast<int>(seq->output.size()) >= seq->params.max_tokens) {
      finish(seq, std::move(event), FinishReason::kLength);
    } else if (seq->on_event) {
      seq->on_event(event);
    }
  }
  SW_CHECK(row == tokens.size());
}

}  // namespace shardwise
