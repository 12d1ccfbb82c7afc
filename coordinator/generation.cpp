#include "coordinator/generation.h"

#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>

#include "coordinator/choices_call.h"
#include "coordinator/embed_call.h"
#include "tokenizer/chat_messages.h"

namespace shardwise {

StatusOr<std::string> render_chat(const v1::ChatMessages& chat, const Tokenizer& tokenizer,
                                  const std::string& model, bool add_generation_prompt) {
  if (!tokenizer.has_chat_template()) {
    return invalid_argument("model '{}' has no chat template: send a text prompt", model);
  }
  nlohmann::json messages = nlohmann::json::array();
  for (const v1::ChatMessage& m : chat.messages()) {
    messages.push_back({{"role", m.role()},
                        {"content", m.content()},
                        {"name", m.name()},
                        {"tool_call_id", m.tool_call_id()}});
  }
  SW_ASSIGN_OR_RETURN(nlohmann::json normalised, template_messages(messages));
  return tokenizer.apply_chat_template(normalised, add_generation_prompt);
}

namespace {

// A seed for a request that gave none: OpenAI, vLLM and llama-server draw a fresh one per
// request, so that unseeded requests at a temperature above 0 differ.
uint64_t fresh_seed() {
  static std::mutex mutex;
  static std::mt19937_64 rng = [] {
    std::random_device device;
    std::seed_seq seq{device(), device(), device(), device()};
    return std::mt19937_64(seq);
  }();
  std::lock_guard lock(mutex);
  return rng();
}

// The public API's token ids are int64, so that one past int32 is refused, not cut short.
StatusOr<std::vector<int32_t>> checked_ids(const google::protobuf::RepeatedField<int64_t>& in,
                                           const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  ids.reserve(in.size());
  for (const int64_t id : in) {
    if (id < 0 || static_cast<uint64_t>(id) >= tokenizer.vocab_size()) {
      return invalid_argument("token id {} outside the vocabulary of {}", id,
                              tokenizer.vocab_size());
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

StatusOr<std::vector<int32_t>> prompt_ids(const v1::GenerateRequest& request,
                                          const Tokenizer& tokenizer) {
  switch (request.prompt_case()) {
    case v1::GenerateRequest::kText:
      // OpenAI refuses an empty prompt; encoding it would send BOS alone.
      if (request.text().empty()) return invalid_argument("the prompt is empty");
      return tokenizer.encode(request.text(), /*add_special_tokens=*/true);
    case v1::GenerateRequest::kTokenIds:
      return checked_ids(request.token_ids().ids(), tokenizer);
    case v1::GenerateRequest::kChat: {
      SW_ASSIGN_OR_RETURN(std::string text,
                          render_chat(request.chat(), tokenizer, request.model(), true));
      // The template writes the special tokens (BOS) itself, as transformers assumes.
      return tokenizer.encode(text, /*add_special_tokens=*/false);
    }
    case v1::GenerateRequest::PROMPT_NOT_SET:
      break;
  }
  return invalid_argument("a prompt is required: text, token_ids or chat");
}

// The public API's integers are int64 and the shard's int32: each is checked before it narrows.
Status check_int32(int64_t value, int64_t low, const char* name) {
  if (value < low || value > INT32_MAX) {
    return invalid_argument("{} must be in [{}, {}], got {}", name, low, INT32_MAX, value);
  }
  return ok_status();
}

// Fills in the documented defaults and rejects values outside their domains.
StatusOr<v1::ShardSamplingParams> sampling_params(const v1::SamplingParams& in, size_t vocab_size) {
  SW_RETURN_IF_ERROR(check_int32(in.top_k(), 0, "top_k"));
  SW_RETURN_IF_ERROR(check_int32(in.max_tokens(), in.has_max_tokens() ? 1 : 0, "max_tokens"));
  for (const int64_t id : in.stop_token_ids()) {
    SW_RETURN_IF_ERROR(check_int32(id, 0, "stop_token_ids"));
  }
  if (in.has_logprobs() && (in.logprobs() < 0 || in.logprobs() > 20)) {
    return invalid_argument("logprobs must be in [0, 20], got {}", in.logprobs());
  }
  v1::ShardSamplingParams out;
  out.set_temperature(in.has_temperature() ? in.temperature() : 1.0f);
  out.set_top_k(static_cast<int32_t>(in.top_k()));
  out.set_top_p(in.has_top_p() ? in.top_p() : 1.0f);
  out.set_min_p(in.min_p());
  out.set_repetition_penalty(in.has_repetition_penalty() ? in.repetition_penalty() : 1.0f);
  out.set_frequency_penalty(in.frequency_penalty());
  out.set_presence_penalty(in.presence_penalty());
  out.set_seed(in.seed());
  out.set_max_tokens(in.has_max_tokens() ? static_cast<int32_t>(in.max_tokens()) : 16);
  for (const int64_t id : in.stop_token_ids()) out.add_stop_token_ids(static_cast<int32_t>(id));
  out.set_ignore_eos(in.ignore_eos());
  if (in.has_logprobs()) out.set_logprobs(static_cast<int32_t>(in.logprobs()));

  if (!std::isfinite(out.temperature()) || out.temperature() < 0) {
    return invalid_argument("temperature must be >= 0, got {}", out.temperature());
  }
  if (!(out.top_p() > 0 && out.top_p() <= 1)) {
    return invalid_argument("top_p must be in (0, 1], got {}", out.top_p());
  }
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
  if (in.has_prompt_logprobs()) {
    if (in.prompt_logprobs() < 0 || in.prompt_logprobs() > 20) {
      return invalid_argument("prompt_logprobs must be in [0, 20], got {}", in.prompt_logprobs());
    }
    out.set_prompt_logprobs(static_cast<int32_t>(in.prompt_logprobs()));
  }
  for (const auto& [token, bias] : in.logit_bias()) {
    if (token < 0 || static_cast<uint64_t>(token) >= vocab_size) {
      return invalid_argument("logit_bias: token id {} outside the vocabulary of {}", token,
                              vocab_size);
    }
    if (!(bias >= -100 && bias <= 100)) {
      return invalid_argument("logit_bias of token {} must be in [-100, 100], got {}", token, bias);
    }
    (*out.mutable_logit_bias())[static_cast<int32_t>(token)] = bias;
  }
  return out;
}

// One seed per choice: the request's seed + the choice's index, or fresh random ones.
StatusOr<std::vector<uint64_t>> choice_seeds(const v1::SamplingParams& in) {
  const int64_t n = in.has_n() ? in.n() : 1;
  if (n < 1 || n > kMaxChoices) {
    return invalid_argument("n must be in [1, {}], got {}", kMaxChoices, n);
  }
  std::vector<uint64_t> seeds(n);
  for (int64_t i = 0; i < n; ++i) seeds[i] = in.has_seed() ? in.seed() + i : fresh_seed();
  return seeds;
}

}  // namespace

StatusOr<PreparedRequest> Generation::prepare(const v1::GenerateRequest& request) const {
  if (request.model().empty()) return invalid_argument("model is required");
  PreparedRequest out;
  out.model = request.model();
  SW_ASSIGN_OR_RETURN(out.tokenizer, registry_.tokenizer(request.model()));
  SW_ASSIGN_OR_RETURN(out.prompt_ids, prompt_ids(request, *out.tokenizer));
  if (out.prompt_ids.empty()) return invalid_argument("the prompt is empty");
  SW_ASSIGN_OR_RETURN(out.sampling,
                      sampling_params(request.sampling(), out.tokenizer->vocab_size()));
  SW_ASSIGN_OR_RETURN(out.seeds, choice_seeds(request.sampling()));
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

std::shared_ptr<ChoicesCall> Generation::start(PreparedRequest request, ResponseSink& sink) {
  return ChoicesCall::start(registry_, metrics_, std::move(request), sink);
}

StatusOr<PreparedEmbedding> Generation::prepare(const v1::EmbedRequest& request) const {
  if (request.model().empty()) return invalid_argument("model is required");
  if (request.inputs().empty() || request.inputs_size() > kMaxEmbeddingInputs) {
    return invalid_argument("an embeddings request needs 1 to {} inputs, got {}",
                            kMaxEmbeddingInputs, request.inputs_size());
  }
  PreparedEmbedding out;
  out.model = request.model();
  out.priority = request.priority();
  out.pooling =
      request.pooling() == v1::POOLING_LAST ? v1::SHARD_POOLING_LAST : v1::SHARD_POOLING_MEAN;
  SW_ASSIGN_OR_RETURN(std::shared_ptr<const Tokenizer> tokenizer,
                      registry_.tokenizer(request.model()));
  const int context = registry_.context_length(request.model());
  for (int i = 0; i < request.inputs_size(); ++i) {
    const v1::EmbedInput& input = request.inputs(i);
    StatusOr<std::vector<int32_t>> ids =
        input.has_token_ids() ? checked_ids(input.token_ids().ids(), *tokenizer)
                              : tokenizer->encode(input.text(), /*add_special_tokens=*/true);
    if (!ids.ok()) return ids.status().with_context(fmt::format("input {}", i));
    if (ids->empty()) return invalid_argument("input {} is empty", i);
    if (context > 0 && static_cast<int64_t>(ids->size()) > context) {
      return invalid_argument("input {} ({} tokens) exceeds the context length {}", i, ids->size(),
                              context);
    }
    out.inputs.push_back(std::move(ids).value());
  }
  return out;
}

StatusOr<v1::EmbedResponse> Generation::embed(const PreparedEmbedding& request,
                                              std::chrono::milliseconds deadline) {
  return run_embedding(registry_, metrics_, request, deadline);
}

namespace {

// Hands a request's messages to the thread blocked in Generation::run.
class BlockingSink final : public ResponseSink {
 public:
  void on_message(v1::GenerateResponse&& message) override {
    std::lock_guard lock(mutex_);
    enqueue(queue_, std::move(message));
    ready_.notify_one();
  }
  void on_done(const Status& status) override {
    // Notified under the lock: the waiter may destroy this sink as soon as it sees done_.
    std::lock_guard lock(mutex_);
    status_ = status;
    done_ = true;
    ready_.notify_one();
  }
  // Waits for messages; returns false, with `status` set, once the request has ended and every
  // message was taken.
  bool take(std::deque<v1::GenerateResponse>& out, Status& status) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return done_ || !queue_.empty(); });
    if (queue_.empty()) {
      status = status_;
      return false;
    }
    out.swap(queue_);
    return true;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<v1::GenerateResponse> queue_;
  bool done_ = false;
  Status status_;
};

}  // namespace

Status Generation::run(const PreparedRequest& request, const EmitFn& emit) {
  BlockingSink sink;
  std::shared_ptr<ChoicesCall> call = start(request, sink);
  std::deque<v1::GenerateResponse> messages;
  Status status;
  bool client_gone = false;
  while (sink.take(messages, status)) {
    for (const v1::GenerateResponse& message : messages) {
      if (client_gone || emit(message)) continue;
      client_gone = true;
      call->cancel(Status(StatusCode::kCancelled, "the client went away"));
    }
    messages.clear();
  }
  return status;
}

}  // namespace shardwise
