// tokenizer.json "normalizer" section: text rewrites applied to each piece of input between
// added tokens, before pre-tokenization (Llama 2's Prepend("▁") + Replace(" ", "▁"), Qwen's NFC).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"

namespace shardwise::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual Status normalize(std::string& text) const = 0;
};

// Builds a normalizer from its JSON object. Supported types: Sequence, Prepend, Append,
// Replace (String or Regex pattern), NFC, NFD, NFKC, NFKD, Lowercase, Strip. Others give
// UNIMPLEMENTED naming the type.
StatusOr<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& spec);

}  // namespace shardwise::tokenizer
