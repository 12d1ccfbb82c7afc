#include "tokenizer/whitespace.h"

#include "tokenizer/utf8.h"

namespace shardwise::tokenizer {

bool is_unicode_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

std::string_view strip_leading_whitespace(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t length = utf8_sequence_length(text, pos);
    if (length == 0 || !is_unicode_whitespace(decode_utf8_at(text, pos, length))) break;
    pos += length;
  }
  return text.substr(pos);
}

std::string_view strip_trailing_whitespace(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t begin = end - 1;
    while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
    const std::size_t length = utf8_sequence_length(text, begin);
    if (length != end - begin || !is_unicode_whitespace(decode_utf8_at(text, begin, length))) {
      break;
    }
    end = begin;
  }
  return text.substr(0, end);
}

}  // namespace shardwise::tokenizer
