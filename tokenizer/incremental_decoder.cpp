#include "tokenizer/incremental_decoder.h"

#include <span>

#include "tokenizer/utf8.h"

namespace shardwise {

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

StatusOr<std::string> IncrementalDecoder::decode_from(std::size_t begin, std::size_t end) const {
  return tokenizer_.decode(std::span<const int32_t>(ids_).subspan(begin, end - begin),
                           skip_special_tokens_);
}

StatusOr<std::string> IncrementalDecoder::push(int32_t id) {
  const int32_t single[] = {id};
  SW_RETURN_IF_ERROR(tokenizer_.decode(single, skip_special_tokens_).status());
  ids_.push_back(id);
  SW_ASSIGN_OR_RETURN(std::string text, decode_from(prefix_offset_, ids_.size()));
  // Hold back while the text ends in a replacement character (an incomplete UTF-8 sequence
  // that the next bytes may complete) or in a byte-fallback run (which the next byte token may
  // turn from valid UTF-8 into replacement characters, or back).
  const bool unstable = tokenizer_.is_byte_fallback_token(id) ||
                        std::string_view(text).ends_with(tokenizer::kReplacementChar);
  if (unstable || text.size() <= prefix_text_.size() || !text.starts_with(prefix_text_)) {
    return std::string();
  }
  std::string delta = text.substr(prefix_text_.size());
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  SW_ASSIGN_OR_RETURN(prefix_text_, decode_from(prefix_offset_, read_offset_));
  return delta;
}

StatusOr<std::string> IncrementalDecoder::flush() {
  SW_ASSIGN_OR_RETURN(std::string text, decode_from(prefix_offset_, ids_.size()));
  if (!text.starts_with(prefix_text_)) {
    return internal_error("incremental decode lost its prefix: '{}' vs '{}'", prefix_text_, text);
  }
  std::string delta = text.substr(prefix_text_.size());
  prefix_offset_ = read_offset_ = ids_.size();
  prefix_text_.clear();
  return delta;
}

}  // namespace shardwise
