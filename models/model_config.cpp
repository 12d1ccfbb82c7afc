#include "models/model_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace shardwise {
namespace {

using nlohmann::json;

// Reads a required positive integer key.
Status read_positive_int(const json& config, const char* key, int* out) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return invalid_argument("missing key '{}'", key);
  if (!it->is_number_integer() || it->get<long long>() <= 0 ||
      it->get<long long>() > (1LL << 31) - 1) {
    return invalid_argument("key '{}' must be a positive integer, got {}", key, it->dump());
  }
  *out = it->get<int>();
  return ok_status();
}

Status read_optional_positive_int(const json& config, const char* key, int* out) {
  if (!config.contains(key) || config[key].is_null()) return ok_status();
  return read_positive_int(config, key, out);
}

Status read_float(const json& object, const char* key, float* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return ok_status();
  if (!it->is_number())
    return invalid_argument("key '{}' must be a number, got {}", key, it->dump());
  *out = it->get<float>();
  return ok_status();
}

// Rope settings come either as `rope_theta` + `rope_scaling` (transformers < 5) or as one
// `rope_parameters` object holding rope_theta and rope_type (transformers 5).
Status read_rope(const json& config, RopeParams* rope) {
  const json* scaling = nullptr;
  if (config.contains("rope_parameters") && config["rope_parameters"].is_object()) {
    scaling = &config["rope_parameters"];
    SW_RETURN_IF_ERROR(read_float(*scaling, "rope_theta", &rope->theta));
  } else {
    SW_RETURN_IF_ERROR(read_float(config, "rope_theta", &rope->theta));
    if (config.contains("rope_scaling") && config["rope_scaling"].is_object()) {
      scaling = &config["rope_scaling"];
    }
  }
  if (rope->theta <= 0) return invalid_argument("rope_theta must be positive");
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
  SW_RETURN_IF_ERROR(read_float(*scaling, "factor", &rope->factor));
  SW_RETURN_IF_ERROR(read_float(*scaling, "low_freq_factor", &rope->low_freq_factor));
  SW_RETURN_IF_ERROR(read_float(*scaling, "high_freq_factor", &rope->high_freq_factor));
  SW_RETURN_IF_ERROR(read_positive_int(*scaling, "original_max_position_embeddings",
                                       &rope->original_max_position_embeddings));
  if (rope->factor <= 0 || rope->low_freq_factor <= 0 ||
      rope->high_freq_factor <= rope->low_freq_factor) {
    return invalid_argument(
        "llama3 rope scaling needs factor > 0 and "
        "high_freq_factor > low_freq_factor > 0");
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

Status read_token_ids(const json& config, LlamaConfig* out) {
  if (config.contains("bos_token_id") && config["bos_token_id"].is_number_integer()) {
    out->bos_token_id = config["bos_token_id"].get<int>();
  }
  const json eos = config.value("eos_token_id", json());
  if (eos.is_number_integer()) out->eos_token_ids.push_back(eos.get<int>());
  if (eos.is_array()) {
    for (const auto& id : eos) {
      if (!id.is_number_integer()) return invalid_argument("eos_token_id must hold integers");
      out->eos_token_ids.push_back(id.get<int>());
    }
  }
  return ok_status();
}

Status parse_into(const json& config, LlamaConfig* out) {
  if (!config.is_object()) return invalid_argument("expected a JSON object");
  SW_RETURN_IF_ERROR(reject_unsupported_features(config));
  SW_RETURN_IF_ERROR(read_positive_int(config, "hidden_size", &out->hidden_size));
  SW_RETURN_IF_ERROR(read_positive_int(config, "intermediate_size", &out->intermediate_size));
  SW_RETURN_IF_ERROR(read_positive_int(config, "num_hidden_layers", &out->num_hidden_layers));
  SW_RETURN_IF_ERROR(read_positive_int(config, "num_attention_heads", &out->num_attention_heads));
  SW_RETURN_IF_ERROR(read_positive_int(config, "vocab_size", &out->vocab_size));
  SW_RETURN_IF_ERROR(
      read_positive_int(config, "max_position_embeddings", &out->max_position_embeddings));
  out->num_key_value_heads = out->num_attention_heads;
  SW_RETURN_IF_ERROR(
      read_optional_positive_int(config, "num_key_value_heads", &out->num_key_value_heads));
  out->head_dim = out->hidden_size / out->num_attention_heads;
  SW_RETURN_IF_ERROR(read_optional_positive_int(config, "head_dim", &out->head_dim));
  SW_RETURN_IF_ERROR(read_float(config, "rms_norm_eps", &out->rms_norm_eps));
  out->tie_word_embeddings = config.value("tie_word_embeddings", false);
  SW_RETURN_IF_ERROR(read_rope(config, &out->rope));
  SW_RETURN_IF_ERROR(read_token_ids(config, out));

  if (out->num_attention_heads % out->num_key_value_heads != 0) {
    return invalid_argument(
        "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
        out->num_attention_heads, out->num_key_value_heads);
  }
  if (out->head_dim % 2 != 0) return invalid_argument("head_dim ({}) must be even", out->head_dim);
  if (out->rms_norm_eps <= 0) return invalid_argument("rms_norm_eps must be positive");
  return ok_status();
}

}  // namespace

StatusOr<LlamaConfig> parse_llama_config(std::string_view json_text, std::string_view source) {
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
