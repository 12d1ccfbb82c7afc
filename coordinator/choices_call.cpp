#include "coordinator/choices_call.h"

namespace shardwise {

class ChoicesCall::ChoiceSink final : public ResponseSink {
 public:
  ChoiceSink(ChoicesCall& call, int choice) : call_(call), choice_(choice) {}
  void on_message(v1::GenerateResponse&& message) override {
    call_.on_message(choice_, std::move(message));
  }
  void on_done(const Status& status) override { call_.on_done(choice_, status); }

 private:
  ChoicesCall& call_;
  const int choice_;
};

ChoicesCall::ChoicesCall(Metrics& metrics, std::string model, int n, ResponseSink& sink)
    : metrics_(metrics),
      model_(std::move(model)),
      sink_(sink),
      start_(std::chrono::steady_clock::now()),
      remaining_(n) {
  for (int i = 0; i < n; ++i) sinks_.push_back(std::make_unique<ChoiceSink>(*this, i));
}

std::shared_ptr<ChoicesCall> ChoicesCall::start(Registry& registry, Metrics& metrics,
                                                PreparedRequest request, ResponseSink& sink) {
  const int n = static_cast<int>(request.seeds.size());
  auto call = std::make_shared<ChoicesCall>(metrics, request.model, n, sink);
  metrics.add_running(1);
  if (n > 1) {
    // Where the first choice will go; if that fails each choice finds its own way.
    auto replica = registry.pick(request.model, request.priority, {});
    if (replica.ok()) request.preferred_replica = (*replica)->id;
  }
  for (int i = 0; i < n; ++i) {
    Status failed;
    {
      std::lock_guard lock(call->mutex_);
      failed = call->status_;
    }
    if (!failed.ok()) {
      // Failed or cancelled already: the choices not started end with that.
      for (int j = i; j < n; ++j) call->on_done(j, failed);
      break;
    }
    PreparedRequest choice = request;
    choice.choice = i;
    choice.sampling.set_seed(request.seeds[i]);
    // The prompt's log-probabilities are the same for every choice: computed once.
    if (i > 0) choice.sampling.clear_prompt_logprobs();
    auto generate = GenerateCall::start(registry, metrics, std::move(choice), *call->sinks_[i]);
    {
      std::lock_guard lock(call->mutex_);
      call->calls_.push_back(generate);
      failed = call->status_;
    }
    // A failure or cancel that came while it was starting did not see it.
    if (!failed.ok()) generate->cancel(failed);
  }
  return call;
}

void ChoicesCall::cancel(const Status& why) {
  std::vector<std::shared_ptr<GenerateCall>> calls;
  {
    std::lock_guard lock(mutex_);
    calls = fail_locked(why);
  }
  for (const auto& call : calls) call->cancel(why);
}

std::vector<std::shared_ptr<GenerateCall>> ChoicesCall::fail_locked(const Status& status) {
  if (!status_.ok()) return {};
  status_ = status;
  return calls_;
}

void ChoicesCall::on_message(int choice, v1::GenerateResponse&& message) {
  {
    std::lock_guard lock(mutex_);
    if (!status_.ok()) return;  // the request is failing: its other choices' output is moot
  }
  message.set_index(choice);
  std::lock_guard lock(sink_mutex_);
  sink_.on_message(std::move(message));
}

void ChoicesCall::on_done(int /*choice*/, const Status& status) {
  // The sink may drop the last reference to this call in on_done.
  auto self = shared_from_this();
  std::vector<std::shared_ptr<GenerateCall>> cancel;
  Status outcome;
  bool last = false;
  {
    std::lock_guard lock(mutex_);
    if (!status.ok()) cancel = fail_locked(status);
    last = --remaining_ == 0;
    outcome = status_;
  }
  const Status why(StatusCode::kCancelled, "another choice of the request failed");
  for (const auto& call : cancel) call->cancel(why);
  if (!last) return;
  metrics_.add_running(-1);
  metrics_.count_request(model_, std::string(status_code_name(outcome.code())));
  if (outcome.ok()) {
    metrics_.observe_e2e(
        model_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  std::lock_guard lock(sink_mutex_);
  sink_.on_done(outcome);
}

}  // namespace shardwise
