#include "coordinator/generation.h"

#include <grpcpp/grpcpp.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "coordinator/stop_strings.h"
#include "models/tokenizer/incremental_decoder.h"

namespace shardwise {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

StatusOr<std::vector<int32_t>> prompt_ids(const v1::GenerateRequest& request,
                                          const Tokenizer& tokenizer) {
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText:
      return tokenizer.encode(request.text(), /*add_special_tokens=*/true);
    case v1::GenerateRequest::kTokenIds: {
      std::vector<int32_t> ids(request.token_ids().ids().begin(), request.token_ids().ids().end());
      for (int32_t id : ids) {
        if (id < 0 || static_cast<size_t>(id) >= tokenizer.vocab_size()) {
          return invalid_argument("token id {} outside the vocabulary of {}", id,
                                  tokenizer.vocab_size());
        }
      }
      return ids;
    }
    case v1::GenerateRequest::kChat: {
      if (!tokenizer.has_chat_template()) {
        return invalid_argument("model '{}' has no chat template: send a text prompt",
                                request.model());
      }
      nlohmann::json messages = nlohmann::json::array();
      for (const v1::ChatMessage& m : request.chat().messages()) {
        messages.push_back({{"role", m.role()}, {"content", m.content()}});
      }
      SW_ASSIGN_OR_RETURN(std::string text, tokenizer.apply_chat_template(messages, true));
      // The template writes the special tokens (BOS) itself, as transformers assumes.
      return tokenizer.encode(text, /*add_special_tokens=*/false);
    }
    case v1::GenerateRequest::PROMPT_NOT_SET:
      break;
  }
  return invalid_argument("a prompt is required: text, token_ids or chat");
}

// Fills in the documented defaults and rejects values outside their domains.
StatusOr<v1::ShardSamplingParams> sampling_params(const v1::SamplingParams& in) {
  v1::ShardSamplingParams out;
  out.set_temperature(in.has_temperature() ? in.temperature() : 1.0f);
  out.set_top_k(in.top_k());
  out.set_top_p(in.has_top_p() ? in.top_p() : 1.0f);
  out.set_min_p(in.min_p());
  out.set_repetition_penalty(in.has_repetition_penalty() ? in.repetition_penalty() : 1.0f);
  out.set_frequency_penalty(in.frequency_penalty());
  out.set_presence_penalty(in.presence_penalty());
  out.set_seed(in.seed());
  out.set_max_tokens(in.has_max_tokens() ? in.max_tokens() : 16);
  *out.mutable_stop_token_ids() = in.stop_token_ids();
  out.set_ignore_eos(in.ignore_eos());
  if (in.has_logprobs()) out.set_logprobs(in.logprobs());

  if (!std::isfinite(out.temperature()) || out.temperature() < 0) {
    return invalid_argument("temperature must be >= 0, got {}", out.temperature());
  }
  if (!(out.top_p() > 0 && out.top_p() <= 1)) {
    return invalid_argument("top_p must be in (0, 1], got {}", out.top_p());
  }
  if (out.top_k() < 0) return invalid_argument("top_k must be >= 0, got {}", out.top_k());
  if (!(out.min_p() >= 0 && out.min_p() <= 1)) {
    return invalid_argument("min_p must be in [0, 1], got {}", out.min_p());
  }
  if (!(out.repetition_penalty() > 0)) {
    return invalid_argument("repetition_penalty must be > 0, got {}", out.repetition_penalty());
  }
  for (float penalty : {out.frequency_penalty(), out.presence_penalty()}) {
    if (!(penalty >= -2 && penalty <= 2)) {
      return invalid_argument("frequency_penalty and presence_penalty must be in [-2, 2], got {}",
                              penalty);
    }
  }
  if (out.max_tokens() < 1)
    return invalid_argument("max_tokens must be >= 1, got {}", out.max_tokens());
  if (out.has_logprobs() && (out.logprobs() < 0 || out.logprobs() > 20)) {
    return invalid_argument("logprobs must be in [0, 20], got {}", out.logprobs());
  }
  return out;
}

bool is_replica_failure(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::INTERNAL ||
         code == grpc::StatusCode::UNKNOWN;
}

}  // namespace

StatusOr<PreparedRequest> Generation::prepare(const v1::GenerateRequest& request) const {
  if (request.model().empty()) return invalid_argument("model is required");
  PreparedRequest out;
  out.model = request.model();
  SW_ASSIGN_OR_RETURN(out.tokenizer, registry_.tokenizer(request.model()));
  SW_ASSIGN_OR_RETURN(out.prompt_ids, prompt_ids(request, *out.tokenizer));
  if (out.prompt_ids.empty()) return invalid_argument("the prompt is empty");
  SW_ASSIGN_OR_RETURN(out.sampling, sampling_params(request.sampling()));
  const int context = registry_.context_length(request.model());
  const int64_t needed = static_cast<int64_t>(out.prompt_ids.size()) + out.sampling.max_tokens();
  if (context > 0 && needed > context) {
    return invalid_argument("prompt ({} tokens) + max_tokens ({}) exceeds the context length {}",
                            out.prompt_ids.size(), out.sampling.max_tokens(), context);
  }
  out.stop.assign(request.sampling().stop().begin(), request.sampling().stop().end());
  out.priority = request.priority();
  out.deadline_ms = request.deadline_ms();
  return out;
}

