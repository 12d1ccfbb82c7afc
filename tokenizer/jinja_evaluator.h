// A compiled Jinja template and its renderer.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tokenizer/jinja_ast.h"

namespace shardwise::tokenizer::jinja {

class Template {
 public:
  // INVALID_ARGUMENT on a syntax error, UNIMPLEMENTED for constructs outside the subset.
  static StatusOr<std::unique_ptr<Template>> compile(std::string_view source);

  // Renders with the given global variables (an object). Errors, including
  // raise_exception(), come back as INVALID_ARGUMENT with the message.
  StatusOr<std::string> render(const std::shared_ptr<Object>& globals) const;

 private:
  explicit Template(Body body) : body_(std::move(body)) {}
  Body body_;
};

}  // namespace shardwise::tokenizer::jinja
