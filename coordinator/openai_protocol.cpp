#include "coordinator/openai_protocol.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/json_depth.h"
#include "coordinator/openai_fields.h"
#include "tokenizer/chat_messages.h"

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

// {"token id": bias, ...}: OpenAI's keys are token ids written as strings.
Status parse_logit_bias(const json& body, v1::SamplingParams& s) {
  auto it = body.find("logit_bias");
  if (it == body.end() || it->is_null()) return ok_status();
  if (!it->is_object()) return invalid_argument("'logit_bias' must be an object of token id: bias");
  for (const auto& [key, bias] : it->items()) {
    errno = 0;
    char* end = nullptr;
    const long long id = std::strtoll(key.c_str(), &end, 10);
    if (key.empty() || *end != '\0' || errno != 0 || id < 0 || id > INT32_MAX) {
      return invalid_argument("'logit_bias' key '{}' is not a token id", key);
    }
    if (!bias.is_number()) {
      return invalid_argument("'logit_bias' of token {} must be a number, got {}", key,
                              bias.dump());
    }
    (*s.mutable_logit_bias())[static_cast<int32_t>(id)] = bias.get<float>();
  }
  return ok_status();
}

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
  if (auto it = body.find("stop_token_ids"); it != body.end() && !it->is_null()) {
    if (!it->is_array() || !std::all_of(it->begin(), it->end(), [](const json& v) {
          return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX;
        })) {
      return invalid_argument("'stop_token_ids' must be an array of token ids");
    }
    for (const json& v : *it) s.add_stop_token_ids(v.get<int32_t>());
  }
  SW_RETURN_IF_ERROR(parse_logit_bias(body, s));
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
    return parse_chat_messages(*it, *request.mutable_chat());
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

Status parse_stream_options(const json& body, OpenAiRequest& out) {
  auto it = body.find("stream_options");
  if (it == body.end() || it->is_null()) return ok_status();
  if (!out.stream) return invalid_argument("'stream_options' is only allowed with stream: true");
  if (!it->is_object()) return invalid_argument("'stream_options' must be an object");
  for (const auto& [key, value] : it->items()) {
    if (key != "include_usage") {
      return invalid_argument("'stream_options.{}' is not supported: only include_usage", key);
    }
  }
  SW_OPTIONAL(bool, include_usage, *it, "include_usage");
  out.include_usage = include_usage.value_or(false);
  return ok_status();
}

// n, best_of and echo: how many choices are generated and returned, and what they start with.
Status parse_choices(const json& body, OpenAiRequest& out) {
  v1::SamplingParams& sampling = *out.request.mutable_sampling();
  SW_OPTIONAL(int64_t, n, body, "n");
  SW_OPTIONAL(int64_t, best_of, body, "best_of");
  SW_OPTIONAL(bool, echo, body, "echo");
  if (n && (*n < 1 || *n > kMaxOpenAiChoices)) {
    return invalid_argument("'n' must be in [1, {}], got {}", kMaxOpenAiChoices, *n);
  }
  out.n = static_cast<int>(n.value_or(1));
  if (best_of) {
    if (*best_of < out.n || *best_of > kMaxOpenAiChoices) {
      return invalid_argument("'best_of' must be in [n, {}] (n = {}), got {}", kMaxOpenAiChoices,
                              out.n, *best_of);
    }
    if (out.stream && *best_of > out.n) {
      return invalid_argument("'best_of' > n cannot be streamed");
    }
  }
  const int generated = static_cast<int>(best_of.value_or(out.n));
  if (generated > 1) sampling.set_n(generated);
  // Ranking by cumulative log-probability needs each token's.
  if (generated > out.n && !sampling.has_logprobs()) sampling.set_logprobs(0);
  out.echo = echo.value_or(false);
  if (out.echo && out.logprobs) sampling.set_prompt_logprobs(sampling.logprobs());
  return ok_status();
}

}  // namespace

Status parse_chat_messages(const json& messages, v1::ChatMessages& out) {
  SW_ASSIGN_OR_RETURN(json normalised, template_messages(messages));
  for (const json& m : normalised) {
    v1::ChatMessage* message = out.add_messages();
    message->set_role(m["role"].get<std::string>());
    message->set_content(m["content"].get<std::string>());
    message->set_name(m.value("name", ""));
    message->set_tool_call_id(m.value("tool_call_id", ""));
  }
  return ok_status();
}

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
  SW_RETURN_IF_ERROR(check_request_fields(parsed, kind));
  SW_OPTIONAL(bool, stream, parsed, "stream");
  out.stream = stream.value_or(false);
  SW_RETURN_IF_ERROR(parse_stream_options(parsed, out));
  SW_RETURN_IF_ERROR(parse_prompt(parsed, kind, out.request));
  v1::SamplingParams& sampling = *out.request.mutable_sampling();
  SW_RETURN_IF_ERROR(parse_sampling(parsed, kind, sampling));
  out.logprobs = sampling.has_logprobs();
  SW_RETURN_IF_ERROR(parse_choices(parsed, out));
  return out;
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
