#include "coordinator/openai_protocol.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>

#include "common/json_depth.h"

namespace shardwise {
namespace {

using json = nlohmann::json;

// An integer of the request as int64, never wrapped: one past int64 is INVALID_ARGUMENT
// (the fields' own ranges are checked where they narrow, in generation.cpp).
StatusOr<int64_t> integer(const json& value, const char* name) {
  if (!value.is_number_integer()) {
    return invalid_argument("'{}' must be an integer, got {}", name, value.dump());
  }
  if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return invalid_argument("'{}' is out of range: {}", name, value.dump());
  }
  return value.get<int64_t>();
}

// Reads an optional field of one JSON type; a wrong type is INVALID_ARGUMENT naming it.
// Numbers go into floats, so one past float's range is refused rather than cast to infinity.
template <typename T>
StatusOr<std::optional<T>> optional_field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::optional<T>();
  if constexpr (std::is_same_v<T, int64_t>) {
    SW_ASSIGN_OR_RETURN(const int64_t value, integer(*it, name));
    return std::optional<T>(value);
  } else {
    const bool type_ok = std::is_same_v<T, bool>          ? it->is_boolean()
                         : std::is_same_v<T, std::string> ? it->is_string()
                                                          : it->is_number();
    if (!type_ok) return invalid_argument("'{}' has the wrong type: {}", name, it->dump());
    if constexpr (std::is_same_v<T, double>) {
      if (std::abs(it->get<double>()) > std::numeric_limits<float>::max()) {
        return invalid_argument("'{}' is out of range: {}", name, it->dump());
      }
    }
    return std::optional<T>(it->get<T>());
  }
}

#define SW_OPTIONAL(type, var, body, name) \
  SW_ASSIGN_OR_RETURN(std::optional<type> var, optional_field<type>(body, name))

Status parse_sampling(const json& body, ApiKind kind, v1::SamplingParams& s) {
  SW_OPTIONAL(double, temperature, body, "temperature");
  SW_OPTIONAL(double, top_p, body, "top_p");
  SW_OPTIONAL(int64_t, top_k, body, "top_k");
  SW_OPTIONAL(double, min_p, body, "min_p");
  SW_OPTIONAL(double, repetition_penalty, body, "repetition_penalty");
  SW_OPTIONAL(double, frequency_penalty, body, "frequency_penalty");
  SW_OPTIONAL(double, presence_penalty, body, "presence_penalty");
  SW_OPTIONAL(int64_t, seed, body, "seed");
  SW_OPTIONAL(int64_t, max_tokens, body, "max_tokens");
  SW_OPTIONAL(int64_t, max_completion_tokens, body, "max_completion_tokens");
  SW_OPTIONAL(bool, ignore_eos, body, "ignore_eos");
  if (temperature) s.set_temperature(static_cast<float>(*temperature));
  if (top_p) s.set_top_p(static_cast<float>(*top_p));
  if (top_k) s.set_top_k(*top_k == -1 ? 0 : *top_k);  // vLLM: -1 is off
  if (min_p) s.set_min_p(static_cast<float>(*min_p));
  if (repetition_penalty) s.set_repetition_penalty(static_cast<float>(*repetition_penalty));
  if (frequency_penalty) s.set_frequency_penalty(static_cast<float>(*frequency_penalty));
  if (presence_penalty) s.set_presence_penalty(static_cast<float>(*presence_penalty));
  if (seed) s.set_seed(static_cast<uint64_t>(*seed));
  if (auto n = max_completion_tokens ? max_completion_tokens : max_tokens) s.set_max_tokens(*n);
  if (ignore_eos) s.set_ignore_eos(*ignore_eos);
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      s.add_stop(it->get<std::string>());
    } else if (it->is_array() &&
               std::all_of(it->begin(), it->end(), [](const json& v) { return v.is_string(); })) {
      for (const json& v : *it) s.add_stop(v.get<std::string>());
    } else {
      return invalid_argument("'stop' must be a string or an array of strings");
    }
  }
  // Completions: "logprobs": N; chat: "logprobs": true with "top_logprobs": N.
  if (kind == ApiKind::kCompletion) {
    SW_OPTIONAL(int64_t, logprobs, body, "logprobs");
    if (logprobs) s.set_logprobs(*logprobs);
  } else {
    SW_OPTIONAL(bool, logprobs, body, "logprobs");
    SW_OPTIONAL(int64_t, top_logprobs, body, "top_logprobs");
    if (logprobs.value_or(false)) s.set_logprobs(top_logprobs.value_or(0));
  }
  return ok_status();
}

