// tokenizer.json "post_processor" section, for single sequences: the special tokens added
// around an encoding when add_special_tokens is true (Llama's <s> / <|begin_of_text|>).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "common/status.h"

namespace shardwise::tokenizer {

// What add_special_tokens adds: ids before and after the sequence.
struct SpecialTokenTemplate {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;

  void apply(std::vector<int32_t>& ids) const {
    ids.insert(ids.begin(), prefix.begin(), prefix.end());
    ids.insert(ids.end(), suffix.begin(), suffix.end());
  }
};

// Reads TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel (adds nothing) and
// Sequence; null adds nothing. Others give UNIMPLEMENTED naming the type.
StatusOr<SpecialTokenTemplate> parse_post_processor(const nlohmann::json& spec);

}  // namespace shardwise::tokenizer
