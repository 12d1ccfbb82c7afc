// tokenizer.json "decoder" section: turns the token strings of decoded ids back into text
// (ByteLevel for Llama 3/Qwen; Replace + ByteFallback + Fuse + Strip for SentencePiece BPE).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace shardwise::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token strings in place, like Hugging Face's decode_chain; the text is their
  // concatenation afterwards.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // True when the decoder turns <0xNN> tokens into bytes (then a run of them may still change
  // meaning when more arrive, which the incremental decoder must respect).
  virtual bool uses_byte_fallback() const { return false; }
};

// Supported types: Sequence, ByteLevel, Replace (String or Regex), ByteFallback, Fuse, Strip,
// Metaspace. Others give UNIMPLEMENTED naming the type.
StatusOr<std::unique_ptr<Decoder>> make_decoder(const nlohmann::json& spec);

// Token text "<0xNN>" -> the byte, as the ByteFallback decoder reads it.
std::optional<unsigned char> parse_byte_token(std::string_view token);

}  // namespace shardwise::tokenizer
