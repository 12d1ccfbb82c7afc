#include "tokenizer/added_vocabulary.h"

#include <unicode/uchar.h>

#include <nlohmann/json.hpp>

#include "tokenizer/utf8.h"
#include "tokenizer/whitespace.h"

namespace shardwise::tokenizer {
namespace {

using nlohmann::json;

// The code point that ends text[0, end) (end > 0, valid UTF-8).
char32_t last_code_point(std::string_view text, std::size_t end) {
  std::size_t begin = end - 1;
  while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
  return decode_utf8_at(text, begin, end - begin);
}

bool is_word_char(char32_t c) { return c == U'_' || u_isalnum(static_cast<UChar32>(c)); }

}  // namespace

StatusOr<AddedVocabulary> AddedVocabulary::from_json(const json& added_tokens) {
  AddedVocabulary vocab;
  if (added_tokens.is_null()) return vocab;
  if (!added_tokens.is_array()) return invalid_argument("added_tokens must be an array");
  for (const json& entry : added_tokens) {
    AddedToken token;
    token.id = entry.at("id").get<int32_t>();
    token.content = entry.at("content").get<std::string>();
    token.single_word = entry.value("single_word", false);
    token.lstrip = entry.value("lstrip", false);
    token.rstrip = entry.value("rstrip", false);
    token.normalized = entry.value("normalized", false);
    token.special = entry.value("special", false);
    if (token.content.empty()) return invalid_argument("added token {} is empty", token.id);
    if (vocab.by_id_.contains(token.id)) {
      return invalid_argument("added token id {} appears twice", token.id);
    }
    const auto index = static_cast<int32_t>(vocab.tokens_.size());
    insert(token.normalized ? vocab.normalized_trie_ : vocab.raw_trie_, token.content, index);
    vocab.by_id_.emplace(token.id, vocab.tokens_.size());
    vocab.tokens_.push_back(std::move(token));
  }
  return vocab;
}

void AddedVocabulary::insert(Trie& trie, std::string_view content, int32_t token_index) {
  int32_t node = 0;
  for (const char c : content) {
    const auto byte = static_cast<unsigned char>(c);
    const auto it = trie[node].children.find(byte);
    if (it != trie[node].children.end()) {
      node = it->second;
      continue;
    }
    const auto child = static_cast<int32_t>(trie.size());
    trie[node].children.emplace(byte, child);
    trie.emplace_back();
    node = child;
  }
  trie[node].token_index = token_index;
}

std::optional<std::pair<std::size_t, int32_t>> AddedVocabulary::longest_match(
    const Trie& trie, std::string_view text, std::size_t pos) const {
  std::optional<std::pair<std::size_t, int32_t>> best;
  int32_t node = 0;
  for (std::size_t i = pos; i < text.size(); ++i) {
    const auto it = trie[node].children.find(static_cast<unsigned char>(text[i]));
    if (it == trie[node].children.end()) break;
    node = it->second;
    if (trie[node].token_index >= 0) best = std::make_pair(i + 1, trie[node].token_index);
  }
  return best;
}

// Applies single_word (reject the match inside a word) and lstrip/rstrip (absorb the
// surrounding whitespace), as Hugging Face's AddedVocabulary::find_matches does.
bool AddedVocabulary::accept(const AddedToken& token, std::string_view text, std::size_t& begin,
                             std::size_t& end, std::size_t previous_end) const {
  if (token.single_word) {
    const bool space_before = begin == 0 || !is_word_char(last_code_point(text, begin));
    const bool space_after = end == text.size() || !is_word_char(decode_utf8_at(
                                                       text, end, utf8_sequence_length(text, end)));
    if (!space_before || !space_after) return false;
  }
  if (token.lstrip) {
    const std::size_t stripped = strip_trailing_whitespace(text.substr(0, begin)).size();
    begin = std::max(stripped, previous_end);
  }
  if (token.rstrip) {
    const std::string_view rest = text.substr(end);
    end += rest.size() - strip_leading_whitespace(rest).size();
  }
  return true;
}

void AddedVocabulary::split(std::string_view text, bool normalized,
                            std::vector<TextSegment>& out) const {
  const Trie& trie = normalized ? normalized_trie_ : raw_trie_;
  std::size_t previous_end = 0;
  std::size_t pos = 0;
  while (pos < text.size() && trie.size() > 1) {
    const auto match = longest_match(trie, text, pos);
    if (!match) {
      ++pos;
      continue;
    }
    std::size_t begin = pos;
    std::size_t end = match->first;
    pos = end;
    const AddedToken& token = tokens_[match->second];
    if (!accept(token, text, begin, end, previous_end)) continue;
    if (begin > previous_end) out.push_back({previous_end, begin, -1});
    out.push_back({begin, end, token.id});
    previous_end = end;
    pos = std::max(pos, end);
  }
  if (previous_end < text.size()) out.push_back({previous_end, text.size(), -1});
}

const AddedToken* AddedVocabulary::find_by_id(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find_by_content(std::string_view content) const {
  for (const AddedToken& token : tokens_) {
    if (token.content == content) return &token;
  }
  return nullptr;
}

std::size_t AddedVocabulary::id_limit() const {
  std::size_t limit = 0;
  for (const AddedToken& token : tokens_) {
    limit = std::max(limit, static_cast<std::size_t>(token.id) + 1);
  }
  return limit;
}

}  // namespace shardwise::tokenizer
