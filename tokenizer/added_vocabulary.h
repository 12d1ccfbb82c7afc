// Added tokens (tokenizer.json "added_tokens"): special tokens such as <|begin_of_text|> and
// extra tokens such as Qwen's <think>. They are cut out of the input before normalization and
// BPE, by leftmost-longest matching, honouring single_word, lstrip and rstrip.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace shardwise::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A byte range of the input: an added token (id >= 0) or text for the model (id == -1).
struct TextSegment {
  std::size_t begin = 0;
  std::size_t end = 0;
  int32_t id = -1;
};

class AddedVocabulary {
 public:
  static StatusOr<AddedVocabulary> from_json(const nlohmann::json& added_tokens);

  // Splits `text` around the added tokens whose `normalized` flag equals `normalized`
  // (Hugging Face matches the raw input first, then the normalized pieces).
  void split(std::string_view text, bool normalized, std::vector<TextSegment>& out) const;

  const AddedToken* find_by_id(int32_t id) const;
  const AddedToken* find_by_content(std::string_view content) const;
  bool empty() const { return tokens_.empty(); }
  bool has_normalized_tokens() const { return normalized_trie_.size() > 1; }
  // One past the largest added-token id (0 when there are none).
  std::size_t id_limit() const;

 private:
  // Byte trie for leftmost-longest matching; node 0 is the root.
  struct TrieNode {
    std::map<unsigned char, int32_t> children;
    int32_t token_index = -1;
  };
  using Trie = std::vector<TrieNode>;

  static void insert(Trie& trie, std::string_view content, int32_t token_index);
  std::optional<std::pair<std::size_t, int32_t>> longest_match(const Trie& trie,
                                                               std::string_view text,
                                                               std::size_t pos) const;
  bool accept(const AddedToken& token, std::string_view text, std::size_t& begin, std::size_t& end,
              std::size_t previous_end) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, std::size_t> by_id_;
  Trie raw_trie_ = Trie(1);
  Trie normalized_trie_ = Trie(1);
};

}  // namespace shardwise::tokenizer
