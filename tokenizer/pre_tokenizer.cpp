#include "tokenizer/pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"

namespace shardwise::tokenizer {
namespace {

using nlohmann::json;

// GPT-2's split pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Segment {
  std::size_t begin;
  std::size_t end;
  bool delimiter;
};

// Splits one piece around regex matches the way Hugging Face's NormalizedString::split does.
Status split_piece(const Piece& piece, const Regex& regex, SplitBehavior behavior, bool invert,
                   std::vector<Piece>& out) {
  std::vector<std::pair<std::size_t, std::size_t>> matches;
  SW_RETURN_IF_ERROR(regex.find_all(piece.text, matches));
  std::vector<Segment> segments;
  std::size_t last = 0;
  for (const auto& [begin, end] : matches) {
    if (begin > last) segments.push_back({last, begin, invert});
    segments.push_back({begin, end, !invert});
    last = end;
  }
  if (last < piece.text.size()) segments.push_back({last, piece.text.size(), invert});

  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const Segment& s = segments[i];
    switch (behavior) {
      case SplitBehavior::kRemoved:
        if (!s.delimiter) ranges.emplace_back(s.begin, s.end);
        break;
      case SplitBehavior::kIsolated:
        ranges.emplace_back(s.begin, s.end);
        break;
      case SplitBehavior::kMergedWithPrevious:
        if (s.delimiter && !ranges.empty() && ranges.back().second == s.begin &&
            !segments[i - 1].delimiter) {
          ranges.back().second = s.end;
        } else {
          ranges.emplace_back(s.begin, s.end);
        }
        break;
      case SplitBehavior::kMergedWithNext:
        if (!s.delimiter && i > 0 && segments[i - 1].delimiter && !ranges.empty()) {
          ranges.back().second = s.end;
        } else {
          ranges.emplace_back(s.begin, s.end);
        }
        break;
      case SplitBehavior::kContiguous:
        if (s.delimiter && i > 0 && segments[i - 1].delimiter && !ranges.empty()) {
          ranges.back().second = s.end;
        } else {
          ranges.emplace_back(s.begin, s.end);
        }
        break;
    }
  }
  for (const auto& [begin, end] : ranges) {
    if (end > begin) {
      out.push_back({piece.text.substr(begin, end - begin), piece.at_start && begin == 0});
    }
  }
  return ok_status();
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}

  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 8);
    for (const Piece& piece : pieces) {
      SW_RETURN_IF_ERROR(split_piece(piece, *regex_, behavior_, invert_, out));
    }
    pieces = std::move(out);
    return ok_status();
  }

 private:
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}

  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& piece : pieces) {
        if (!piece.text.empty() && piece.text.front() != ' ') piece.text.insert(0, " ");
      }
    }
    if (regex_) {
      std::vector<Piece> split;
      for (const Piece& piece : pieces) {
        SW_RETURN_IF_ERROR(split_piece(piece, *regex_, SplitBehavior::kIsolated, false, split));
      }
      pieces = std::move(split);
    }
    for (Piece& piece : pieces) {
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      append_byte_level(mapped, piece.text);
      piece.text = std::move(mapped);
    }
    return ok_status();
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

// SentencePiece's whitespace handling: spaces become the replacement character (U+2581),
// optionally prefixed to the piece and optionally split before each replacement.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}

  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (Piece& piece : pieces) {
      std::string text;
      for (const char c : piece.text) {
        if (c == ' ') {
          text += replacement_;
        } else {
          text += c;
        }
      }
      const bool starts_with_replacement = text.compare(0, replacement_.size(), replacement_) == 0;
      const bool prepend =
          prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && piece.at_start);
      if (prepend && !starts_with_replacement) text.insert(0, replacement_);
      if (!split_) {
        if (!text.empty()) out.push_back({std::move(text), piece.at_start});
        continue;
      }
      std::size_t begin = 0;
      for (std::size_t pos = text.find(replacement_, 1); pos != std::string::npos;
           pos = text.find(replacement_, pos + replacement_.size())) {
        if (pos > begin)
          out.push_back({text.substr(begin, pos - begin), piece.at_start && begin == 0});
        begin = pos;
      }
      if (begin < text.size()) out.push_back({text.substr(begin), piece.at_start && begin == 0});
    }
    pieces = std::move(out);
    return ok_status();
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  Status pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) SW_RETURN_IF_ERROR(step->pre_tokenize(pieces));
    return ok_status();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

StatusOr<SplitBehavior> parse_behavior(const std::string& name) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return invalid_argument("Split pre-tokenizer: unknown behavior '{}'", name);
}

// A literal String pattern becomes a quoted regex so that one splitter serves both.
StatusOr<std::unique_ptr<Regex>> compile_pattern(const json& pattern) {
  if (pattern.contains("Regex")) return Regex::compile(pattern.at("Regex").get<std::string>());
  if (pattern.contains("String")) {
    return Regex::compile("\\Q" + pattern.at("String").get<std::string>() + "\\E");
  }
  return invalid_argument("pattern needs 'String' or 'Regex'");
}

StatusOr<std::unique_ptr<PreTokenizer>> make_split(const json& spec) {
  SW_ASSIGN_OR_RETURN(auto regex, compile_pattern(spec.at("pattern")));
  SW_ASSIGN_OR_RETURN(const SplitBehavior behavior,
                      parse_behavior(spec.at("behavior").get<std::string>()));
  return std::unique_ptr<PreTokenizer>(
      std::make_unique<SplitPreTokenizer>(std::move(regex), behavior, spec.value("invert", false)));
}

StatusOr<std::unique_ptr<PreTokenizer>> make_metaspace(const json& spec) {
  std::string scheme = spec.value("prepend_scheme", "");
  if (scheme.empty()) scheme = spec.value("add_prefix_space", true) ? "always" : "never";
  MetaspacePreTokenizer::Prepend prepend;
  if (scheme == "always") {
    prepend = MetaspacePreTokenizer::Prepend::kAlways;
  } else if (scheme == "first") {
    prepend = MetaspacePreTokenizer::Prepend::kFirst;
  } else if (scheme == "never") {
    prepend = MetaspacePreTokenizer::Prepend::kNever;
  } else {
    return invalid_argument("Metaspace: unknown prepend_scheme '{}'", scheme);
  }
  return std::unique_ptr<PreTokenizer>(std::make_unique<MetaspacePreTokenizer>(
      spec.value("replacement", "\u2581"), prepend, spec.value("split", true)));
}

}  // namespace

StatusOr<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const json& spec) {
  const std::string type = spec.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const json& step : spec.at("pretokenizers")) {
      SW_ASSIGN_OR_RETURN(auto pre_tokenizer, make_pre_tokenizer(step));
      steps.push_back(std::move(pre_tokenizer));
    }
    return std::unique_ptr<PreTokenizer>(std::make_unique<SequencePreTokenizer>(std::move(steps)));
  }
  if (type == "Split") return make_split(spec);
  if (type == "ByteLevel") {
    std::unique_ptr<Regex> regex;
    if (spec.value("use_regex", true)) {
      SW_ASSIGN_OR_RETURN(regex, Regex::compile(kGpt2Pattern));
    }
    return std::unique_ptr<PreTokenizer>(std::make_unique<ByteLevelPreTokenizer>(
        spec.value("add_prefix_space", false), std::move(regex)));
  }
  if (type == "Metaspace") return make_metaspace(spec);
  return unimplemented("pre_tokenizer type '{}' is not supported", type);
}

}  // namespace shardwise::tokenizer
