// UTF-8 helpers shared by the tokenizer pipeline: validation, code point iteration and the
// lossy conversion Rust's String::from_utf8_lossy performs (which Hugging Face decoders use).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardwise::tokenizer {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Byte offset of the first invalid sequence, or text.size() when the text is valid UTF-8.
std::size_t find_invalid_utf8(std::string_view text);
inline bool is_valid_utf8(std::string_view text) { return find_invalid_utf8(text) == text.size(); }

// Length in bytes of the well-formed sequence starting at text[pos], 0 when it is not one.
std::size_t utf8_sequence_length(std::string_view text, std::size_t pos);

// Appends the UTF-8 encoding of a code point.
void append_utf8(std::string& out, char32_t code_point);

// Decodes the well-formed sequence at text[pos] (callers check utf8_sequence_length first).
char32_t decode_utf8_at(std::string_view text, std::size_t pos, std::size_t length);

// Replaces every maximal invalid subpart with U+FFFD, as Rust's from_utf8_lossy does.
std::string utf8_lossy(std::string_view bytes);

// Number of trailing bytes that form an incomplete but so far valid multi-byte sequence
// (0 to 3): more bytes could still complete it into a character.
std::size_t incomplete_utf8_tail(std::string_view bytes);

}  // namespace shardwise::tokenizer
