#include "tokenizer/spec_limits.h"

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
  if (value.is_number_unsigned() && value.get<uint64_t>() <= static_cast<uint64_t>(kMaxTokenId)) {
    return static_cast<int32_t>(value.get<uint64_t>());
  }
  if (value.is_number_integer() && !value.is_number_unsigned()) {
    const auto id = value.get<int64_t>();
    if (id >= 0 && id <= kMaxTokenId) return static_cast<int32_t>(id);
  }
  return invalid_argument("{}: token id {} is not an integer in [0, {}]", what, value.dump(),
                          kMaxTokenId);
}

StatusOr<std::size_t> count_from_json(const nlohmann::json& spec, const char* key,
                                      std::string_view what) {
  const auto it = spec.find(key);
  if (it == spec.end()) return std::size_t{0};
  if (!it->is_number_unsigned()) {
    return invalid_argument("{}: '{}' must be a non-negative integer, got {}", what, key,
                            it->dump());
  }
  return static_cast<std::size_t>(it->get<uint64_t>());
}

Status check_pipeline_size(const nlohmann::json& section, std::string_view what) {
  const std::size_t steps = count_steps(section);
  if (steps > kMaxPipelineSteps) {
    return invalid_argument("{} has {} steps, more than {}", what, steps, kMaxPipelineSteps);
  }
  return ok_status();
}

}  // namespace shardwise::tokenizer
