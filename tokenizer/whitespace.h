// Unicode White_Space tests on UTF-8 text, matching Rust's char::is_whitespace (used by
// Hugging Face's Strip normalizer and by added-token lstrip/rstrip).
#pragma once

#include <string_view>

namespace shardwise::tokenizer {

bool is_unicode_whitespace(char32_t code_point);
std::string_view strip_leading_whitespace(std::string_view text);
std::string_view strip_trailing_whitespace(std::string_view text);

}  // namespace shardwise::tokenizer
