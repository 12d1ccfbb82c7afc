#include "coordinator/embed_call.h"

#include <grpcpp/grpcpp.h>

#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "common/logging.h"

namespace shardwise {
namespace {

// What one attempt at one replica gathers: an embedding per input and the first failure.
struct EmbedAttempt {
  explicit EmbedAttempt(std::size_t n) : embeddings(n), remaining(static_cast<int>(n)) {}
  std::mutex mutex;
  std::condition_variable done;
  std::vector<std::vector<float>> embeddings;  // guarded by mutex
  int remaining;                               // guarded by mutex: inputs not ended
  Status failure;                              // guarded by mutex
};

class EmbedListener final : public ShardRequestListener {
 public:
  EmbedListener(std::shared_ptr<EmbedAttempt> attempt, std::size_t input,
                std::shared_ptr<Replica> replica)
      : attempt_(std::move(attempt)), input_(input), replica_(std::move(replica)) {}

  bool on_update(const v1::ShardRequestUpdate& update) override {
    if (update.embedding().empty()) return false;
    std::lock_guard lock(attempt_->mutex);
    attempt_->embeddings[input_].assign(update.embedding().begin(), update.embedding().end());
    return false;
  }
  void on_end(const Status& status) override {
    --replica_->outstanding;
    std::lock_guard lock(attempt_->mutex);
    if (status.ok() && attempt_->embeddings[input_].empty()) {
      if (attempt_->failure.ok()) {
        attempt_->failure = internal_error("replica {} returned no embedding", replica_->id);
      }
    } else if (!status.ok() && attempt_->failure.ok()) {
      attempt_->failure = status;
    }
    if (--attempt_->remaining == 0) attempt_->done.notify_all();
  }

 private:
  std::shared_ptr<EmbedAttempt> attempt_;
  const std::size_t input_;
  std::shared_ptr<Replica> replica_;
};

bool is_replica_failure(StatusCode code) {
  const auto grpc_code = static_cast<grpc::StatusCode>(code);
  return grpc_code == grpc::StatusCode::UNAVAILABLE || grpc_code == grpc::StatusCode::INTERNAL ||
         grpc_code == grpc::StatusCode::UNKNOWN;
}

void normalise(std::vector<float>& v) {
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  norm = std::sqrt(norm);
  if (norm > 0) {
    for (float& x : v) x = static_cast<float>(x / norm);
  }
}

// One attempt on `replica`: the embeddings, or why it failed.
StatusOr<std::vector<std::vector<float>>> attempt_on(
    const std::shared_ptr<Replica>& replica, const PreparedEmbedding& request,
    std::optional<std::chrono::steady_clock::time_point> deadline) {
  auto attempt = std::make_shared<EmbedAttempt>(request.inputs.size());
  std::shared_ptr<ReplicaSession> session = replica->session();
  std::vector<uint64_t> ids;
  for (std::size_t i = 0; i < request.inputs.size(); ++i) {
    v1::ShardGenerateRequest start;
    start.mutable_prompt_ids()->Assign(request.inputs[i].begin(), request.inputs[i].end());
    start.set_pooling(request.pooling);
    ++replica->outstanding;
    StatusOr<uint64_t> id =
        session->start(start, std::make_shared<EmbedListener>(attempt, i, replica));
    if (!id.ok()) {
      --replica->outstanding;
      // The inputs started so far end with the broken stream; those not started end here.
      std::unique_lock lock(attempt->mutex);
      attempt->remaining -= static_cast<int>(request.inputs.size() - i);
      if (attempt->failure.ok()) attempt->failure = id.status();
      break;
    }
    ids.push_back(*id);
  }
  std::unique_lock lock(attempt->mutex);
  auto all_ended = [&] { return attempt->remaining == 0; };
  if (!deadline) {
    attempt->done.wait(lock, all_ended);
  } else if (!attempt->done.wait_until(lock, *deadline, all_ended)) {
    lock.unlock();
    const Status why(StatusCode::kDeadlineExceeded, "Deadline Exceeded");
    for (uint64_t id : ids) session->cancel(id, why);
    return why;
  }
  if (!attempt->failure.ok()) return attempt->failure;
  return std::move(attempt->embeddings);
}

}  // namespace

StatusOr<v1::EmbedResponse> run_embedding(Registry& registry, Metrics& metrics,
                                          const PreparedEmbedding& request,
                                          std::chrono::milliseconds deadline) {
  std::optional<std::chrono::steady_clock::time_point> until;
  if (deadline.count() > 0) until = std::chrono::steady_clock::now() + deadline;
  metrics.add_running(1);
  std::set<std::string> tried;
  Status last_failure;
  StatusOr<std::vector<std::vector<float>>> embeddings = unavailable("no attempt");
  for (;;) {
    StatusOr<std::shared_ptr<Replica>> replica =
        registry.pick(request.model, request.priority, tried);
    if (!replica.ok()) {
      embeddings = tried.empty() ? replica.status()
                                 : unavailable("every replica of '{}' failed: {}", request.model,
                                               last_failure.message());
      break;
    }
    tried.insert((*replica)->id);
    embeddings = attempt_on(*replica, request, until);
    if (embeddings.ok() || !is_replica_failure(embeddings.status().code())) break;
    last_failure = embeddings.status();
    registry.mark_dead(**replica, last_failure.message());
    log()->warn("retrying an embeddings request of {} elsewhere: replica {} failed: {}",
                request.model, (*replica)->id, last_failure.message());
  }
  metrics.add_running(-1);
  metrics.count_request(request.model, std::string(status_code_name(embeddings.status().code())));
  if (!embeddings.ok()) return embeddings.status();
  v1::EmbedResponse response;
  int tokens = 0;
  for (std::size_t i = 0; i < embeddings->size(); ++i) {
    normalise((*embeddings)[i]);
    response.add_embeddings()->mutable_values()->Assign((*embeddings)[i].begin(),
                                                        (*embeddings)[i].end());
    tokens += static_cast<int>(request.inputs[i].size());
  }
  response.mutable_usage()->set_prompt_tokens(tokens);
  return response;
}

}  // namespace shardwise
