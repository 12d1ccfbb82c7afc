// Unicode normalization forms (NFC, NFD, NFKC, NFKD) through ICU, for tokenizer.json
// normalizers such as Qwen's NFC.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace shardwise::tokenizer {

enum class NormalizationForm { kNfc, kNfd, kNfkc, kNfkd };

// Normalizes valid UTF-8 text; an ICU failure (never expected) comes back as INTERNAL.
StatusOr<std::string> unicode_normalize(std::string_view text, NormalizationForm form);

}  // namespace shardwise::tokenizer
