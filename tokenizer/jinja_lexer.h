// Jinja lexer: splits template source into text and tag tokens, applying the whitespace rules
// of transformers' environment (trim_blocks, lstrip_blocks, '-' and '+' markers, and the
// removal of one trailing newline).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shardwise::tokenizer::jinja {

struct Token {
  enum class Kind {
    kText,        // literal output
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,
    kString,
    kInt,
    kFloat,
    kOperator,
    kEnd,
  };
  Kind kind;
  std::string text;
  int line = 1;
};

// Throws jinja::Error on an unterminated tag, string or comment.
std::vector<Token> lex(std::string_view source);

}  // namespace shardwise::tokenizer::jinja
