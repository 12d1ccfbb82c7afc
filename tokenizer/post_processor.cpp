#include "tokenizer/post_processor.h"

#include <nlohmann/json.hpp>

#include "tokenizer/spec_limits.h"

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
      return invalid_argument("TemplateProcessing: unknown item in 'single'");
    }
    const std::string name = item["SpecialToken"].at("id").get<std::string>();
    if (!special_tokens.contains(name)) {
      return invalid_argument("TemplateProcessing: special token '{}' is not defined", name);
    }
    auto& target = seen_sequence ? result.suffix : result.prefix;
    for (const json& id : special_tokens[name].at("ids")) {
      SW_ASSIGN_OR_RETURN(const int32_t value, token_id_from_json(id, "TemplateProcessing"));
      target.push_back(value);
      if (target.size() > kMaxPostProcessorTokens) {
        return invalid_argument("TemplateProcessing adds more than {} tokens",
                                kMaxPostProcessorTokens);
      }
    }
  }
  if (!seen_sequence) return invalid_argument("TemplateProcessing: 'single' has no $A");
  return result;
}

// Bert and Roberta store [token, id] pairs.
StatusOr<SpecialTokenTemplate> parse_cls_sep(const json& spec) {
  SpecialTokenTemplate result;
  SW_ASSIGN_OR_RETURN(const int32_t cls, token_id_from_json(spec.at("cls").at(1), "cls"));
  SW_ASSIGN_OR_RETURN(const int32_t sep, token_id_from_json(spec.at("sep").at(1), "sep"));
  result.prefix.push_back(cls);
  result.suffix.push_back(sep);
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
