#include "shard/serve/shard_protocol.h"

namespace shardwise {

Request to_request(const v1::ShardGenerateRequest& in) {
  Request request;
  request.prompt_ids.assign(in.prompt_ids().begin(), in.prompt_ids().end());
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
  return request;
}

void add_token(const StreamEvent& event,
               google::protobuf::RepeatedPtrField<v1::ShardToken>& tokens) {
  if (!event.token) return;
  v1::ShardToken* token = tokens.Add();
  token->set_token_id(*event.token);
  if (!event.logprobs) return;
  token->set_logprob(event.logprobs->logprob);
  for (const auto& [id, logprob] : event.logprobs->top) {
    v1::ShardTopLogprob* top = token->add_top_logprobs();
    top->set_token_id(id);
    top->set_logprob(logprob);
  }
}

Status event_failure(const StreamEvent& event) {
  if (event.finish_reason == FinishReason::kCancelled) {
    return Status(StatusCode::kCancelled, "request cancelled");
  }
  if (event.finish_reason == FinishReason::kError) return internal_error("{}", event.error);
  return ok_status();
}

}  // namespace shardwise
