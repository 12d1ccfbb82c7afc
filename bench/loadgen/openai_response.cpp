#include "bench/loadgen/openai_response.h"

#include <cstdint>

namespace shardwise::loadgen {

using json = nlohmann::json;

std::string openai_error_text(const json& body, int http_status) {
  const json* error = body.is_object() && body.contains("error") ? &body["error"] : nullptr;
  std::string code = "HTTP " + std::to_string(http_status);
  std::string message = "no error message";
  if (error != nullptr && error->is_object()) {
    if (error->contains("code") && (*error)["code"].is_string()) code = (*error)["code"];
    if (error->contains("message") && (*error)["message"].is_string()) {
      message = (*error)["message"];
    }
  }
  return code + ": " + message;
}

namespace {

// A non-negative integer field, or -1 (absent, or of another type: a server's bug is an
// unknown count, not a crash).
int count_field(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer() || it->get<int64_t>() < 0 ||
      it->get<int64_t>() > INT32_MAX) {
    return -1;
  }
  return it->get<int>();
}

}  // namespace

bool OpenAiOutcome::read(const json& j, Protocol protocol) {
  if (!j.is_object()) {
    malformed = true;
    return false;
  }
  if (j.contains("error")) {
    error = openai_error_text(j, 200);
    return false;
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    prompt_tokens = count_field(*u, "prompt_tokens");
    completion_tokens = count_field(*u, "completion_tokens");
  }
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) return false;
  const json& c = (*choices)[0];
  if (!c.is_object()) return false;
  const json* holder = protocol == Protocol::kChat ? (c.contains("delta")     ? &c["delta"]
                                                      : c.contains("message") ? &c["message"]
                                                                              : nullptr)
                                                   : &c;
  const char* key = protocol == Protocol::kChat ? "content" : "text";
  const bool has_text = holder != nullptr && holder->is_object() && holder->contains(key) &&
                        (*holder)[key].is_string() && !(*holder)[key].get<std::string>().empty();
  auto finish = c.find("finish_reason");
  const bool finished = finish != c.end() && finish->is_string();
  if (finished) finish_reason = *finish;
  return has_text || !finished;
}

}  // namespace shardwise::loadgen
