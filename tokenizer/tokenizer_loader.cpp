// Building a Tokenizer from tokenizer.json, tokenizer_config.json and generation_config.json.
#include <zlib.h>

#include <fstream>
#include <sstream>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace shardwise {
namespace {

using nlohmann::json;

StatusOr<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open {}", path.string());
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return data_loss("error reading {}", path.string());
  return contents.str();
}

StatusOr<std::string> read_gzip_file(const std::filesystem::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return not_found("cannot open {}", path.string());
  std::string contents;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof(buffer))) > 0) contents.append(buffer, n);
  const bool failed = n < 0;
  gzclose(file);
  if (failed) return data_loss("{} is not valid gzip data", path.string());
  return contents;
}

StatusOr<json> parse_json(std::string_view text, std::string_view what) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return invalid_argument("{} is not valid JSON", what);
  return parsed;
}

// tokenizer_config.json writes a special token as "text" or {"content": "text", ...}.
std::optional<std::string> token_text(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return it->at("content").get<std::string>();
  return std::nullopt;
}

// chat_template is one string, or a list of {"name", "template"} where "default" is used.
std::optional<std::string> chat_template_source(const json& config) {
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    for (const json& entry : *it) {
      if (entry.value("name", "") == "default") return entry.at("template").get<std::string>();
    }
  }
  return std::nullopt;
}

}  // namespace

Status Tokenizer::load_config(const json& config) {
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    const auto text = token_text(config, key);
    template_tokens_[key] = text ? json(*text) : json(nullptr);
  }
  if (const auto bos = token_text(config, "bos_token")) bos_token_id_ = token_to_id(*bos);
  if (const auto eos = token_text(config, "eos_token")) {
    if (const auto id = token_to_id(*eos)) eos_token_ids_.push_back(*id);
  }
  // transformers rebuilds the post-processor of Llama tokenizers from add_bos_token and
  // add_eos_token; other classes keep tokenizer.json's.
  const std::string tokenizer_class = config.value("tokenizer_class", "");
  if (tokenizer_class.rfind("Llama", 0) == 0 &&
      (config.contains("add_bos_token") || config.contains("add_eos_token"))) {
    tokenizer::SpecialTokenTemplate rebuilt;
    if (config.value("add_bos_token", true) && bos_token_id_)
      rebuilt.prefix.push_back(*bos_token_id_);
    if (config.value("add_eos_token", false) && !eos_token_ids_.empty()) {
      rebuilt.suffix.push_back(eos_token_ids_.front());
    }
    *post_processor_ = rebuilt;
  }
  if (const auto source = chat_template_source(config)) {
    SW_ASSIGN_OR_RETURN(chat_template_, tokenizer::ChatTemplate::compile(*source));
  }
  return ok_status();
}

void Tokenizer::load_generation_config(const json& config) {
  const auto it = config.find("eos_token_id");
  if (it == config.end()) return;
  std::vector<int32_t> ids;
  if (it->is_number_integer()) ids.push_back(it->get<int32_t>());
  if (it->is_array()) {
    for (const json& id : *it) {
      if (id.is_number_integer()) ids.push_back(id.get<int32_t>());
    }
  }
  for (const int32_t id : ids) {
    if (std::find(eos_token_ids_.begin(), eos_token_ids_.end(), id) == eos_token_ids_.end()) {
      eos_token_ids_.push_back(id);
    }
  }
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::from_json(std::string_view tokenizer_json,
                                                          std::string_view tokenizer_config_json,
                                                          std::string_view generation_config_json) {
  SW_ASSIGN_OR_RETURN(const json spec, parse_json(tokenizer_json, "tokenizer.json"));
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  // nlohmann reports missing keys and wrong types by exception; they stay inside this function.
  try {
    const json& model = spec.at("model");
    const std::string type = model.value("type", "BPE");
    if (type != "BPE")
      return unimplemented("tokenizer.json model type '{}' is not supported", type);
    SW_ASSIGN_OR_RETURN(tok->model_, tokenizer::BpeModel::from_json(model));
    SW_ASSIGN_OR_RETURN(auto added,
                        tokenizer::AddedVocabulary::from_json(spec.value("added_tokens", json())));
    tok->added_ = std::make_unique<tokenizer::AddedVocabulary>(std::move(added));
    if (spec.contains("normalizer") && !spec["normalizer"].is_null()) {
      SW_ASSIGN_OR_RETURN(tok->normalizer_, tokenizer::make_normalizer(spec["normalizer"]));
    }
    if (spec.contains("pre_tokenizer") && !spec["pre_tokenizer"].is_null()) {
      SW_ASSIGN_OR_RETURN(tok->pre_tokenizer_,
                          tokenizer::make_pre_tokenizer(spec["pre_tokenizer"]));
    }
    if (spec.contains("decoder") && !spec["decoder"].is_null()) {
      SW_ASSIGN_OR_RETURN(tok->decoder_, tokenizer::make_decoder(spec["decoder"]));
    }
    SW_ASSIGN_OR_RETURN(auto post,
                        tokenizer::parse_post_processor(spec.value("post_processor", json())));
    tok->post_processor_ = std::make_unique<tokenizer::SpecialTokenTemplate>(std::move(post));
    tok->vocab_size_ = std::max(tok->model_->vocab_size(), tok->added_->id_limit());

    if (!tokenizer_config_json.empty()) {
      SW_ASSIGN_OR_RETURN(const json config,
                          parse_json(tokenizer_config_json, "tokenizer_config.json"));
      SW_RETURN_IF_ERROR(tok->load_config(config).with_context("tokenizer_config.json"));
    }
    if (!generation_config_json.empty()) {
      SW_ASSIGN_OR_RETURN(const json config,
                          parse_json(generation_config_json, "generation_config.json"));
      tok->load_generation_config(config);
    }
  } catch (const json::exception& e) {
    return invalid_argument("malformed tokenizer files: {}", e.what());
  }
  return tok;
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::filesystem::path& dir) {
  std::string tokenizer_json;
  if (std::filesystem::exists(dir / "tokenizer.json")) {
    SW_ASSIGN_OR_RETURN(tokenizer_json, read_file(dir / "tokenizer.json"));
  } else if (std::filesystem::exists(dir / "tokenizer.json.gz")) {
    SW_ASSIGN_OR_RETURN(tokenizer_json, read_gzip_file(dir / "tokenizer.json.gz"));
  } else {
    return not_found("no tokenizer.json or tokenizer.json.gz in {}", dir.string());
  }
  std::string config_json;
  if (std::filesystem::exists(dir / "tokenizer_config.json")) {
    SW_ASSIGN_OR_RETURN(config_json, read_file(dir / "tokenizer_config.json"));
  }
  std::string generation_json;
  if (std::filesystem::exists(dir / "generation_config.json")) {
    SW_ASSIGN_OR_RETURN(generation_json, read_file(dir / "generation_config.json"));
  }
  auto result = from_json(tokenizer_json, config_json, generation_json);
  if (!result.ok()) return result.status().with_context(dir.string());
  return result;
}

}  // namespace shardwise
