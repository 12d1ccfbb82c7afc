#include "shard/cli/generation_output.h"

#include <algorithm>

namespace shardwise::cli {

StatusOr<std::unique_ptr<Tokenizer>> load_tokenizer_if_present(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir / "tokenizer.json") &&
      !std::filesystem::exists(dir / "tokenizer.json.gz")) {
    return std::unique_ptr<Tokenizer>();
  }
  return Tokenizer::load(dir);
}

std::vector<int32_t> default_stop_token_ids(const LlamaConfig& config, const Tokenizer* tokenizer) {
  std::vector<int32_t> ids(config.eos_token_ids.begin(), config.eos_token_ids.end());
  if (tokenizer == nullptr) return ids;
  for (int32_t id : tokenizer->eos_token_ids()) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

StatusOr<nlohmann::json> generation_json(const std::vector<int32_t>& token_ids,
                                         const Tokenizer* tokenizer) {
  nlohmann::json out = {{"token_ids", token_ids}};
  if (tokenizer != nullptr) {
    SW_ASSIGN_OR_RETURN(std::string text, tokenizer->decode(token_ids, true));
    out["text"] = std::move(text);
  }
  return out;
}

}  // namespace shardwise::cli
