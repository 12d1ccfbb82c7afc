// A compiled PCRE2 pattern (UTF + UCP, JIT when available) for the pre-tokenizer and
// normalizer regexes of tokenizer.json. Hugging Face compiles these with Oniguruma; the
// differences that matter (what \s means) are bridged when compiling.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace shardwise::tokenizer {

class Regex {
 public:
  static StatusOr<std::unique_ptr<Regex>> compile(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches, left to right, as [begin, end) byte offsets. `text` must be
  // valid UTF-8. Empty matches are skipped, as Hugging Face's splitting does.
  Status find_all(std::string_view text,
                  std::vector<std::pair<std::size_t, std::size_t>>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  Regex(std::string pattern, std::unique_ptr<Impl> impl);

  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

// Rewrites \s and \S into explicit classes of Unicode White_Space (what Oniguruma and Rust's
// regex match). PCRE2's \s with UCP also matches U+180E and misses nothing else.
std::string rewrite_whitespace_classes(std::string_view pattern);

}  // namespace shardwise::tokenizer
