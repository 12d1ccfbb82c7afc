#include "bench/loadgen/request.h"

namespace shardwise::loadgen {

double RequestResult::tpot_s() const {
  if (!ok() || output_tokens < 2 || ttft_s < 0) return -1;
  return (e2e_s - ttft_s) / (output_tokens - 1);
}

ResultRecorder::ResultRecorder(const RequestSpec& spec, Clock::time_point zero) : zero_(zero) {
  result_.index = spec.index;
  // Token-id prompts know their length; text and chat prompts learn it from the usage.
  result_.input_tokens = static_cast<int>(spec.prompt_ids.size());
}

double ResultRecorder::now() const {
  return std::chrono::duration<double>(Clock::now() - zero_).count();
}

void ResultRecorder::sent() { result_.start_s = now(); }

void ResultRecorder::received(int tokens) {
  if (tokens <= 0) return;
  const double t = now();
  if (result_.ttft_s < 0) {
    result_.ttft_s = t - result_.start_s;
  } else {
    result_.itl_s.push_back(t - last_message_s_);
  }
  last_message_s_ = t;
  ++result_.messages;
  received_tokens_ += tokens;
}

RequestResult ResultRecorder::take() {
  result_.e2e_s = now() - result_.start_s;
  if (!have_usage_) result_.output_tokens = received_tokens_;
  return std::move(result_);
}

RequestResult ResultRecorder::finish(const std::string& finish_reason, int prompt_tokens,
                                     int completion_tokens) {
  result_.finish_reason = finish_reason;
  if (prompt_tokens >= 0) result_.input_tokens = prompt_tokens;
  if (completion_tokens >= 0) {
    have_usage_ = true;
    result_.output_tokens = completion_tokens;
    // A chunk that carried text but no token (a server's last chunk flushing its
    // detokenizer) is not a token: messages cannot outnumber tokens.
    while (result_.messages > completion_tokens && result_.messages > 0) {
      if (!result_.itl_s.empty()) result_.itl_s.pop_back();
      --result_.messages;
    }
  }
  return take();
}

RequestResult ResultRecorder::fail(std::string error) {
  result_.error = std::move(error);
  return take();
}

}  // namespace shardwise::loadgen
