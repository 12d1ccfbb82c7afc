#include "shard/cli/batch_requests.h"

#include <algorithm>
#include <type_traits>

#include "common/json_integer.h"
#include "shard/cli/openai_batch.h"

namespace shardwise::cli {
namespace {

using nlohmann::json;

// Reads `key` into `out` when present; a value of the wrong JSON type, or an integer out of
// T's range, is an error.
template <typename T>
Status read_number(const json& line, const char* key, T& out) {
  const auto it = line.find(key);
  if (it == line.end()) return ok_status();
  if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) return invalid_argument("\"{}\" must be a number", key);
  } else if constexpr (std::is_unsigned_v<T>) {
    if (!it->is_number_unsigned()) return invalid_argument("\"{}\" must be an integer >= 0", key);
  } else {
    if (!it->is_number_integer()) return invalid_argument("\"{}\" must be an integer", key);
  }
  if constexpr (std::is_integral_v<T>) {
    if (!json_holds<T>(*it)) return invalid_argument("\"{}\" is out of range: {}", key, it->dump());
  }
  out = it->get<T>();
  return ok_status();
}

Status read_token_ids(const json& line, const char* key, std::vector<int32_t>& out) {
  const auto it = line.find(key);
  if (it == line.end()) return ok_status();
  if (!it->is_array()) return invalid_argument("\"{}\" must be an array of token ids", key);
  for (const json& id : *it) {
    if (!json_holds<int32_t>(id)) {
      return invalid_argument("\"{}\" must hold token ids, got {}", key, id.dump());
    }
    out.push_back(id.get<int32_t>());
  }
  return ok_status();
}

Status read_stop(const json& line, std::vector<std::string>& stop) {
  const auto it = line.find("stop");
  if (it == line.end() || it->is_null()) return ok_status();
  if (it->is_string()) {
    stop.push_back(it->get<std::string>());
    return ok_status();
  }
  if (!it->is_array() ||
      !std::all_of(it->begin(), it->end(), [](const json& v) { return v.is_string(); })) {
    return invalid_argument("\"stop\" must be a string or an array of strings");
  }
  for (const json& v : *it) stop.push_back(v.get<std::string>());
  return ok_status();
}

// {"token id": bias}, as OpenAI's logit_bias (keys are ids written as strings).
Status read_logit_bias(const json& line, SamplingParams& params) {
  const auto it = line.find("logit_bias");
  if (it == line.end() || it->is_null()) return ok_status();
  if (!it->is_object()) return invalid_argument("\"logit_bias\" must be an object");
  for (const auto& [key, bias] : it->items()) {
    std::size_t used = 0;
    int id = -1;
    try {
      id = std::stoi(key, &used);
    } catch (const std::exception&) {
    }
    if (id < 0 || used != key.size() || !bias.is_number()) {
      return invalid_argument("\"logit_bias\" maps token ids to numbers, got \"{}\": {}", key,
                              bias.dump());
    }
    params.logit_bias.emplace_back(id, bias.get<float>());
  }
  return ok_status();
}

}  // namespace

Status read_sampling(const json& line, SamplingParams& params, std::vector<std::string>& stop) {
  SW_RETURN_IF_ERROR(read_number(line, "max_tokens", params.max_tokens));
  SW_RETURN_IF_ERROR(read_number(line, "temperature", params.temperature));
  SW_RETURN_IF_ERROR(read_number(line, "top_p", params.top_p));
  SW_RETURN_IF_ERROR(read_number(line, "top_k", params.top_k));
  SW_RETURN_IF_ERROR(read_number(line, "min_p", params.min_p));
  SW_RETURN_IF_ERROR(read_number(line, "repetition_penalty", params.repetition_penalty));
  SW_RETURN_IF_ERROR(read_number(line, "frequency_penalty", params.frequency_penalty));
  SW_RETURN_IF_ERROR(read_number(line, "presence_penalty", params.presence_penalty));
  SW_RETURN_IF_ERROR(read_number(line, "seed", params.seed));
  SW_RETURN_IF_ERROR(read_token_ids(line, "stop_token_ids", params.stop_token_ids));
  if (const auto it = line.find("ignore_eos"); it != line.end()) {
    if (!it->is_boolean()) return invalid_argument("\"ignore_eos\" must be true or false");
    params.ignore_eos = it->get<bool>();
  }
  if (const auto it = line.find("logprobs"); it != line.end() && !it->is_null()) {
    if (!json_holds<int>(*it)) {
      return invalid_argument("\"logprobs\" must be an integer, got {}", it->dump());
    }
    params.logprobs = it->get<int>();
  }
  SW_RETURN_IF_ERROR(read_stop(line, stop));
  return read_logit_bias(line, params);
}

namespace {

constexpr const char* kKnownFields[] = {"id",
                                        "token_ids",
                                        "prompt",
                                        "max_tokens",
                                        "temperature",
                                        "top_p",
                                        "top_k",
                                        "min_p",
                                        "repetition_penalty",
                                        "frequency_penalty",
                                        "presence_penalty",
                                        "seed",
                                        "stop_token_ids",
                                        "ignore_eos",
                                        "logprobs",
                                        "stop",
                                        "logit_bias"};

}  // namespace

bool is_sampling_field(std::string_view name) {
  // Every known field but the three that name the request.
  return name != "id" && name != "token_ids" && name != "prompt" &&
         std::find(std::begin(kKnownFields), std::end(kKnownFields), name) !=
             std::end(kKnownFields);
}

StatusOr<BatchItem> parse_batch_line(std::string_view text, uint64_t default_seed) {
  const json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (line.is_discarded()) return invalid_argument("not valid JSON");
  if (!line.is_object()) return invalid_argument("expected a JSON object");
  if (line.contains("custom_id")) return parse_openai_batch_line(line, default_seed);
  for (const auto& [key, value] : line.items()) {
    if (std::find(std::begin(kKnownFields), std::end(kKnownFields), key) ==
        std::end(kKnownFields)) {
      return invalid_argument("unknown field \"{}\"", key);
    }
  }
  BatchItem item;
  const auto id = line.find("id");
  if (id == line.end() || !(id->is_string() || id->is_number_integer())) {
    return invalid_argument("\"id\" (a string or an integer) is required");
  }
  item.id = *id;
  const bool has_ids = line.contains("token_ids"), has_prompt = line.contains("prompt");
  if (has_ids == has_prompt)
    return invalid_argument("give exactly one of \"token_ids\" and \"prompt\"");
  SW_RETURN_IF_ERROR(read_token_ids(line, "token_ids", item.token_ids));
  if (has_prompt) {
    if (!line["prompt"].is_string()) return invalid_argument("\"prompt\" must be a string");
    item.prompt = line["prompt"].get<std::string>();
  }
  item.sampling.seed = default_seed;
  SW_RETURN_IF_ERROR(read_sampling(line, item.sampling, item.stop));
  return item;
}

}  // namespace shardwise::cli
