// GPT-2's reversible byte <-> printable-character mapping used by byte-level BPE vocabularies
// (Llama 3, Qwen): every byte maps to one code point so that vocabularies hold no raw bytes.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace shardwise::tokenizer {

// UTF-8 of the character that stands for each byte (e.g. ' ' -> "Ġ").
const std::array<std::string, 256>& byte_to_unicode();

// The byte a character stands for, if it is one of the 256 mapped characters.
std::optional<unsigned char> unicode_to_byte(char32_t code_point);

// Maps every byte of `bytes` to its character and appends the UTF-8 result.
void append_byte_level(std::string& out, std::string_view bytes);

// Inverse of append_byte_level for a whole token: nullopt when some character is not mapped.
std::optional<std::string> byte_level_to_bytes(std::string_view token);

}  // namespace shardwise::tokenizer
