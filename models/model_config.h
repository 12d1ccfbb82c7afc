// The Llama architecture's hyper-parameters, read from a Hugging Face config.json.
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kernels/rope_params.h"

namespace shardwise {

struct LlamaConfig {
  int hidden_size = 0;               // e.g. 4096 (Llama-3-8B)
  int intermediate_size = 0;         // e.g. 14336
  int num_hidden_layers = 0;         // e.g. 32
  int num_attention_heads = 0;       // e.g. 32
  int num_key_value_heads = 0;       // e.g. 8; defaults to num_attention_heads (no GQA)
  int head_dim = 0;                  // e.g. 128; defaults to hidden_size / num_attention_heads
  float rms_norm_eps = 1e-5f;        // e.g. 1e-5
  int vocab_size = 0;                // e.g. 128256
  bool tie_word_embeddings = false;  // e.g. false; true: lm_head reuses embed_tokens
  int max_position_embeddings = 0;   // e.g. 131072: the context window
  RopeParams rope;                   // theta 500000, llama3 scaling factor 8 for Llama 3.1
  std::optional<int> bos_token_id;   // e.g. 128000
  std::vector<int> eos_token_ids;    // e.g. {128001, 128008, 128009}
};

// Parses and validates config.json text; `source` names the file in error messages.
StatusOr<LlamaConfig> parse_llama_config(std::string_view json_text, std::string_view source);
StatusOr<LlamaConfig> load_llama_config(const std::filesystem::path& model_dir);

}  // namespace shardwise
