#include "models/model_config.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common/json_depth.h"
#include "common/json_integer.h"

namespace shardwise {
namespace {

using nlohmann::json;

// Far past any real model (Llama 3.1 405B: hidden 16384, 126 layers, 128 heads, vocab 128256,
// context 131072); the bounds keep every size the loaders compute from them within 64 bits and
// every table they allocate below what the weights themselves would need.
constexpr int kMaxHiddenSize = 1 << 16;
constexpr int kMaxIntermediateSize = 1 << 20;
constexpr int kMaxLayers = 1 << 12;
constexpr int kMaxHeads = 1 << 12;
constexpr int kMaxHeadDim = 1 << 12;
constexpr int kMaxVocabSize = 1 << 24;
constexpr int kMaxContextLength = 1 << 24;

// Reads a required integer key in [1, max].
Status read_positive_int(const json& config, const char* key, int max, int* out) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return invalid_argument("missing key '{}'", key);
  if (!json_integer_in(*it, 1, static_cast<uint64_t>(max))) {
    return invalid_argument("key '{}' must be an integer in [1, {}], got {}", key, max, it->dump());
  }
  *out = it->get<int>();
  return ok_status();
}

Status read_optional_positive_int(const json& config, const char* key, int max, int* out) {
  if (!config.contains(key) || config[key].is_null()) return ok_status();
  return read_positive_int(config, key, max, out);
}

// Reads an optional number, which must lie in the open interval (low, high): read as a double,
// so that a value past float's range is refused instead of cast into infinity.
Status read_float(const json& object, const char* key, double low, double high, float* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return ok_status();
  const double value = it->is_number() ? it->get<double>() : std::nan("");
  // Checked as the float it becomes: 1e-50 is above 0 as a double but 0 as a float.
  const float narrowed = static_cast<float>(value);
  if (!(value > low && value < high && narrowed > low && narrowed < high)) {
    return invalid_argument("key '{}' must be a number in ({}, {}), got {}", key, low, high,
                            it->dump());
  }
  *out = narrowed;
  return ok_status();
}

constexpr double kMaxRopeTheta = 1e12;  // real: 1e4 to 1e8
constexpr double kMaxRopeFactor = 1e4;  // real: 8 to 32

// Rope settings come either as `rope_theta` + `rope_scaling` (transformers < 5) or as one
// `rope_parameters` object holding rope_theta and rope_type (transformers 5).
Status read_rope(const json& config, RopeParams* rope) {
  const json* scaling = nullptr;
  if (config.contains("rope_parameters") && config["rope_parameters"].is_object()) {
    scaling = &config["rope_parameters"];
    SW_RETURN_IF_ERROR(read_float(*scaling, "rope_theta", 0, kMaxRopeTheta, &rope->theta));
  } else {
    SW_RETURN_IF_ERROR(read_float(config, "rope_theta", 0, kMaxRopeTheta, &rope->theta));
    if (config.contains("rope_scaling") && config["rope_scaling"].is_object()) {
      scaling = &config["rope_scaling"];
    }
  }
  if (scaling == nullptr) return ok_status();

  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (scaling->contains(key) && (*scaling)[key].is_string()) type = (*scaling)[key];
  }
  if (type == "default") return ok_status();
  if (type != "llama3") {
    return unimplemented("rope type '{}' is not supported (supported: default, llama3)", type);
  }
  rope->type = RopeType::kLlama3;
  SW_RETURN_IF_ERROR(read_float(*scaling, "factor", 0, kMaxRopeFactor, &rope->factor));
  SW_RETURN_IF_ERROR(
      read_float(*scaling, "low_freq_factor", 0, kMaxRopeFactor, &rope->low_freq_factor));
  SW_RETURN_IF_ERROR(
      read_float(*scaling, "high_freq_factor", 0, kMaxRopeFactor, &rope->high_freq_factor));
  SW_RETURN_IF_ERROR(read_positive_int(*scaling, "original_max_position_embeddings",
                                       kMaxContextLength, &rope->original_max_position_embeddings));
  if (rope->high_freq_factor <= rope->low_freq_factor) {
    return invalid_argument("llama3 rope scaling needs high_freq_factor > low_freq_factor");
  }
  return ok_status();
}

Status reject_unsupported_features(const json& config) {
  if (config.contains("model_type") && config["model_type"] != "llama") {
    return unimplemented("model_type {} is not supported (supported: \"llama\")",
                         config["model_type"].dump());
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    if (config.value(key, false) == true) return unimplemented("'{}: true' is not supported", key);
  }
  if (config.contains("hidden_act") && config["hidden_act"] != "silu") {
    return unimplemented("hidden_act {} is not supported (supported: \"silu\")",
                         config["hidden_act"].dump());
  }
  return ok_status();
}

