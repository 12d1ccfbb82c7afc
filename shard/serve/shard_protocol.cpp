#include "shard/serve/shard_protocol.h"

namespace shardwise {

Request to_request(const v1::ShardGenerateRequest& in) {
  Request request;
  request.prompt_ids.assign(in.prompt_ids().begin(), in.prompt_ids().end());
  if (in.pooling() == v1::SHARD_POOLING_MEAN || in.pooling() == v1::SHARD_POOLING_LAST) {
    request.pooling = in.pooling() == v1::SHARD_POOLING_MEAN ? Pooling::kMean : Pooling::kLast;
    return request;  // an embedding request: nothing is sampled
  }
  const v1::ShardSamplingParams& s = in.sampling();
  SamplingParams& p = request.sampling;
  p.temperature = s.temperature();
  p.top_k = s.top_k();
  p.top_p = s.top_p();
  p.min_p = s.min_p();
  p.repetition_penalty = s.repetition_penalty();
  p.frequency_penalty = s.frequency_penalty();
  p.presence_penalty = s.presence_penalty();
  p.seed = s.seed();
  p.max_tokens = s.max_tokens();
  p.stop_token_ids.assign(s.stop_token_ids().begin(), s.stop_token_ids().end());
  p.ignore_eos = s.ignore_eos();
  if (s.has_logprobs()) p.logprobs = s.logprobs();
  for (const auto& [token, bias] : s.logit_bias()) p.logit_bias.emplace_back(token, bias);
  if (s.has_prompt_logprobs()) p.prompt_logprobs = s.prompt_logprobs();
  return request;
}

namespace {

void add_logprobs(const TokenLogprobs& logprobs, v1::ShardToken& token) {
  token.set_logprob(logprobs.logprob);
  for (const auto& [id, logprob] : logprobs.top) {
    v1::ShardTopLogprob* top = token.add_top_logprobs();
    top->set_token_id(id);
    top->set_logprob(logprob);
  }
}

}  // namespace

void add_event(const StreamEvent& event, const std::vector<int32_t>& prompt,
               v1::ShardRequestUpdate& update) {
  for (std::size_t i = 0; i < event.prompt_logprobs.size(); ++i) {
    v1::ShardToken* token = update.add_prompt_tokens();
    token->set_token_id(prompt[i + 1]);
    add_logprobs(event.prompt_logprobs[i], *token);
  }
  update.mutable_embedding()->Add(event.embedding.begin(), event.embedding.end());
  if (!event.token) return;
  v1::ShardToken* token = update.add_tokens();
  token->set_token_id(*event.token);
  if (event.logprobs) add_logprobs(*event.logprobs, *token);
}

Status event_failure(const StreamEvent& event) {
  if (event.finish_reason == FinishReason::kCancelled) {
    return Status(StatusCode::kCancelled, "request cancelled");
  }
  if (event.finish_reason == FinishReason::kError) return internal_error("{}", event.error);
  return ok_status();
}

namespace {

void fill_histogram(const Histogram& from, v1::LatencyHistogram& to) {
  to.mutable_bounds()->Assign(from.bounds().begin(), from.bounds().end());
  to.mutable_counts()->Assign(from.counts().begin(), from.counts().end());
  to.set_sum(from.sum());
}

}  // namespace

v1::EngineMetrics to_engine_metrics(const EngineLoopStats& stats) {
  v1::EngineMetrics out;
  out.set_preemptions(static_cast<uint64_t>(stats.preemptions));
  out.set_prefix_cache_queried_tokens(static_cast<uint64_t>(stats.prefix_cache_queried_tokens));
  out.set_prefix_cache_hit_tokens(static_cast<uint64_t>(stats.prefix_cache_hit_tokens));
  fill_histogram(stats.queue_time, *out.mutable_queue_time());
  fill_histogram(stats.prefill_time, *out.mutable_prefill_time());
  return out;
}

}  // namespace shardwise
