#include "tokenizer/post_processor.h"

#include <nlohmann/json.hpp>

namespace shardwise::tokenizer {
namespace {

using nlohmann::json;

StatusOr<SpecialTokenTemplate> parse_template(const json& spec) {
  SpecialTokenTemplate result;
  bool seen_sequence = false;
  const json& special_tokens = spec.value("special_tokens", json::object());
  for (const json& item : spec.at("single")) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    if (!item.contains("SpecialToken")) {
      return invalid_argument("TemplateProcessing: unknown item {}", item.dump());
    }
    const std::string name = item["SpecialToken"].at("id").get<std::string>();
    if (!special_tokens.contains(name)) {
      return invalid_argument("TemplateProcessing: special token '{}' is not defined", name);
    }
    auto& target = seen_sequence ? result.suffix : result.prefix;
    for (const json& id : special_tokens[name].at("ids")) target.push_back(id.get<int32_t>());
  }
  if (!seen_sequence) return invalid_argument("TemplateProcessing: 'single' has no $A");
  return result;
}

// Bert and Roberta store [token, id] pairs.
SpecialTokenTemplate parse_cls_sep(const json& spec) {
  SpecialTokenTemplate result;
  result.prefix.push_back(spec.at("cls").at(1).get<int32_t>());
  result.suffix.push_back(spec.at("sep").at(1).get<int32_t>());
  return result;
}

}  // namespace

StatusOr<SpecialTokenTemplate> parse_post_processor(const json& spec) {
  if (spec.is_null()) return SpecialTokenTemplate{};
  const std::string type = spec.at("type").get<std::string>();
  if (type == "TemplateProcessing") return parse_template(spec);
  if (type == "BertProcessing" || type == "RobertaProcessing") return parse_cls_sep(spec);
  if (type == "ByteLevel") return SpecialTokenTemplate{};
  if (type == "Sequence") {
    SpecialTokenTemplate result;
    for (const json& step : spec.at("processors")) {
      SW_ASSIGN_OR_RETURN(SpecialTokenTemplate inner, parse_post_processor(step));
      // Each processor wraps the output of the previous one.
      result.prefix.insert(result.prefix.begin(), inner.prefix.begin(), inner.prefix.end());
      result.suffix.insert(result.suffix.end(), inner.suffix.begin(), inner.suffix.end());
    }
    return result;
  }
  return unimplemented("post_processor type '{}' is not supported", type);
}

}  // namespace shardwise::tokenizer
