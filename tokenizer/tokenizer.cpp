// Encoding and decoding; loading lives in tokenizer_loader.cpp.
#include "tokenizer/tokenizer.h"

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"

namespace shardwise {

using tokenizer::Piece;
using tokenizer::TextSegment;

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

// Normalized text -> pre-tokenized words -> BPE ids.
Status Tokenizer::encode_normalized(std::string text, bool at_start,
                                    std::vector<int32_t>& ids) const {
  if (text.empty()) return ok_status();
  std::vector<Piece> pieces;
  pieces.push_back({std::move(text), at_start});
  if (pre_tokenizer_) SW_RETURN_IF_ERROR(pre_tokenizer_->pre_tokenize(pieces));
  for (const Piece& piece : pieces) model_->encode_word(piece.text, ids);
  return ok_status();
}

// One stretch of input between raw added tokens: normalize it, then cut out the added tokens
// that match normalized text, and encode the rest.
Status Tokenizer::encode_segment(std::string_view text, bool at_start,
                                 std::vector<int32_t>& ids) const {
  std::string normalized(text);
  if (normalizer_) SW_RETURN_IF_ERROR(normalizer_->normalize(normalized));
  if (!added_->has_normalized_tokens()) {
    return encode_normalized(std::move(normalized), at_start, ids);
  }
  std::vector<TextSegment> segments;
  added_->split(normalized, /*normalized=*/true, segments);
  for (const TextSegment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    SW_RETURN_IF_ERROR(
        encode_normalized(normalized.substr(segment.begin, segment.end - segment.begin),
                          at_start && segment.begin == 0, ids));
  }
  return ok_status();
}

StatusOr<std::vector<int32_t>> Tokenizer::encode(std::string_view text,
                                                 bool add_special_tokens) const {
  const std::size_t invalid = tokenizer::find_invalid_utf8(text);
  if (invalid != text.size()) {
    return invalid_argument("text is not valid UTF-8 (bad byte 0x{:02X} at offset {})",
                            static_cast<unsigned char>(text[invalid]), invalid);
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<TextSegment> segments;
  added_->split(text, /*normalized=*/false, segments);
  for (const TextSegment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    SW_RETURN_IF_ERROR(encode_segment(text.substr(segment.begin, segment.end - segment.begin),
                                      segment.begin == 0, ids));
  }
  if (add_special_tokens) post_processor_->apply(ids);
  return ids;
}

StatusOr<std::string> Tokenizer::decode(std::span<const int32_t> ids,
                                        bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const tokenizer::AddedToken* added = added_->find_by_id(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
      continue;
    }
    const std::string* token = model_->id_to_token(id);
    if (token == nullptr) {
      return out_of_range("token id {} is outside the vocabulary (size {})", id, vocab_size_);
    }
    tokens.push_back(*token);
  }
  if (!decoder_) {
    // Without a decoder Hugging Face joins the token strings with spaces.
    std::string text;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text += ' ';
      text += tokens[i];
    }
    return text;
  }
  decoder_->decode_chain(tokens);
  std::string text;
  for (const std::string& token : tokens) text += token;
  return text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const tokenizer::AddedToken* added = added_->find_by_content(token)) return added->id;
  return model_->token_to_id(token);
}

StatusOr<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const tokenizer::AddedToken* added = added_->find_by_id(id)) return added->content;
  if (const std::string* token = model_->id_to_token(id)) return *token;
  return out_of_range("token id {} is outside the vocabulary (size {})", id, vocab_size_);
}

bool Tokenizer::is_special_token(int32_t id) const {
  const tokenizer::AddedToken* added = added_->find_by_id(id);
  return added != nullptr && added->special;
}

bool Tokenizer::is_byte_fallback_token(int32_t id) const {
  if (!decoder_ || !decoder_->uses_byte_fallback() || added_->find_by_id(id) != nullptr) {
    return false;
  }
  const std::string* token = model_->id_to_token(id);
  return token != nullptr && tokenizer::parse_byte_token(*token).has_value();
}

StatusOr<std::string> Tokenizer::apply_chat_template(const nlohmann::json& messages,
                                                     bool add_generation_prompt,
                                                     const nlohmann::json& extra_variables) const {
  if (!chat_template_) return failed_precondition("this tokenizer has no chat template");
  return chat_template_->render(messages, add_generation_prompt, template_tokens_, extra_variables);
}

}  // namespace shardwise
