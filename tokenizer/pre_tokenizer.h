// tokenizer.json "pre_tokenizer" section: splits each normalized piece into the words the
// model encodes independently (Llama 3's regex Split + ByteLevel, SentencePiece's Metaspace).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace shardwise::tokenizer {

struct Piece {
  std::string text;
  // True when the piece starts at offset 0 of the original input (Metaspace "first").
  bool at_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their splits; empty pieces are dropped.
  virtual Status pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// Supported types: Sequence, Split (String or Regex pattern, every split behaviour, invert),
// ByteLevel (add_prefix_space, use_regex), Metaspace (prepend_scheme, split). Others give
// UNIMPLEMENTED naming the type.
StatusOr<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& spec);

}  // namespace shardwise::tokenizer
