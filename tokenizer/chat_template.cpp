#include "tokenizer/chat_template.h"

#include "tokenizer/jinja_evaluator.h"

namespace shardwise::tokenizer {

ChatTemplate::ChatTemplate(std::unique_ptr<jinja::Template> compiled)
    : compiled_(std::move(compiled)) {}

ChatTemplate::~ChatTemplate() = default;

StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::compile(const std::string& source) {
  auto compiled = jinja::Template::compile(source);
  if (!compiled.ok()) return compiled.status().with_context("chat template");
  return std::unique_ptr<ChatTemplate>(new ChatTemplate(std::move(compiled).value()));
}

StatusOr<std::string> ChatTemplate::render(const nlohmann::json& messages,
                                           bool add_generation_prompt,
                                           const nlohmann::json& special_tokens,
                                           const nlohmann::json& extra_variables) const {
  if (!messages.is_array()) return invalid_argument("chat messages must be a JSON array");
  if (!extra_variables.is_null() && !extra_variables.is_object()) {
    return invalid_argument("chat template variables must be a JSON object");
  }
  // The variables transformers' apply_chat_template passes, in the same order of precedence.
  auto globals = jinja::make_object();
  globals->set("messages", jinja::Value::from_json(messages));
  globals->set("tools", jinja::Value(nullptr));
  globals->set("documents", jinja::Value(nullptr));
  globals->set("add_generation_prompt", jinja::Value(add_generation_prompt));
  for (const auto& [key, value] : special_tokens.items()) {
    if (!value.is_null()) globals->set(key, jinja::Value::from_json(value));
  }
  if (extra_variables.is_object()) {
    for (const auto& [key, value] : extra_variables.items()) {
      globals->set(key, jinja::Value::from_json(value));
    }
  }
  auto rendered = compiled_->render(globals);
  if (!rendered.ok()) return rendered.status().with_context("chat template");
  return rendered;
}

}  // namespace shardwise::tokenizer
