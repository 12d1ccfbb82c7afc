#include "coordinator/openai_response.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <numeric>

namespace shardwise {
namespace {

using json = nlohmann::json;

#ifndef SHARDWISE_BUILD_ID
#define SHARDWISE_BUILD_ID "unknown"
#endif

std::string new_id(ApiKind kind) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{}-{}-{}", kind == ApiKind::kChat ? "chatcmpl" : "cmpl",
                     std::chrono::system_clock::now().time_since_epoch().count(), ++counter);
}

json utf8_bytes(const std::string& text) {
  json bytes = json::array();
  for (unsigned char c : text) bytes.push_back(c);
  return bytes;
}

}  // namespace

const std::string& system_fingerprint() {
  static const std::string fingerprint = std::string("fp_") + SHARDWISE_BUILD_ID;
  return fingerprint;
}

OpenAiResponse::OpenAiResponse(const OpenAiRequest& request, const PreparedRequest& prepared)
    : request_(request),
      prepared_(prepared),
      id_(new_id(request.kind)),
      created_(std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()),
      choices_(std::max<std::size_t>(prepared.seeds.size(), 1)) {
  if (!request.echo) return;
  if (request.request.has_text()) {
    prompt_text_ = request.request.text();
  } else if (auto text = prepared.tokenizer->decode(prepared.prompt_ids, true); text.ok()) {
    prompt_text_ = *text;
  }
}

std::string OpenAiResponse::token_text(int32_t id) const {
  const int32_t ids[] = {id};
  StatusOr<std::string> text = prepared_.tokenizer->decode(ids, /*skip_special_tokens=*/false);
  return text.ok() ? *text : "";
}

// Chat: {"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]};
// completions: {"token", "logprob", "top": {token: logprob}, "offset"}, gathered by
// logprobs_json() into OpenAI's parallel arrays.
json OpenAiResponse::token_logprob(const v1::GenerateResponse& message, int offset) const {
  const std::string token = token_text(message.token_ids(0));
  if (request_.kind == ApiKind::kChat) {
    json top = json::array();
    for (const auto& t : message.top_logprobs()) {
      const std::string text = token_text(t.token_id());
      top.push_back({{"token", text}, {"logprob", t.logprob()}, {"bytes", utf8_bytes(text)}});
    }
    return {{"token", token},
            {"logprob", message.logprob()},
            {"bytes", utf8_bytes(token)},
            {"top_logprobs", top}};
  }
  json top = json::object();
  for (const auto& t : message.top_logprobs()) top[token_text(t.token_id())] = t.logprob();
  return {{"token", token}, {"logprob", message.logprob()}, {"top", top}, {"offset", offset}};
}

json OpenAiResponse::logprobs_json(const json& entries) const {
  if (request_.kind == ApiKind::kChat) return {{"content", entries}};
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const json& t : entries) {
    out["tokens"].push_back(t["token"]);
    out["token_logprobs"].push_back(t["logprob"]);
    out["top_logprobs"].push_back(t["top"]);
    out["text_offset"].push_back(t["offset"]);
  }
  return out;
}

json OpenAiResponse::envelope(const char* object) const {
  return {{"id", id_},
          {"object", object},
          {"created", created_},
          {"model", prepared_.model},
          {"system_fingerprint", system_fingerprint()}};
}

json OpenAiResponse::usage() const {
  const int prompt = static_cast<int>(prepared_.prompt_ids.size());
  int completion = 0;
  for (const Choice& c : choices_) completion += c.completion_tokens;
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

json OpenAiResponse::start_choice(Choice& choice) {
  choice.started = true;
  return request_.echo && request_.logprobs ? prompt_logprobs_ : json::array();
}

std::vector<json> OpenAiResponse::chunks(const v1::GenerateResponse& message) {
  if (!message.prompt_logprobs().empty()) {
    // The first prompt token has no log-probability (nothing comes before it).
    int offset = 0;
    auto add = [&](int32_t id, json logprob, json top) {
      const std::string token = token_text(id);
      prompt_logprobs_.push_back(
          {{"token", token}, {"logprob", logprob}, {"top", top}, {"offset", offset}});
      offset += static_cast<int>(token.size());
    };
    add(prepared_.prompt_ids.front(), nullptr, nullptr);
    for (const v1::TokenLogprob& t : message.prompt_logprobs()) {
      json top = json::object();
      for (const auto& alternative : t.top_logprobs()) {
        top[token_text(alternative.token_id())] = alternative.logprob();
      }
      add(t.token_id(), t.logprob(), top);
    }
    return {};
  }
  const std::size_t index = std::min<std::size_t>(message.index(), choices_.size() - 1);
  Choice& choice = choices_[index];
  const int offset =
      static_cast<int>((request_.echo ? prompt_text_.size() : 0) + choice.text.size());
  json logprobs = json::array();
  const bool first = !choice.started;
  if (first) logprobs = start_choice(choice);
  if (message.has_logprob() && !message.token_ids().empty()) {
    const json entry = token_logprob(message, offset);
    choice.logprobs.push_back(entry);
    choice.cumulative_logprob += message.logprob();
    logprobs.push_back(entry);
  }
  choice.text += message.text();
  if (!message.finish_reason().empty()) {
    choice.finish_reason = message.finish_reason();
    choice.completion_tokens = message.usage().completion_tokens();
  }
  json out_choice = {
      {"index", index},
      {"finish_reason",
       message.finish_reason().empty() ? json(nullptr) : json(message.finish_reason())}};
  const bool with_logprobs = request_.logprobs && !logprobs.empty();
  out_choice["logprobs"] = with_logprobs ? logprobs_json(logprobs) : json(nullptr);
  if (request_.kind == ApiKind::kChat) {
    json delta = {{"content", message.text()}};
    if (first) delta["role"] = "assistant";
    out_choice["delta"] = delta;
  } else {
    out_choice["text"] = (first && request_.echo ? prompt_text_ : "") + message.text();
  }
  json chunk =
      envelope(request_.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion");
  chunk["choices"] = json::array({out_choice});
  if (request_.include_usage) chunk["usage"] = nullptr;
  return {chunk};
}

json OpenAiResponse::usage_chunk() const {
  if (!request_.include_usage) return nullptr;
  json chunk =
      envelope(request_.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion");
  chunk["choices"] = json::array();
  chunk["usage"] = usage();
  return chunk;
}

json OpenAiResponse::full() const {
  // best_of: the n choices of highest cumulative log-probability, in that order.
  std::vector<std::size_t> order(choices_.size());
  std::iota(order.begin(), order.end(), 0);
  if (static_cast<int>(choices_.size()) > request_.n) {
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return choices_[a].cumulative_logprob > choices_[b].cumulative_logprob;
    });
    order.resize(request_.n);
  }
  json choices = json::array();
  for (std::size_t k = 0; k < order.size(); ++k) {
    const Choice& c = choices_[order[k]];
    json choice = {{"index", k}, {"finish_reason", c.finish_reason}};
    json entries = request_.echo ? prompt_logprobs_ : json::array();
    entries.insert(entries.end(), c.logprobs.begin(), c.logprobs.end());
    choice["logprobs"] = request_.logprobs ? logprobs_json(entries) : json(nullptr);
    if (request_.kind == ApiKind::kChat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    } else {
      choice["text"] = (request_.echo ? prompt_text_ : "") + c.text;
    }
    choices.push_back(std::move(choice));
  }
  json out = envelope(request_.kind == ApiKind::kChat ? "chat.completion" : "text_completion");
  out["choices"] = std::move(choices);
  out["usage"] = usage();
  return out;
}

}  // namespace shardwise
