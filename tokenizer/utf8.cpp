#include "tokenizer/utf8.h"

namespace shardwise::tokenizer {
namespace {

// Valid range of the second byte for each lead byte (Unicode Table 3-7); later continuation
// bytes are always 0x80..0xBF.
struct LeadInfo {
  std::size_t length;
  unsigned char second_lo;
  unsigned char second_hi;
};

LeadInfo lead_info(unsigned char lead) {
  if (lead < 0x80) return {1, 0, 0};
  if (lead >= 0xC2 && lead <= 0xDF) return {2, 0x80, 0xBF};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) return {3, 0x80, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead >= 0xF1 && lead <= 0xF3) return {4, 0x80, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many bytes from pos form a valid prefix of a sequence (at least 1 when invalid, so the
// lossy decoder always advances), and whether that prefix is a complete character.
struct Prefix {
  std::size_t length;
  bool complete;
};

Prefix valid_prefix(std::string_view text, std::size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const LeadInfo info = lead_info(lead);
  if (info.length == 0) return {1, false};
  if (info.length == 1) return {1, true};
  std::size_t n = 1;
  while (n < info.length && pos + n < text.size()) {
    const auto byte = static_cast<unsigned char>(text[pos + n]);
    const unsigned char lo = n == 1 ? info.second_lo : 0x80;
    const unsigned char hi = n == 1 ? info.second_hi : 0xBF;
    if (byte < lo || byte > hi) return {n, false};
    ++n;
  }
  return {n, n == info.length};
}

}  // namespace

std::size_t utf8_sequence_length(std::string_view text, std::size_t pos) {
  const Prefix prefix = valid_prefix(text, pos);
  return prefix.complete ? prefix.length : 0;
}

std::size_t find_invalid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const std::size_t length = utf8_sequence_length(text, pos);
    if (length == 0) return pos;
    pos += length;
  }
  return text.size();
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t decode_utf8_at(std::string_view text, std::size_t pos, std::size_t length) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  switch (length) {
    case 1:
      return byte(0);
    case 2:
      return ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
    case 3:
      return ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    default:
      return ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) |
             (byte(3) & 0x3F);
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const Prefix prefix = valid_prefix(bytes, pos);
    if (prefix.complete) {
      out.append(bytes.substr(pos, prefix.length));
    } else {
      out.append(kReplacementChar);
    }
    pos += prefix.length;
  }
  return out;
}

std::size_t incomplete_utf8_tail(std::string_view bytes) {
  const std::size_t first = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (std::size_t pos = first; pos < bytes.size(); ++pos) {
    if (lead_info(static_cast<unsigned char>(bytes[pos])).length < 2) continue;
    const Prefix prefix = valid_prefix(bytes, pos);
    if (!prefix.complete && pos + prefix.length == bytes.size()) return bytes.size() - pos;
  }
  return 0;
}

}  // namespace shardwise::tokenizer
