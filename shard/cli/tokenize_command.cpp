#include "shard/cli/tokenize_command.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shard/cli/cli_support.h"
#include "tokenizer/tokenizer.h"

namespace shardwise::cli {
namespace {

struct TokenizeOptions {
  std::string model_dir = default_model_dir();
  std::string text;
  bool no_special_tokens = false;
};

struct DetokenizeOptions {
  std::string model_dir = default_model_dir();
  std::vector<int32_t> ids;
  bool skip_special_tokens = false;
};

void run_tokenize(const TokenizeOptions& options) {
  const auto tokenizer = value_or_fail(Tokenizer::load(options.model_dir));
  const auto ids = value_or_fail(tokenizer->encode(options.text, !options.no_special_tokens));
  std::cout << nlohmann::json{{"token_ids", ids}}.dump() << "\n";
}

void run_detokenize(const DetokenizeOptions& options) {
  const auto tokenizer = value_or_fail(Tokenizer::load(options.model_dir));
  const auto text = value_or_fail(tokenizer->decode(options.ids, options.skip_special_tokens));
  std::cout << nlohmann::json{{"text", text}}.dump() << "\n";
}

}  // namespace

void add_tokenize_commands(CLI::App& app) {
  auto tokenize_options = std::make_shared<TokenizeOptions>();
  CLI::App* tokenize = app.add_subcommand("tokenize", "Text -> token ids, as JSON");
  tokenize
      ->add_option("--model", tokenize_options->model_dir,
                   "Folder with tokenizer.json and tokenizer_config.json")
      ->capture_default_str();
  tokenize->add_option("--text", tokenize_options->text, "Text to encode")->required();
  tokenize->add_flag("--no-special-tokens", tokenize_options->no_special_tokens,
                     "Do not add the post-processor's special tokens (BOS)");
  tokenize->callback([tokenize_options] { run_tokenize(*tokenize_options); });

  auto detokenize_options = std::make_shared<DetokenizeOptions>();
  CLI::App* detokenize = app.add_subcommand("detokenize", "Token ids -> text, as JSON");
  detokenize
      ->add_option("--model", detokenize_options->model_dir,
                   "Folder with tokenizer.json and tokenizer_config.json")
      ->capture_default_str();
  detokenize->add_option("--ids", detokenize_options->ids, "Token ids, comma-separated")
      ->delimiter(',')
      ->required();
  detokenize->add_flag("--skip-special-tokens", detokenize_options->skip_special_tokens,
                       "Leave special tokens (<s>, <|eot_id|>, ...) out of the text");
  detokenize->callback([detokenize_options] { run_detokenize(*detokenize_options); });
}

}  // namespace shardwise::cli
