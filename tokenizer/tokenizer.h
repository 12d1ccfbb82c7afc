// shardwise::Tokenizer: Hugging Face tokenizer.json (BPE, byte-level or SentencePiece style)
// plus tokenizer_config.json (special tokens, chat template), byte-exact with the Rust
// `tokenizers` library. Thread-safe: every method is const and may run concurrently.
//
//   SW_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::load("/models/llama3"));
//   SW_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer->encode("Hello", true));
//   SW_ASSIGN_OR_RETURN(std::string text, tokenizer->decode(ids, /*skip_special_tokens=*/true));
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace shardwise {

namespace tokenizer {
class AddedVocabulary;
class BpeModel;
class ChatTemplate;
class Decoder;
class Normalizer;
class PreTokenizer;
struct SpecialTokenTemplate;
}  // namespace tokenizer

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json (or tokenizer.json.gz), and DIR/tokenizer_config.json and
  // DIR/generation_config.json when present (special tokens, chat template, EOS ids).
  static StatusOr<std::unique_ptr<Tokenizer>> load(const std::filesystem::path& dir);

  // From file contents; `tokenizer_config_json` and `generation_config_json` may be empty.
  static StatusOr<std::unique_ptr<Tokenizer>> from_json(
      std::string_view tokenizer_json, std::string_view tokenizer_config_json = {},
      std::string_view generation_config_json = {});

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text -> ids. Added/special tokens written in the text are matched as such. With
  // add_special_tokens the post-processor's tokens (BOS for Llama) are added, as HF's
  // encode() does by default. Invalid UTF-8 -> INVALID_ARGUMENT.
  StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens) const;

  // Ids -> text (invalid byte sequences become U+FFFD, as in HF). An id outside the
  // vocabulary -> OUT_OF_RANGE.
  StatusOr<std::string> decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // One past the largest id (regular and added tokens).
  std::size_t vocab_size() const { return vocab_size_; }
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocabulary string of an id (byte-level form for Llama 3, "▁Hello" for Llama 2).
  StatusOr<std::string> id_to_token(int32_t id) const;
  bool is_special_token(int32_t id) const;

  std::optional<int32_t> bos_token_id() const { return bos_token_id_; }
  // tokenizer_config's eos_token followed by generation_config's eos_token_id(s), deduplicated.
  const std::vector<int32_t>& eos_token_ids() const { return eos_token_ids_; }

  bool has_chat_template() const { return chat_template_ != nullptr; }
  // Renders the chat template for `messages` (a JSON array of {"role", "content", ...}).
  // bos_token/eos_token and the other special-token names are provided as in transformers;
  // `extra_variables` (an object, e.g. {"enable_thinking": false, "tools": [...]}) is added.
  StatusOr<std::string> apply_chat_template(const nlohmann::json& messages,
                                            bool add_generation_prompt,
                                            const nlohmann::json& extra_variables = {}) const;

  // True when `id` is a <0xNN> byte token that the decoder joins with its neighbours: a run
  // of them may still change meaning as more arrive (see IncrementalDecoder).
  bool is_byte_fallback_token(int32_t id) const;

 private:
  Tokenizer();
  Status encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& ids) const;
  Status encode_normalized(std::string text, bool at_start, std::vector<int32_t>& ids) const;
  Status load_config(const nlohmann::json& config);
  void load_generation_config(const nlohmann::json& config);

  std::unique_ptr<tokenizer::AddedVocabulary> added_;
  std::unique_ptr<tokenizer::Normalizer> normalizer_;
  std::unique_ptr<tokenizer::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<tokenizer::BpeModel> model_;
  std::unique_ptr<tokenizer::SpecialTokenTemplate> post_processor_;
  std::unique_ptr<tokenizer::Decoder> decoder_;
  std::unique_ptr<tokenizer::ChatTemplate> chat_template_;
  std::size_t vocab_size_ = 0;
  std::optional<int32_t> bos_token_id_;
  std::vector<int32_t> eos_token_ids_;
  // Special-token strings handed to chat templates (bos_token, eos_token, ...).
  nlohmann::json template_tokens_ = nlohmann::json::object();
};

}  // namespace shardwise
