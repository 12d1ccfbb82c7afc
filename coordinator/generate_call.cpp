#include "coordinator/generate_call.h"

#include <grpcpp/grpcpp.h>

#include "common/logging.h"
#include "coordinator/stop_strings.h"
#include "tokenizer/incremental_decoder.h"

namespace shardwise {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool is_replica_failure(StatusCode code) {
  const auto grpc_code = static_cast<grpc::StatusCode>(code);
  return grpc_code == grpc::StatusCode::UNAVAILABLE || grpc_code == grpc::StatusCode::INTERNAL ||
         grpc_code == grpc::StatusCode::UNKNOWN;
}

bool is_plain(const v1::GenerateResponse& message) {
  return !message.has_logprob() && message.finish_reason().empty() && !message.has_usage();
}

}  // namespace

void enqueue(std::deque<v1::GenerateResponse>& queue, v1::GenerateResponse&& message) {
  if (!queue.empty() && is_plain(queue.back()) && is_plain(message)) {
    v1::GenerateResponse& last = queue.back();
    last.mutable_token_ids()->MergeFrom(message.token_ids());
    last.mutable_text()->append(message.text());
    return;
  }
  queue.push_back(std::move(message));
}

struct GenerateCall::Attempt {
  explicit Attempt(const PreparedRequest& request)
      : decoder(*request.tokenizer, /*skip_special_tokens=*/true), matcher(request.stop) {}
  IncrementalDecoder decoder;
  StopStringMatcher matcher;
  int tokens = 0;
  Clock::time_point last_token;
  std::string finish_reason;
  Status local;  // a failure on this side (detokenizer, client gone), not the replica's
};

std::shared_ptr<GenerateCall> GenerateCall::start(Registry& registry, Metrics& metrics,
                                                  PreparedRequest request, ResponseSink& sink) {
  auto call = std::make_shared<GenerateCall>(registry, metrics, std::move(request), sink);
  call->metrics_.add_running(1);
  if (call->request_.deadline_ms > 0) {
    call->deadline_.Set(
        std::chrono::system_clock::now() + std::chrono::milliseconds(call->request_.deadline_ms),
        [weak = std::weak_ptr<GenerateCall>(call)](bool fired) {
          if (!fired) return;  // cancelled: the request ended first
          if (auto call = weak.lock()) {
            call->cancel(Status(StatusCode::kDeadlineExceeded, "Deadline Exceeded"));
          }
        });
  }
  call->next_attempt();
  return call;
}

GenerateCall::GenerateCall(Registry& registry, Metrics& metrics, PreparedRequest request,
                           ResponseSink& sink)
    : registry_(registry),
      metrics_(metrics),
      request_(std::move(request)),
      sink_(sink),
      start_(Clock::now()) {
  shard_request_.mutable_prompt_ids()->Assign(request_.prompt_ids.begin(),
                                              request_.prompt_ids.end());
  *shard_request_.mutable_sampling() = request_.sampling;
}

void GenerateCall::cancel(const Status& why) {
  std::shared_ptr<ReplicaSession> session;
  uint64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    if (done_ || !cancelled_.ok()) return;
    cancelled_ = why;
    session = session_;
    id = session_request_;
  }
  // Without mutex_: the session may call on_end on this thread.
  if (session) session->cancel(id, why);
}

void GenerateCall::next_attempt() {
  StatusOr<std::shared_ptr<Replica>> replica =
      registry_.pick(request_.model, request_.priority, tried_);
  if (!replica.ok()) {
    return finish(tried_.empty() ? replica.status()
                                 : unavailable("every replica of '{}' failed: {}", request_.model,
                                               last_failure_.message()));
  }
  replica_ = std::move(replica).value();
  tried_.insert(replica_->id);
  attempt_ = std::make_unique<Attempt>(request_);
  uint64_t attempt = 0;
  Status cancelled;
  {
    std::lock_guard lock(mutex_);
    cancelled = cancelled_;
    attempt = ended_attempts_;
  }
  if (!cancelled.ok()) return finish(cancelled);
  ++replica_->outstanding;
  std::shared_ptr<ReplicaSession> session = replica_->session();
  StatusOr<uint64_t> id = session->start(shard_request_, shared_from_this());
  // The stream broke between opening and starting: a replica failure, like any other.
  if (!id.ok()) return on_end(id.status());
  {
    std::lock_guard lock(mutex_);
    if (ended_attempts_ != attempt) return;  // it has ended already, on another thread
    session_ = session;
    session_request_ = *id;
    cancelled = cancelled_;  // cancel() came while it was starting, and found nothing to cancel
  }
  if (!cancelled.ok()) session->cancel(*id, cancelled);
}