Status parse_prompt(const json& body, ApiKind kind, v1::GenerateRequest& request) {
  if (kind == ApiKind::kChat) {
    auto it = body.find("messages");
    if (it == body.end() || !it->is_array() || it->empty()) {
      return invalid_argument("'messages' must be a non-empty array");
    }
    for (const json& m : *it) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
          !m.contains("content") || !m["content"].is_string()) {
        return invalid_argument("each message needs string 'role' and 'content'");
      }
      v1::ChatMessage* message = request.mutable_chat()->add_messages();
      message->set_role(m["role"].get<std::string>());
      message->set_content(m["content"].get<std::string>());
    }
    return ok_status();
  }
  auto it = body.find("prompt");
  if (it == body.end()) return invalid_argument("'prompt' is required");
  if (it->is_string()) {
    request.set_text(it->get<std::string>());
  } else if (it->is_array() && !it->empty() &&
             std::all_of(it->begin(), it->end(),
                         [](const json& v) { return v.is_number_integer(); })) {
    for (const json& v : *it) {
      SW_ASSIGN_OR_RETURN(const int64_t id, integer(v, "prompt"));
      request.mutable_token_ids()->add_ids(id);
    }
  } else {
    return invalid_argument("'prompt' must be a string or a non-empty array of token ids");
  }
  return ok_status();
}

std::string new_id(ApiKind kind) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}-{}-{}", kind == ApiKind::kChat ? "chatcmpl" : "cmpl",
                     std::chrono::system_clock::now().time_since_epoch().count(), ++counter);
}

}  // namespace

StatusOr<OpenAiRequest> parse_openai_request(std::string_view body, ApiKind kind) {
  if (json_nesting_depth(body) > kMaxJsonDepth) {
    return invalid_argument("the request body nests deeper than {}", kMaxJsonDepth);
  }
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return invalid_argument("the request body is not valid JSON");
  if (!parsed.is_object()) return invalid_argument("the request body must be a JSON object");
  OpenAiRequest out;
  out.kind = kind;
  SW_OPTIONAL(std::string, model, parsed, "model");
  if (!model || model->empty()) return invalid_argument("'model' is required");
  out.request.set_model(*model);
  SW_OPTIONAL(int64_t, n, parsed, "n");
  if (n.value_or(1) != 1) return invalid_argument("only n = 1 is supported, got {}", *n);
  SW_OPTIONAL(bool, stream, parsed, "stream");
  out.stream = stream.value_or(false);
  SW_RETURN_IF_ERROR(parse_prompt(parsed, kind, out.request));
  SW_RETURN_IF_ERROR(parse_sampling(parsed, kind, *out.request.mutable_sampling()));
  out.logprobs = out.request.sampling().has_logprobs();
  return out;
}

OpenAiResponse::OpenAiResponse(const OpenAiRequest& request, const Tokenizer& tokenizer)
    : kind_(request.kind),
      logprobs_(request.logprobs),
      tokenizer_(tokenizer),
      id_(new_id(request.kind)),
      model_(request.request.model()),
      created_(std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()) {}

std::string OpenAiResponse::token_text(int32_t id) const {
  const int32_t ids[] = {id};
  StatusOr<std::string> text = tokenizer_.decode(ids, /*skip_special_tokens=*/false);
  return text.ok() ? *text : "";
}

