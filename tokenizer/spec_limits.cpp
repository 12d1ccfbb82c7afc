#include "tokenizer/spec_limits.h"

#include "common/json_integer.h"

namespace shardwise::tokenizer {
namespace {

// Objects with a "type" in `spec`; the JSON depth was bounded when it was parsed.
std::size_t count_steps(const nlohmann::json& spec) {
  std::size_t steps = spec.is_object() && spec.contains("type") ? 1 : 0;
  if (spec.is_object() || spec.is_array()) {
    for (const nlohmann::json& item : spec) steps += count_steps(item);
  }
  return steps;
}

}  // namespace

StatusOr<int32_t> token_id_from_json(const nlohmann::json& value, std::string_view what) {
  if (json_integer_in(value, 0, kMaxTokenId)) return value.get<int32_t>();
  return invalid_argument("{}: token id {} is not an integer in [0, {}]", what, value.dump(),
                          kMaxTokenId);
}

StatusOr<std::size_t> count_from_json(const nlohmann::json& spec, const char* key,
                                      std::string_view what) {
  const auto it = spec.find(key);
  if (it == spec.end()) return std::size_t{0};
  if (!json_holds<std::size_t>(*it)) {
    return invalid_argument("{}: '{}' must be a non-negative integer, got {}", what, key,
                            it->dump());
  }
  return it->get<std::size_t>();
}

Status check_pipeline_size(const nlohmann::json& section, std::string_view what) {
  const std::size_t steps = count_steps(section);
  if (steps > kMaxPipelineSteps) {
    return invalid_argument("{} has {} steps, more than {}", what, steps, kMaxPipelineSteps);
  }
  return ok_status();
}

}  // namespace shardwise::tokenizer
