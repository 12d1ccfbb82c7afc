#include "tokenizer/bpe_model.h"

#include <fmt/format.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>

#include "tokenizer/utf8.h"

namespace shardwise::tokenizer {
namespace {

using nlohmann::json;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

std::optional<std::string> optional_string(const json& model, const char* key) {
  const auto it = model.find(key);
  if (it == model.end() || it->is_null()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

StatusOr<std::unique_ptr<BpeModel>> BpeModel::from_json(const json& model) {
  std::unique_ptr<BpeModel> bpe(new BpeModel());
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      model["dropout"].get<double>() > 0.0) {
    return unimplemented("BPE dropout is not supported (it makes encoding random)");
  }
  SW_RETURN_IF_ERROR(bpe->load_vocab(model.at("vocab")));
  SW_RETURN_IF_ERROR(bpe->load_merges(model.at("merges")));
  bpe->unk_token_ = optional_string(model, "unk_token");
  if (bpe->unk_token_) {
    bpe->unk_id_ = bpe->token_to_id(*bpe->unk_token_);
    if (!bpe->unk_id_) {
      return invalid_argument("BPE unk_token '{}' is not in the vocabulary", *bpe->unk_token_);
    }
  }
  bpe->continuing_subword_prefix_ =
      optional_string(model, "continuing_subword_prefix").value_or("");
  bpe->end_of_word_suffix_ = optional_string(model, "end_of_word_suffix").value_or("");
  bpe->fuse_unk_ = model.value("fuse_unk", false);
  bpe->byte_fallback_ = model.value("byte_fallback", false);
  bpe->ignore_merges_ = model.value("ignore_merges", false);
  for (int b = 0; b < 256; ++b) {
    bpe->byte_ids_[b] = bpe->token_to_id(fmt::format("<0x{:02X}>", b)).value_or(-1);
  }
  return bpe;
}

Status BpeModel::load_vocab(const json& vocab) {
  if (!vocab.is_object()) return invalid_argument("BPE vocab must be an object");
  vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (const auto& [token, id_json] : vocab.items()) {
    const auto id = id_json.get<int64_t>();
    if (id < 0 || id > INT32_MAX) return invalid_argument("BPE vocab id {} out of range", id);
    vocab_.emplace(token, static_cast<int32_t>(id));
    max_id = std::max(max_id, static_cast<int32_t>(id));
  }
  id_to_token_.assign(static_cast<std::size_t>(max_id + 1), std::string());
  has_token_.assign(id_to_token_.size(), false);
  for (const auto& [token, id] : vocab_) {
    id_to_token_[id] = token;
    has_token_[id] = true;
  }
  return ok_status();
}

Status BpeModel::load_merges(const json& merges) {
  if (!merges.is_array()) return invalid_argument("BPE merges must be an array");
  merges_.reserve(merges.size());
  uint32_t rank = 0;
  for (const json& merge : merges) {
    std::string left;
    std::string right;
    if (merge.is_string()) {
      // Legacy "a b" form: exactly one space separates the two halves.
      const auto& text = merge.get_ref<const std::string&>();
      const std::size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        return invalid_argument("BPE merge {} '{}' is not two tokens", rank, text);
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      return invalid_argument("BPE merge {} has an unknown form", rank);
    }
    const auto left_id = token_to_id(left);
    const auto right_id = token_to_id(right);
    const std::string merged = left + (right.rfind(continuing_subword_prefix_, 0) == 0
                                           ? right.substr(continuing_subword_prefix_.size())
                                           : right);
    const auto new_id = token_to_id(merged);
    if (!left_id || !right_id || !new_id) {
      return invalid_argument("BPE merge {} '{} {}' uses a token outside the vocabulary", rank,
                              left, right);
    }
    merges_[pair_key(*left_id, *right_id)] = Merge{rank, *new_id};
    ++rank;
  }
  return ok_status();
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size() || !has_token_[id]) {
    return nullptr;
  }
  return &id_to_token_[id];
}

std::optional<int32_t> BpeModel::byte_token_id(unsigned char byte) const {
  if (!byte_fallback_ || byte_ids_[byte] < 0) return std::nullopt;
  return byte_ids_[byte];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

// One symbol per character; characters outside the vocabulary become byte tokens when byte
// fallback covers all their bytes, else the unknown token (fused when fuse_unk), else vanish.
void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  uint32_t pending_unk_length = 0;  // bytes covered by an unknown token not yet added
  const auto add = [&symbols](int32_t id, uint32_t length) {
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, length});
  };
  const auto flush_unk = [&] {
    if (pending_unk_length > 0) add(*unk_id_, pending_unk_length);
    pending_unk_length = 0;
  };
  std::string scratch;
  for (std::size_t pos = 0; pos < word.size();) {
    std::size_t length = utf8_sequence_length(word, pos);
    if (length == 0) length = 1;
    const bool first = pos == 0;
    const bool last = pos + length == word.size();
    std::string_view piece = word.substr(pos, length);
    if ((!first && !continuing_subword_prefix_.empty()) || (last && !end_of_word_suffix_.empty())) {
      scratch.assign(first ? "" : continuing_subword_prefix_);
      scratch.append(piece);
      if (last) scratch += end_of_word_suffix_;
      piece = scratch;
    }
    pos += length;
    if (const auto id = token_to_id(piece)) {
      flush_unk();
      add(*id, static_cast<uint32_t>(length));
      continue;
    }
    if (byte_fallback_ && std::all_of(piece.begin(), piece.end(), [this](char c) {
          return byte_ids_[static_cast<unsigned char>(c)] >= 0;
        })) {
      for (const char c : piece) add(byte_ids_[static_cast<unsigned char>(c)], 1);
      continue;
    }
    if (!unk_id_) continue;
    if (!fuse_unk_) flush_unk();
    pending_unk_length += static_cast<uint32_t>(length);
  }
  flush_unk();
  if (!symbols.empty()) symbols.back().next = -1;
}

void BpeModel::merge_all(std::vector<Symbol>& symbols) const {
  struct Candidate {
    int32_t pos;
    uint32_t rank;
    int32_t new_id;
    // priority_queue pops the largest: invert so the lowest rank, then leftmost, comes first.
    bool operator<(const Candidate& other) const {
      if (rank != other.rank) return rank > other.rank;
      return pos > other.pos;
    }
  };
  std::priority_queue<Candidate> queue;
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = find_merge(symbols[i].id, symbols[i + 1].id)) {
      queue.push({static_cast<int32_t>(i), m->rank, m->new_id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& current = symbols[top.pos];
    if (current.length == 0 || current.next == -1) continue;
    const int32_t right_pos = current.next;
    Symbol& right = symbols[right_pos];
    const Merge* still = find_merge(current.id, right.id);
    if (still == nullptr || still->new_id != top.new_id) continue;  // stale entry

    current.id = top.new_id;
    current.length += right.length;
    current.next = right.next;
    right.length = 0;
    if (current.next != -1) symbols[current.next].prev = top.pos;
    if (current.prev >= 0) {
      if (const Merge* m = find_merge(symbols[current.prev].id, current.id)) {
        queue.push({current.prev, m->rank, m->new_id});
      }
    }
    if (current.next >= 0) {
      if (const Merge* m = find_merge(current.id, symbols[current.next].id)) {
        queue.push({top.pos, m->rank, m->new_id});
      }
    }
  }
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  initial_symbols(word, symbols);
  merge_all(symbols);
  const std::size_t first = out.size();
  for (const Symbol& s : symbols) {
    if (s.length != 0) out.push_back(s.id);
  }
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) {
      cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
    }
  }
}

}  // namespace shardwise::tokenizer