// Chat: {"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]};
// completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}]}.
json OpenAiResponse::logprobs_of(const v1::GenerateResponse& message) const {
  if (!logprobs_ || message.token_ids().empty()) return nullptr;
  const std::string token = token_text(message.token_ids(0));
  if (kind_ == ApiKind::kChat) {
    json top = json::array();
    for (const auto& t : message.top_logprobs()) {
      top.push_back({{"token", token_text(t.token_id())}, {"logprob", t.logprob()}});
    }
    return {{"token", token}, {"logprob", message.logprob()}, {"top_logprobs", top}};
  }
  json top = json::object();
  for (const auto& t : message.top_logprobs()) top[token_text(t.token_id())] = t.logprob();
  return {{"token", token}, {"logprob", message.logprob()}, {"top", top}};
}

json OpenAiResponse::chunk(const v1::GenerateResponse& message) {
  text_ += message.text();
  json finish = message.finish_reason().empty() ? json(nullptr) : json(message.finish_reason());
  if (!message.finish_reason().empty()) {
    finish_reason_ = message.finish_reason();
    const int prompt = message.usage().prompt_tokens(),
              completion = message.usage().completion_tokens();
    usage_ = {{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}};
  }
  json lp = logprobs_of(message);
  if (!lp.is_null()) all_logprobs_.push_back(lp);
  json choice = {{"index", 0}, {"finish_reason", finish}};
  if (kind_ == ApiKind::kChat) {
    json delta = {{"content", message.text()}};
    if (first_chunk_) delta["role"] = "assistant";
    choice["delta"] = delta;
    choice["logprobs"] = lp.is_null() ? json(nullptr) : json{{"content", json::array({lp})}};
  } else {
    choice["text"] = message.text();
    choice["logprobs"] = lp.is_null() ? json(nullptr)
                                      : json{{"tokens", {lp["token"]}},
                                             {"token_logprobs", {lp["logprob"]}},
                                             {"top_logprobs", {lp["top"]}}};
  }
  first_chunk_ = false;
  json out = {{"id", id_},
              {"object", kind_ == ApiKind::kChat ? "chat.completion.chunk" : "text_completion"},
              {"created", created_},
              {"model", model_},
              {"choices", {choice}}};
  if (!usage_.is_null()) out["usage"] = usage_;
  return out;
}

json OpenAiResponse::full() const {
  json choice = {{"index", 0}, {"finish_reason", finish_reason_}};
  json lp = nullptr;
  if (logprobs_ && kind_ == ApiKind::kChat) {
    lp = {{"content", all_logprobs_}};
  } else if (logprobs_) {
    lp = {{"tokens", json::array()},
          {"token_logprobs", json::array()},
          {"top_logprobs", json::array()}};
    for (const json& t : all_logprobs_) {
      lp["tokens"].push_back(t["token"]);
      lp["token_logprobs"].push_back(t["logprob"]);
      lp["top_logprobs"].push_back(t["top"]);
    }
  }
  choice["logprobs"] = lp;
  if (kind_ == ApiKind::kChat) {
    choice["message"] = {{"role", "assistant"}, {"content", text_}};
  } else {
    choice["text"] = text_;
  }
  return {{"id", id_},
          {"object", kind_ == ApiKind::kChat ? "chat.completion" : "text_completion"},
          {"created", created_},
          {"model", model_},
          {"choices", {choice}},
          {"usage", usage_}};
}

json error_body(const Status& status) {
  return error_json(http_status(status), status.message(),
                    std::string(status_code_name(status.code())));
}

json error_json(int http, const std::string& message, const std::string& code) {
  const char* type = http == 400 || http == 404 || http == 413 ? "invalid_request_error"
                     : http == 401                             ? "authentication_error"
                     : http == 429                             ? "rate_limit_error"
                                                               : "server_error";
  return {{"error", {{"message", message}, {"type", type}, {"code", code}}}};
}

int http_status(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kCancelled:
      return 499;
    default:
      break;
  }
  return 500;
}

}  // namespace shardwise
