#include "tokenizer/chat_messages.h"

#include <set>
#include <string>

namespace shardwise {
namespace {

using json = nlohmann::json;

StatusOr<std::string> content_text(const json& message, std::size_t index) {
  auto it = message.find("content");
  if (it != message.end() && it->is_string()) return it->get<std::string>();
  if (it == message.end() || !it->is_array()) {
    return invalid_argument("message {}: 'content' must be a string or an array of text parts",
                            index);
  }
  std::string text;
  for (const json& part : *it) {
    const std::string type =
        part.is_object() && part.contains("type") && part["type"].is_string() ? part["type"] : "";
    if (type != "text") {
      return invalid_argument(
          "message {}: content part of type '{}' is not supported: only text parts", index,
          type.empty() ? std::string("(none: a ") + part.type_name() + ")" : type);
    }
    auto part_text = part.find("text");
    if (part_text == part.end() || !part_text->is_string()) {
      return invalid_argument("message {}: a text part needs a string 'text'", index);
    }
    if (!text.empty()) text += "\n";
    text += part_text->get<std::string>();
  }
  return text;
}

}  // namespace

StatusOr<json> template_messages(const json& messages) {
  if (!messages.is_array() || messages.empty()) {
    return invalid_argument("'messages' must be a non-empty array");
  }
  static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant", "tool"};
  json out = json::array();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return invalid_argument("message {} needs a string 'role' and a 'content'", i);
    }
    const std::string role = m["role"];
    if (!kRoles.contains(role)) {
      return invalid_argument(
          "message {}: unsupported role '{}': use system, developer, user, assistant or tool", i,
          role);
    }
    if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
      return invalid_argument(
          "message {}: 'tool_calls' is not supported: shardwise has no tool calling", i);
    }
    SW_ASSIGN_OR_RETURN(std::string content, content_text(m, i));
    json message = {{"role", role == "developer" ? "system" : role}, {"content", content}};
    for (const char* field : {"name", "tool_call_id"}) {
      auto it = m.find(field);
      if (it == m.end() || it->is_null()) continue;
      if (!it->is_string()) return invalid_argument("message {}: '{}' must be a string", i, field);
      if (!it->get<std::string>().empty()) message[field] = *it;
    }
    out.push_back(std::move(message));
  }
  return out;
}

}  // namespace shardwise
