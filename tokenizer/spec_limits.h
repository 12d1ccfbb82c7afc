// Limits on tokenizer.json, tokenizer_config.json and generation_config.json. They reach the
// coordinator inside a shard's registration, so a malformed or hostile file must be refused with
// a Status before it costs much more memory than its own size, or CPU on every request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace shardwise::tokenizer {

// Steps of one normalizer, pre-tokenizer, decoder or post-processor section, Sequences
// included: each runs over every request (real tokenizers have up to about 5).
inline constexpr std::size_t kMaxPipelineSteps = 64;
// Tokens a post-processor adds around each sequence (real ones add one or two).
inline constexpr std::size_t kMaxPostProcessorTokens = 64;
// Bytes of one added token, and of all of them: their trie costs ~100 bytes per byte.
inline constexpr std::size_t kMaxAddedTokenBytes = 1024;
inline constexpr std::size_t kMaxAddedTokensBytes = std::size_t{256} << 10;
// Token ids: far beyond any real vocabulary (~256k), small enough that nothing sized by one
// can be large. The BPE vocabulary is also dense: its id table is sized by the largest id.
inline constexpr int32_t kMaxTokenId = (1 << 24) - 1;

// A token id in one of these files: an integer in [0, kMaxTokenId], never narrowed.
StatusOr<int32_t> token_id_from_json(const nlohmann::json& value, std::string_view what);

// A count at `key` of `spec` (a Strip decoder's start and stop): 0 when absent, else a
// non-negative integer. A fraction, a sign or a number past uint64 (parsed as a double, whose
// conversion would be undefined) is INVALID_ARGUMENT.
StatusOr<std::size_t> count_from_json(const nlohmann::json& spec, const char* key,
                                      std::string_view what);

// INVALID_ARGUMENT when `section` (a normalizer, pre_tokenizer, decoder or post_processor
// object, Sequences nested in it included) has more than kMaxPipelineSteps steps.
Status check_pipeline_size(const nlohmann::json& section, std::string_view what);

}  // namespace shardwise::tokenizer