// A token id of the model: an integer in [0, vocab_size), never narrowed.
StatusOr<int> read_token_id(const json& id, const char* key, int vocab_size) {
  if (vocab_size < 1 || !json_integer_in(id, 0, static_cast<uint64_t>(vocab_size) - 1)) {
    return invalid_argument("{} must hold token ids in [0, {}), got {}", key, vocab_size,
                            id.dump());
  }
  return id.get<int>();
}

Status read_token_ids(const json& config, LlamaConfig* out) {
  if (config.contains("bos_token_id") && !config["bos_token_id"].is_null()) {
    SW_ASSIGN_OR_RETURN(out->bos_token_id,
                        read_token_id(config["bos_token_id"], "bos_token_id", out->vocab_size));
  }
  const json eos = config.value("eos_token_id", json());
  if (eos.is_null()) return ok_status();
  for (const auto& id : eos.is_array() ? eos : json::array({eos})) {
    SW_ASSIGN_OR_RETURN(const int value, read_token_id(id, "eos_token_id", out->vocab_size));
    out->eos_token_ids.push_back(value);
  }
  return ok_status();
}

Status parse_into(const json& config, LlamaConfig* out) {
  if (!config.is_object()) return invalid_argument("expected a JSON object");
  SW_RETURN_IF_ERROR(reject_unsupported_features(config));
  SW_RETURN_IF_ERROR(read_positive_int(config, "hidden_size", kMaxHiddenSize, &out->hidden_size));
  SW_RETURN_IF_ERROR(read_positive_int(config, "intermediate_size", kMaxIntermediateSize,
                                       &out->intermediate_size));
  SW_RETURN_IF_ERROR(
      read_positive_int(config, "num_hidden_layers", kMaxLayers, &out->num_hidden_layers));
  SW_RETURN_IF_ERROR(
      read_positive_int(config, "num_attention_heads", kMaxHeads, &out->num_attention_heads));
  SW_RETURN_IF_ERROR(read_positive_int(config, "vocab_size", kMaxVocabSize, &out->vocab_size));
  SW_RETURN_IF_ERROR(read_positive_int(config, "max_position_embeddings", kMaxContextLength,
                                       &out->max_position_embeddings));
  out->num_key_value_heads = out->num_attention_heads;
  SW_RETURN_IF_ERROR(read_optional_positive_int(config, "num_key_value_heads", kMaxHeads,
                                                &out->num_key_value_heads));
  if (!config.contains("head_dim") || config["head_dim"].is_null()) {
    // The default head_dim would silently drop the remainder.
    if (out->hidden_size % out->num_attention_heads != 0) {
      return invalid_argument("hidden_size ({}) must be a multiple of num_attention_heads ({})",
                              out->hidden_size, out->num_attention_heads);
    }
    out->head_dim = out->hidden_size / out->num_attention_heads;
  }
  SW_RETURN_IF_ERROR(read_optional_positive_int(config, "head_dim", kMaxHeadDim, &out->head_dim));
  SW_RETURN_IF_ERROR(read_float(config, "rms_norm_eps", 0, 1, &out->rms_norm_eps));
  out->tie_word_embeddings = config.value("tie_word_embeddings", false);
  SW_RETURN_IF_ERROR(read_rope(config, &out->rope));
  SW_RETURN_IF_ERROR(read_token_ids(config, out));

  if (out->num_attention_heads % out->num_key_value_heads != 0) {
    return invalid_argument(
        "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
        out->num_attention_heads, out->num_key_value_heads);
  }
  if (out->head_dim % 2 != 0) return invalid_argument("head_dim ({}) must be even", out->head_dim);
  return ok_status();
}

}  // namespace

StatusOr<LlamaConfig> parse_llama_config(std::string_view json_text, std::string_view source) {
  if (json_nesting_depth(json_text) > kMaxJsonDepth) {
    return invalid_argument("{}: nests deeper than {}", source, kMaxJsonDepth);
  }
  json config = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return invalid_argument("{}: not valid JSON", source);
  LlamaConfig parsed;
  try {
    SW_RETURN_IF_ERROR(parse_into(config, &parsed).with_context(source));
  } catch (const json::exception& error) {
    return invalid_argument("{}: {}", source, error.what());
  }
  return parsed;
}

StatusOr<LlamaConfig> load_llama_config(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "config.json";
  std::ifstream in(path);
  if (!in)
    return not_found("{}: cannot open (is --model a Hugging Face model folder?)", path.string());
  std::stringstream text;
  text << in.rdbuf();
  return parse_llama_config(text.str(), path.string());
}

}  // namespace shardwise
