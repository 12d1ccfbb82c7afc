#include "shard/cli/model_commands.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/safetensors.h"
#include "shard/cli/cli_support.h"
#include "shard/cli/device_flags.h"
#include "shard/cli/generation_output.h"
#include "shard/engine/generator.h"
#include "tokenizer/tokenizer.h"

namespace shardwise::cli {
namespace {

struct ModelOptions {
  std::string model_dir = default_model_dir();
  std::vector<int32_t> ids;
  std::string prompt;
  bool chat = false;
  DeviceOptions device;
};

void add_model_options(CLI::App* command, ModelOptions& options) {
  command
      ->add_option("--model", options.model_dir,
                   "Hugging Face model folder (config.json + safetensors)")
      ->capture_default_str();
  add_device_flags(command, options.device);
}

CLI::Option* add_ids_option(CLI::App* command, ModelOptions& options) {
  return command
      ->add_option("--ids", options.ids, "Prompt token ids, comma-separated, e.g. 1,403,407")
      ->delimiter(',');
}

// The prompt's token ids: --ids as given, or --prompt encoded (through the chat template with
// --chat), with the special tokens the tokenizer adds (BOS) as Hugging Face does.
std::vector<int32_t> prompt_ids(const ModelOptions& options, const Tokenizer* tokenizer) {
  if (options.prompt.empty()) {
    if (options.chat) fail(invalid_argument("--chat needs --prompt"));
    return options.ids;
  }
  if (tokenizer == nullptr) {
    fail(failed_precondition("--prompt needs a tokenizer.json in {}; pass --ids instead",
                             options.model_dir));
  }
  if (!options.chat) return value_or_fail(tokenizer->encode(options.prompt, true));
  if (!tokenizer->has_chat_template()) {
    fail(
        failed_precondition("{} has no chat template (tokenizer_config.json chat_template); "
                            "drop --chat",
                            options.model_dir));
  }
  const nlohmann::json messages = {{{"role", "user"}, {"content", options.prompt}}};
  const std::string text = value_or_fail(tokenizer->apply_chat_template(messages, true));
  // The rendered template already holds BOS where the model wants it.
  return value_or_fail(tokenizer->encode(text, false));
}

// The model with a KV cache of `tokens` tokens (at most a context window: a longer request is
// refused before it runs), on the chosen device, in a group of one.
std::unique_ptr<Replica> load_replica(const ModelOptions& options, int tokens) {
  constexpr int kBlockSize = 16;
  if (auto config = load_llama_config(options.model_dir); config.ok()) {
    tokens = std::min(tokens, config->max_position_embeddings);
  }
  ReplicaOptions replica_options;
  replica_options.model_dir = options.model_dir;
  replica_options.device = options.device;
  replica_options.block_size = kBlockSize;
  replica_options.num_kv_blocks = std::max(kv_blocks_for_tokens(tokens, kBlockSize), 1);
  const auto start = std::chrono::steady_clock::now();
  auto replica = value_or_fail(make_replica(replica_options));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const LlamaConfig& config = replica->config();
  log()->info("loaded {} ({} layers, hidden {}, vocab {}) in {:.2f} s", options.model_dir,
              config.num_hidden_layers, config.hidden_size, config.vocab_size, seconds);
  return replica;
}

void run_logits(const ModelOptions& options, const std::string& out_path) {
  auto replica = load_replica(options, static_cast<int>(options.ids.size()));
  const std::vector<float> logits = value_or_fail(prompt_logits(replica->runner(), options.ids));
  const int64_t vocab = replica->config().vocab_size;
  const int64_t rows = static_cast<int64_t>(options.ids.size());
  auto written = write_safetensors(out_path, {{"logits", {rows, vocab}, logits.data()}});
  if (!written.ok()) fail(written);
  log()->info("wrote logits [{}, {}] to {}", rows, vocab, out_path);
}

struct GenerateOptions {
  int max_new_tokens = 64;
  SamplingParams sampling;
  bool ignore_eos = false;
};

void run_generate(const ModelOptions& options, const GenerateOptions& generate_options) {
  const auto tokenizer = value_or_fail(load_tokenizer_if_present(options.model_dir));
  GenerationRequest request;
  request.prompt_ids = prompt_ids(options, tokenizer.get());
  auto replica = load_replica(options, static_cast<int>(request.prompt_ids.size()) +
                                           std::max(generate_options.max_new_tokens, 0));
  const LlamaConfig& config = replica->config();
  request.max_new_tokens = generate_options.max_new_tokens;
  request.sampling = generate_options.sampling;
  if (!generate_options.ignore_eos) {
    request.stop_token_ids = default_stop_token_ids(config, tokenizer.get());
  }
  const auto start = std::chrono::steady_clock::now();
  auto result = value_or_fail(generate(replica->runner(), request));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log()->info("generated {} tokens in {:.3f} s ({:.1f} tokens/s), finish reason: {}",
              result.token_ids.size(), seconds, result.token_ids.size() / seconds,
              result.finish_reason);
  std::cout << value_or_fail(generation_json(result.token_ids, tokenizer.get())).dump()
            << std::endl;
}

}  // namespace

void add_model_commands(CLI::App& app) {
  auto options = std::make_shared<ModelOptions>();

  auto* logits = app.add_subcommand("logits", "Write the logits at every prompt position");
  add_model_options(logits, *options);
  add_ids_option(logits, *options)->required();
  auto out_path = std::make_shared<std::string>();
  logits
      ->add_option("--out", *out_path,
                   "Output .safetensors file (F32 tensor 'logits' "
                   "[number of ids, vocab_size])")
      ->required();
  logits->callback([options, out_path] { run_logits(*options, *out_path); });

  auto* generate_command = app.add_subcommand(
      "generate",
      "Generate tokens after a prompt; prints {\"token_ids\": [...], \"text\": \"...\"} "
      "(text when the model folder has a tokenizer)");
  add_model_options(generate_command, *options);
  auto* ids = add_ids_option(generate_command, *options);
  auto* prompt = generate_command->add_option("--prompt", options->prompt,
                                              "Prompt text (needs the model's tokenizer.json)");
  ids->excludes(prompt);
  generate_command->add_flag("--chat", options->chat,
                             "Send --prompt as a user message through the model's chat template");

  auto generate_options = std::make_shared<GenerateOptions>();
  generate_command
      ->add_option("--max-new-tokens", generate_options->max_new_tokens,
                   "Tokens to generate (at most)")
      ->capture_default_str();
  generate_command
      ->add_option("--temperature", generate_options->sampling.temperature,
                   "Sampling temperature; 0 is greedy")
      ->capture_default_str();
  generate_command
      ->add_option("--top-k", generate_options->sampling.top_k,
                   "Keep only the k likeliest tokens (0: off)")
      ->capture_default_str();
  generate_command
      ->add_option("--top-p", generate_options->sampling.top_p,
                   "Nucleus sampling: keep the likeliest tokens holding this much "
                   "probability (1: off)")
      ->capture_default_str();
  generate_command
      ->add_option("--seed", generate_options->sampling.seed, "Random seed for sampling")
      ->capture_default_str();
  generate_command->add_flag("--ignore-eos", generate_options->ignore_eos,
                             "Keep generating past end-of-sequence tokens");
  generate_command->callback([options, generate_options, ids, prompt] {
    if (ids->count() == 0 && prompt->count() == 0) throw CLI::RequiredError("--ids or --prompt");
    run_generate(*options, *generate_options);
  });
}

}  // namespace shardwise::cli
