#include "tokenizer/normalizer.h"

#include <unicode/uchar.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "tokenizer/regex.h"
#include "tokenizer/unicode_normalize.h"
#include "tokenizer/utf8.h"
#include "tokenizer/whitespace.h"

namespace shardwise::tokenizer {
namespace {

using nlohmann::json;

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  Status normalize(std::string& text) const override {
    for (const auto& step : steps_) SW_RETURN_IF_ERROR(step->normalize(text));
    return ok_status();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// Prepend and Append leave empty pieces empty (Hugging Face does the same).
class AffixNormalizer final : public Normalizer {
 public:
  AffixNormalizer(std::string affix, bool prepend) : affix_(std::move(affix)), prepend_(prepend) {}
  Status normalize(std::string& text) const override {
    if (text.empty()) return ok_status();
    if (prepend_) {
      text.insert(0, affix_);
    } else {
      text += affix_;
    }
    return ok_status();
  }

 private:
  std::string affix_;
  bool prepend_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}

  Status normalize(std::string& text) const override {
    std::vector<std::pair<std::size_t, std::size_t>> matches;
    if (regex_) {
      SW_RETURN_IF_ERROR(regex_->find_all(text, matches));
    } else if (!literal_.empty()) {
      for (std::size_t pos = text.find(literal_); pos != std::string::npos;
           pos = text.find(literal_, pos + literal_.size())) {
        matches.emplace_back(pos, pos + literal_.size());
      }
    }
    if (matches.empty()) return ok_status();
    std::string out;
    out.reserve(text.size() + matches.size() * content_.size());
    std::size_t last = 0;
    for (const auto& [begin, end] : matches) {
      out.append(text, last, begin - last);
      out += content_;
      last = end;
    }
    out.append(text, last, std::string::npos);
    text = std::move(out);
    return ok_status();
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalizationForm form) : form_(form) {}
  Status normalize(std::string& text) const override {
    SW_ASSIGN_OR_RETURN(text, unicode_normalize(text, form_));
    return ok_status();
  }

 private:
  NormalizationForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  Status normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (std::size_t pos = 0; pos < text.size();) {
      const std::size_t length = utf8_sequence_length(text, pos);
      if (length == 0) return invalid_argument("Lowercase normalizer: invalid UTF-8");
      append_utf8(out, static_cast<char32_t>(
                           u_tolower(static_cast<UChar32>(decode_utf8_at(text, pos, length)))));
      pos += length;
    }
    text = std::move(out);
    return ok_status();
  }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  Status normalize(std::string& text) const override {
    std::string_view view = text;
    if (left_) view = strip_leading_whitespace(view);
    if (right_) view = strip_trailing_whitespace(view);
    text = std::string(view);
    return ok_status();
  }

 private:
  bool left_;
  bool right_;
};

StatusOr<std::unique_ptr<Normalizer>> make_replace(const json& spec) {
  const json& pattern = spec.at("pattern");
  std::string content = spec.at("content").get<std::string>();
  if (pattern.contains("String")) {
    return std::unique_ptr<Normalizer>(std::make_unique<ReplaceNormalizer>(
        pattern.at("String").get<std::string>(), nullptr, std::move(content)));
  }
  if (pattern.contains("Regex")) {
    SW_ASSIGN_OR_RETURN(auto regex, Regex::compile(pattern.at("Regex").get<std::string>()));
    return std::unique_ptr<Normalizer>(
        std::make_unique<ReplaceNormalizer>("", std::move(regex), std::move(content)));
  }
  return invalid_argument("Replace normalizer: pattern needs 'String' or 'Regex'");
}

}  // namespace

StatusOr<std::unique_ptr<Normalizer>> make_normalizer(const json& spec) {
  const std::string type = spec.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const json& step : spec.at("normalizers")) {
      SW_ASSIGN_OR_RETURN(auto normalizer, make_normalizer(step));
      steps.push_back(std::move(normalizer));
    }
    return std::unique_ptr<Normalizer>(std::make_unique<SequenceNormalizer>(std::move(steps)));
  }
  if (type == "Prepend" || type == "Append") {
    const std::string affix = spec.at(type == "Prepend" ? "prepend" : "append").get<std::string>();
    return std::unique_ptr<Normalizer>(std::make_unique<AffixNormalizer>(affix, type == "Prepend"));
  }
  if (type == "Replace") return make_replace(spec);
  if (type == "NFC")
    return std::unique_ptr<Normalizer>(
        std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfc));
  if (type == "NFD")
    return std::unique_ptr<Normalizer>(
        std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfd));
  if (type == "NFKC")
    return std::unique_ptr<Normalizer>(
        std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfkc));
  if (type == "NFKD")
    return std::unique_ptr<Normalizer>(
        std::make_unique<UnicodeNormalizer>(NormalizationForm::kNfkd));
  if (type == "Lowercase")
    return std::unique_ptr<Normalizer>(std::make_unique<LowercaseNormalizer>());
  if (type == "Strip") {
    return std::unique_ptr<Normalizer>(std::make_unique<StripNormalizer>(
        spec.value("strip_left", true), spec.value("strip_right", true)));
  }
  return unimplemented("normalizer type '{}' is not supported", type);
}

}  // namespace shardwise::tokenizer
