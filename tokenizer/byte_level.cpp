#include "tokenizer/byte_level.h"

#include <vector>

#include "tokenizer/utf8.h"

namespace shardwise::tokenizer {
namespace {

// Printable bytes keep their own code point; the rest map to 256, 257, ... in byte order.
struct Tables {
  std::array<std::string, 256> to_unicode;
  std::vector<int> to_byte;  // indexed by code point, -1 when unmapped

  Tables() : to_byte(512, -1) {
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : next++;
      append_utf8(to_unicode[b], static_cast<char32_t>(cp));
      to_byte[cp] = b;
    }
  }
};

const Tables& tables() {
  static const Tables kTables;
  return kTables;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return tables().to_unicode; }

std::optional<unsigned char> unicode_to_byte(char32_t code_point) {
  const auto& to_byte = tables().to_byte;
  if (code_point >= to_byte.size() || to_byte[code_point] < 0) return std::nullopt;
  return static_cast<unsigned char>(to_byte[code_point]);
}

void append_byte_level(std::string& out, std::string_view bytes) {
  const auto& map = tables().to_unicode;
  for (const char c : bytes) out += map[static_cast<unsigned char>(c)];
}

std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  std::size_t pos = 0;
  while (pos < token.size()) {
    const std::size_t length = utf8_sequence_length(token, pos);
    if (length == 0) return std::nullopt;
    const auto byte = unicode_to_byte(decode_utf8_at(token, pos, length));
    if (!byte) return std::nullopt;
    out.push_back(static_cast<char>(*byte));
    pos += length;
  }
  return out;
}

}  // namespace shardwise::tokenizer
