// One generation request of n choices (n = 1 included): a GenerateCall per choice, all routed
// to the replica the first one is routed to (so that the choices share the prompt's KV cache
// blocks there), each drawing with its own seed. Their messages reach the request's sink one
// at a time, each with its choice in `index`; the sink's on_done comes once, after every
// choice has ended, with OK or the first failure (which cancels the other choices). The
// request-level metrics (running, count by status, end-to-end latency) are counted here.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "coordinator/generate_call.h"

namespace shardwise {

class ChoicesCall : public std::enable_shared_from_this<ChoicesCall> {
 public:
  // Starts `request`'s choices; `sink` must outlive the call's on_done.
  static std::shared_ptr<ChoicesCall> start(Registry& registry, Metrics& metrics,
                                            PreparedRequest request, ResponseSink& sink);
  ChoicesCall(Metrics& metrics, std::string model, int n, ResponseSink& sink);

  // Ends every choice with `why` (see GenerateCall::cancel). Any thread.
  void cancel(const Status& why);

 private:
  // The sink of one choice's GenerateCall.
  class ChoiceSink;

  void on_message(int choice, v1::GenerateResponse&& message);
  void on_done(int choice, const Status& status);
  // Requires mutex_: marks the call failed with `status` and returns the calls to cancel.
  std::vector<std::shared_ptr<GenerateCall>> fail_locked(const Status& status);

  Metrics& metrics_;
  const std::string model_;
  ResponseSink& sink_;
  const std::chrono::steady_clock::time_point start_;
  std::vector<std::unique_ptr<ChoiceSink>> sinks_;  // [n], fixed after construction
  // Serialises the calls into sink_ (choices run on different gRPC threads); recursive in case
  // a sink reacts to a message by cancelling.
  std::recursive_mutex sink_mutex_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<GenerateCall>> calls_;  // guarded by mutex_: started ones
  int remaining_;                                     // guarded by mutex_: choices not ended
  Status status_;                                     // guarded by mutex_: the first failure
};

}  // namespace shardwise