// What survives a failed attempt: the tokens already streamed (none, if it may be retried).
struct Generation::Attempt {
  Attempt(const PreparedRequest& request, Clock::time_point start)
      : decoder(*request.tokenizer, /*skip_special_tokens=*/true),
        matcher(request.stop),
        start(start) {}
  IncrementalDecoder decoder;
  StopStringMatcher matcher;
  int tokens = 0;
  Clock::time_point start;  // of the request, for time to first token
  Clock::time_point last_token;
};

Status Generation::stream_from(Replica& replica, const PreparedRequest& request, Attempt& attempt,
                               const EmitFn& emit) {
  grpc::ClientContext call;
  if (request.deadline_ms > 0) {
    call.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(request.deadline_ms));
  }
  v1::ShardGenerateRequest shard_request;
  shard_request.mutable_prompt_ids()->Assign(request.prompt_ids.begin(), request.prompt_ids.end());
  *shard_request.mutable_sampling() = request.sampling;
  replica.add_call(&call);
  auto reader = replica.stub->Generate(&call, shard_request);
  v1::ShardGenerateResponse message;
  std::string finish_reason;
  Status local;  // a failure on this side (detokenizer, client gone), not the replica's
  while (finish_reason.empty() && local.ok() && reader->Read(&message)) {
    finish_reason = message.finish_reason();
    // The shard batches the tokens made while we were busy; we pass them on the same way,
    // except that a token with log-probabilities travels alone (the public message has room
    // for one token's).
    v1::GenerateResponse out;
    auto send = [&] {
      if (out.token_ids().empty()) return;
      if (!emit(out)) local = Status(StatusCode::kCancelled, "the client went away");
      out.Clear();
    };
    for (const v1::ShardToken& token : message.tokens()) {
      if (attempt.tokens == 0) {
        metrics_.observe_ttft(request.model, seconds_since(attempt.start));
      } else {
        metrics_.observe_inter_token(request.model, seconds_since(attempt.last_token));
      }
      StatusOr<std::string> piece = attempt.decoder.push(token.token_id());
      if (!piece.ok()) {
        local = piece.status();
        break;
      }
      if (token.has_logprob()) send();
      out.add_token_ids(token.token_id());
      out.mutable_text()->append(attempt.matcher.push(*piece));
      if (token.has_logprob()) {
        out.set_logprob(token.logprob());
        for (const auto& top : token.top_logprobs()) {
          v1::TopLogprob* t = out.add_top_logprobs();
          t->set_token_id(top.token_id());
          t->set_logprob(top.logprob());
        }
        send();
      }
      ++attempt.tokens;
      attempt.last_token = Clock::now();
      if (attempt.matcher.matched()) {
        finish_reason = "stop";
        break;
      }
      if (!local.ok()) break;
    }
    if (local.ok()) send();
  }
  // A stop string or a local failure ends the call before the replica does.
  if (attempt.matcher.matched() || !local.ok()) call.TryCancel();
  grpc::Status status = reader->Finish();
  replica.remove_call(&call);
  if (!local.ok()) return local;
  if (finish_reason.empty()) {
    if (!replica.live) return unavailable("replica {} was taken out of rotation", replica.id);
    if (status.ok())
      return internal_error("replica {} ended the stream without finishing", replica.id);
    return Status(static_cast<StatusCode>(status.error_code()), status.error_message());
  }
  std::string tail;
  if (StatusOr<std::string> rest = attempt.decoder.flush(); rest.ok()) tail = *rest;
  v1::GenerateResponse last;
  last.set_text(attempt.matcher.push(tail) + attempt.matcher.flush());
  last.set_finish_reason(finish_reason);
  last.mutable_usage()->set_prompt_tokens(static_cast<int32_t>(request.prompt_ids.size()));
  last.mutable_usage()->set_completion_tokens(attempt.tokens);
  emit(last);
  return ok_status();
}

Status Generation::run(const PreparedRequest& request, const EmitFn& emit) {
  metrics_.add_running(1);
  const Clock::time_point start = Clock::now();
  std::set<std::string> tried;
  Status status;
  for (;;) {
    StatusOr<std::shared_ptr<Replica>> replica =
        registry_.pick(request.model, request.priority, tried);
    if (!replica.ok()) {
      status = tried.empty() ? replica.status()
                             : unavailable("every replica of '{}' failed: {}", request.model,
                                           status.message());
      break;
    }
    tried.insert((*replica)->id);
    Attempt attempt(request, start);
    ++(*replica)->outstanding;
    status = stream_from(**replica, request, attempt, emit);
    --(*replica)->outstanding;
    metrics_.add_generated_tokens(request.model, attempt.tokens);
    if (status.ok() || !is_replica_failure(static_cast<grpc::StatusCode>(status.code()))) break;
    registry_.mark_dead(**replica, status.message());
    if (attempt.tokens > 0) {
      status = unavailable("replica {} failed after {} tokens: {}", (*replica)->id, attempt.tokens,
                           status.message());
      break;
    }
    log()->warn("retrying a request of {} elsewhere: replica {} failed: {}", request.model,
                (*replica)->id, status.message());
  }
  metrics_.add_running(-1);
  metrics_.count_request(request.model, std::string(status_code_name(status.code())));
  if (status.ok()) metrics_.observe_e2e(request.model, seconds_since(start));
  return status;
}

}  // namespace shardwise
