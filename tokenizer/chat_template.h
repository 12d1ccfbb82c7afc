// A tokenizer_config.json chat template: Jinja source compiled once, rendered per request
// with the variables transformers' apply_chat_template provides.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace shardwise::tokenizer {

namespace jinja {
class Template;
}

class ChatTemplate {
 public:
  // INVALID_ARGUMENT for a syntax error, UNIMPLEMENTED naming any unsupported construct.
  static StatusOr<std::unique_ptr<ChatTemplate>> compile(const std::string& source);
  ~ChatTemplate();

  // Variables: messages, add_generation_prompt, tools and documents (none unless given),
  // the special-token strings in `special_tokens` (bos_token, ...), then `extra_variables`,
  // which may override any of them. raise_exception() in the template -> INVALID_ARGUMENT.
  StatusOr<std::string> render(const nlohmann::json& messages, bool add_generation_prompt,
                               const nlohmann::json& special_tokens,
                               const nlohmann::json& extra_variables) const;

 private:
  explicit ChatTemplate(std::unique_ptr<jinja::Template> compiled);
  std::unique_ptr<jinja::Template> compiled_;
};

}  // namespace shardwise::tokenizer