bool GenerateCall::on_update(const v1::ShardRequestUpdate& message) {
  Attempt& a = *attempt_;
  if (!a.finish_reason.empty() || !a.local.ok()) return false;  // ended here: drop the rest
  a.finish_reason = message.finish_reason();
  // The shard batches the tokens made while we were busy; we pass them on the same way,
  // except that a token with log-probabilities travels alone (the public message has room
  // for one token's).
  v1::GenerateResponse out;
  auto send = [&] {
    if (out.token_ids().empty()) return;
    sink_.on_message(std::move(out));
    out.Clear();
  };
  for (const v1::ShardToken& token : message.tokens()) {
    if (a.tokens == 0) {
      metrics_.observe_ttft(request_.model, seconds_since(start_));
    } else {
      metrics_.observe_inter_token(request_.model, seconds_since(a.last_token));
    }
    StatusOr<std::string> piece = a.decoder.push(token.token_id());
    if (!piece.ok()) {
      a.local = piece.status();
      break;
    }
    if (token.has_logprob()) send();
    out.add_token_ids(token.token_id());
    out.mutable_text()->append(a.matcher.push(*piece));
    if (token.has_logprob()) {
      out.set_logprob(token.logprob());
      for (const auto& top : token.top_logprobs()) {
        v1::TopLogprob* t = out.add_top_logprobs();
        t->set_token_id(top.token_id());
        t->set_logprob(top.logprob());
      }
      send();
    }
    ++a.tokens;
    a.last_token = Clock::now();
    if (a.matcher.matched()) {
      a.finish_reason = "stop";
      break;
    }
  }
  if (a.local.ok()) send();
  // A stop string or a local failure ends the call before the replica does.
  return a.matcher.matched() || !a.local.ok();
}

// The outcome of the attempt that just ended, given the shard call's status.
Status GenerateCall::attempt_status(const Status& status) {
  Attempt& a = *attempt_;
  if (!a.local.ok()) return a.local;
  if (a.finish_reason.empty()) {
    if (!replica_->live) return unavailable("replica {} was taken out of rotation", replica_->id);
    if (status.ok())
      return internal_error("replica {} ended the request without finishing", replica_->id);
    return status;
  }
  std::string tail;
  if (StatusOr<std::string> rest = a.decoder.flush(); rest.ok()) tail = *rest;
  v1::GenerateResponse last;
  last.set_text(a.matcher.push(tail) + a.matcher.flush());
  last.set_finish_reason(a.finish_reason);
  last.mutable_usage()->set_prompt_tokens(static_cast<int32_t>(request_.prompt_ids.size()));
  last.mutable_usage()->set_completion_tokens(a.tokens);
  sink_.on_message(std::move(last));
  return ok_status();
}

void GenerateCall::on_end(const Status& shard_status) {
  {
    std::lock_guard lock(mutex_);
    ++ended_attempts_;
    session_.reset();
    // Cancelled by the client: that, not the shard's CANCELLED, is the outcome.
    if (!cancelled_.ok() && attempt_->local.ok()) attempt_->local = cancelled_;
  }
  --replica_->outstanding;
  Status status = attempt_status(shard_status);
  metrics_.add_generated_tokens(request_.model, attempt_->tokens);
  if (status.ok() || !is_replica_failure(status.code())) return finish(status);
  registry_.mark_dead(*replica_, status.message());
  if (attempt_->tokens > 0) {
    return finish(unavailable("replica {} failed after {} tokens: {}", replica_->id,
                              attempt_->tokens, status.message()));
  }
  log()->warn("retrying a request of {} elsewhere: replica {} failed: {}", request_.model,
              replica_->id, status.message());
  last_failure_ = status;
  next_attempt();
}

void GenerateCall::finish(const Status& status) {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  deadline_.Cancel();
  metrics_.add_running(-1);
  metrics_.count_request(request_.model, std::string(status_code_name(status.code())));
  if (status.ok()) metrics_.observe_e2e(request_.model, seconds_since(start_));
  sink_.on_done(status);
}

}  // namespace shardwise
