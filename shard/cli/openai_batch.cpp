#include "shard/cli/openai_batch.h"

#include <chrono>

#include "common/json_integer.h"

namespace shardwise::cli {
namespace {

using nlohmann::json;

constexpr int kMaxChoices = 16;

// Body fields besides the sampling parameters (is_sampling_field) that a batch request honours.
bool is_request_field(BatchEndpoint endpoint, const std::string& name) {
  if (name == "model" || name == "n" || name == "user") return true;
  if (endpoint == BatchEndpoint::kCompletions) return name == "prompt";
  return name == "messages" || name == "max_completion_tokens" || name == "top_logprobs";
}

Status read_prompt(const json& body, BatchItem& item) {
  if (item.endpoint == BatchEndpoint::kChat) {
    auto it = body.find("messages");
    if (it == body.end()) return invalid_argument("'messages' is required");
    item.messages = *it;  // checked when it is rendered (tokenizer/chat_messages.h)
    return ok_status();
  }
  auto it = body.find("prompt");
  if (it == body.end()) return invalid_argument("'prompt' is required");
  if (it->is_string()) {
    item.prompt = it->get<std::string>();
  } else if (it->is_array() && !it->empty() &&
             std::all_of(it->begin(), it->end(), json_holds<int32_t>)) {
    for (const json& v : *it) item.token_ids.push_back(v.get<int32_t>());
  } else {
    return invalid_argument("'prompt' must be a string or a non-empty array of token ids");
  }
  return ok_status();
}

// The body's own fields; OpenAI's names where they differ from a shardwise line's.
Status read_body(const json& body, BatchItem& item) {
  if (!body.is_object()) return invalid_argument("'body' must be a JSON object");
  for (const auto& [name, value] : body.items()) {
    if (value.is_null()) continue;
    if (!is_sampling_field(name) && !is_request_field(item.endpoint, name)) {
      return invalid_argument("'{}' is not supported by shardwise batch", name);
    }
  }
  if (auto it = body.find("model"); it != body.end() && it->is_string()) item.model = *it;
  SW_RETURN_IF_ERROR(read_prompt(body, item));
  json sampling = body;
  if (item.endpoint == BatchEndpoint::kChat) {
    // Chat: "logprobs": true with "top_logprobs": N.
    sampling.erase("logprobs");
    if (body.value("logprobs", json(false)) == true) {
      sampling["logprobs"] = body.value("top_logprobs", json(0));
    }
    if (auto it = body.find("max_completion_tokens"); it != body.end() && !it->is_null()) {
      sampling["max_tokens"] = *it;
    }
  }
  SW_RETURN_IF_ERROR(read_sampling(sampling, item.sampling, item.stop));
  if (auto it = body.find("n"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || *it < 1 || *it > kMaxChoices) {
      return invalid_argument("'n' must be in [1, {}], got {}", kMaxChoices, it->dump());
    }
    item.n = it->get<int>();
  }
  return ok_status();
}

json logprobs_json(const BatchItem& item, const BatchResult& result, const Tokenizer* tokenizer) {
  auto text = [&](int32_t id) {
    const int32_t ids[] = {id};
    if (!tokenizer) return std::string();
    StatusOr<std::string> piece = tokenizer->decode(ids, /*skip_special_tokens=*/false);
    return piece.ok() ? *piece : std::string();
  };
  json entries = json::array();
  for (std::size_t i = 0; i < result.logprobs.size() && i < result.tokens.size(); ++i) {
    const TokenLogprobs& lp = result.logprobs[i];
    json top = item.endpoint == BatchEndpoint::kChat ? json::array() : json::object();
    for (const auto& [id, logprob] : lp.top) {
      if (item.endpoint == BatchEndpoint::kChat) {
        top.push_back({{"token", text(id)}, {"logprob", logprob}});
      } else {
        top[text(id)] = logprob;
      }
    }
    entries.push_back(
        {{"token", text(result.tokens[i])}, {"logprob", lp.logprob}, {"top_logprobs", top}});
  }
  if (item.endpoint == BatchEndpoint::kChat) return {{"content", entries}};
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()}};
  for (const json& e : entries) {
    out["tokens"].push_back(e["token"]);
    out["token_logprobs"].push_back(e["logprob"]);
    out["top_logprobs"].push_back(e["top_logprobs"]);
  }
  return out;
}

json error_line(const std::string& id, const BatchItem& item, const std::string& message) {
  return {{"id", id},
          {"custom_id", item.custom_id},
          {"response",
           {{"status_code", 400},
            {"request_id", id},
            {"body",
             {{"error",
               {{"message", message}, {"type", "invalid_request_error"}, {"code", nullptr}}}}}}},
          {"error", nullptr}};
}

}  // namespace

StatusOr<BatchItem> parse_openai_batch_line(const json& line, uint64_t default_seed) {
  for (const auto& [name, value] : line.items()) {
    if (name != "custom_id" && name != "method" && name != "url" && name != "body") {
      return invalid_argument("unknown field \"{}\" in an OpenAI batch line", name);
    }
  }
  BatchItem item;
  item.format = BatchFormat::kOpenAi;
  if (!line["custom_id"].is_string()) return invalid_argument("\"custom_id\" must be a string");
  item.custom_id = line["custom_id"];
  if (line.value("method", json()) != "POST") {
    return invalid_argument("\"method\" must be \"POST\"");
  }
  const json url = line.value("url", json());
  if (url == "/v1/completions") {
    item.endpoint = BatchEndpoint::kCompletions;
  } else if (url == "/v1/chat/completions") {
    item.endpoint = BatchEndpoint::kChat;
  } else {
    return invalid_argument(
        "\"url\" {} is not served by shardwise batch: /v1/completions or /v1/chat/completions",
        url.dump());
  }
  if (!line.contains("body")) return invalid_argument("\"body\" is required");
  item.sampling.seed = default_seed;
  item.error = read_body(line["body"], item);
  return item;
}

json openai_output_line(const BatchItem& item, std::span<const BatchResult> choices,
                        int prompt_tokens, const Tokenizer* tokenizer, int line) {
  const std::string id = "batch_req_" + std::to_string(line);
  if (!item.error.ok()) return error_line(id, item, item.error.message());
  for (const BatchResult& result : choices) {
    if (!result.error.empty()) return error_line(id, item, result.error);
  }
  const bool chat = item.endpoint == BatchEndpoint::kChat;
  json out_choices = json::array();
  int completion_tokens = 0;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    const BatchResult& result = choices[i];
    completion_tokens += static_cast<int>(result.tokens.size());
    json choice = {{"index", i},
                   {"finish_reason", result.finish_reason},
                   {"logprobs", item.sampling.logprobs ? logprobs_json(item, result, tokenizer)
                                                       : json(nullptr)}};
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", result.text}};
    } else {
      choice["text"] = result.text;
    }
    out_choices.push_back(std::move(choice));
  }
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  json body = {{"id", (chat ? "chatcmpl-" : "cmpl-") + item.custom_id},
               {"object", chat ? "chat.completion" : "text_completion"},
               {"created", created},
               {"model", item.model},
               {"choices", std::move(out_choices)},
               {"usage",
                {{"prompt_tokens", prompt_tokens},
                 {"completion_tokens", completion_tokens},
                 {"total_tokens", prompt_tokens + completion_tokens}}}};
  return {{"id", id},
          {"custom_id", item.custom_id},
          {"response", {{"status_code", 200}, {"request_id", id}, {"body", std::move(body)}}},
          {"error", nullptr}};
}

}  // namespace shardwise::cli
