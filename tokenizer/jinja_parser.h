// Jinja parser: tokens -> syntax tree, for the statements and expressions chat templates use.
// Anything else fails with UNIMPLEMENTED naming the construct.
#pragma once

#include <string_view>

#include "tokenizer/jinja_ast.h"

namespace shardwise::tokenizer::jinja {

// Throws jinja::Error.
Body parse(std::string_view source);

}  // namespace shardwise::tokenizer::jinja
