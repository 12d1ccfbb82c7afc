#include "tokenizer/decoder.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"
#include "tokenizer/spec_limits.h"
#include "tokenizer/utf8.h"

namespace shardwise::tokenizer {
namespace {

using nlohmann::json;

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }
  bool uses_byte_fallback() const override {
    for (const auto& step : steps_) {
      if (step->uses_byte_fallback()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

// Maps each token's characters back to bytes (a token with an unmapped character, such as an
// added token, keeps its own bytes) and converts the whole byte string lossily.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      if (auto raw = byte_level_to_bytes(token)) {
        bytes += *raw;
      } else {
        bytes += token;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}

  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = replace(token);
  }

 private:
  std::string replace(const std::string& token) const {
    std::vector<std::pair<std::size_t, std::size_t>> matches;
    if (regex_) {
      // Token text comes from the vocabulary and is valid UTF-8; a failure leaves it as is.
      if (!regex_->find_all(token, matches).ok()) return token;
    } else if (!literal_.empty()) {
      for (std::size_t pos = token.find(literal_); pos != std::string::npos;
           pos = token.find(literal_, pos + literal_.size())) {
        matches.emplace_back(pos, pos + literal_.size());
      }
    }
    if (matches.empty()) return token;
    std::string out;
    std::size_t last = 0;
    for (const auto& [begin, end] : matches) {
      out.append(token, last, begin - last);
      out += content_;
      last = end;
    }
    out.append(token, last, std::string::npos);
    return out;
  }

  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

// Runs of <0xNN> tokens become their bytes when those form valid UTF-8, else one U+FFFD per
// byte token (Hugging Face's rule, which the incremental decoder must reproduce).
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;
    std::size_t run_tokens = 0;
    const auto flush = [&] {
      if (run_tokens == 0) return;
      if (is_valid_utf8(run)) {
        out.push_back(run);
      } else {
        for (std::size_t i = 0; i < run_tokens; ++i) out.emplace_back(kReplacementChar);
      }
      run.clear();
      run_tokens = 0;
    };
    for (std::string& token : tokens) {
      if (const auto byte = parse_byte_token(token)) {
        run.push_back(static_cast<char>(*byte));
        ++run_tokens;
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }
  bool uses_byte_fallback() const override { return true; }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string fused;
    for (const std::string& token : tokens) fused += token;
    tokens.assign(1, std::move(fused));
  }
};

// Removes up to `start` leading and `stop` trailing occurrences of one character per token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, std::size_t start, std::size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::size_t begin = 0;
      for (std::size_t i = 0; i < start_ && token.compare(begin, content_.size(), content_) == 0;
           ++i) {
        begin += content_.size();
      }
      std::size_t end = token.size();
      for (std::size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                              token.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      token = token.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  std::size_t start_;
  std::size_t stop_;
};

// Replacement characters become spaces, except in the first token when a prefix was added
// (those are dropped, undoing the prepended one).
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_in_first)
      : replacement_(std::move(replacement)), drop_in_first_(drop_in_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      const std::string with = i == 0 && drop_in_first_ ? "" : " ";
      std::string out;
      const std::string& token = tokens[i];
      for (std::size_t pos = 0; pos < token.size();) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          out += with;
          pos += replacement_.size();
        } else {
          out += token[pos++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool drop_in_first_;
};

StatusOr<std::unique_ptr<Decoder>> make_replace(const json& spec) {
  const json& pattern = spec.at("pattern");
  std::string content = spec.at("content").get<std::string>();
  if (pattern.contains("String")) {
    return std::unique_ptr<Decoder>(std::make_unique<ReplaceDecoder>(
        pattern.at("String").get<std::string>(), nullptr, std::move(content)));
  }
  if (pattern.contains("Regex")) {
    SW_ASSIGN_OR_RETURN(auto regex, Regex::compile(pattern.at("Regex").get<std::string>()));
    return std::unique_ptr<Decoder>(
        std::make_unique<ReplaceDecoder>("", std::move(regex), std::move(content)));
  }
  return invalid_argument("Replace decoder: pattern needs 'String' or 'Regex'");
}

StatusOr<std::unique_ptr<Decoder>> make_metaspace(const json& spec) {
  std::string scheme = spec.value("prepend_scheme", "");
  if (scheme.empty()) scheme = spec.value("add_prefix_space", true) ? "always" : "never";
  return std::unique_ptr<Decoder>(
      std::make_unique<MetaspaceDecoder>(spec.value("replacement", "\u2581"), scheme != "never"));
}

}  // namespace

std::optional<unsigned char> parse_byte_token(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return std::nullopt;
  unsigned value = 0;
  const auto [ptr, error] = std::from_chars(token.data() + 3, token.data() + 5, value, 16);
  if (error != std::errc() || ptr != token.data() + 5) return std::nullopt;
  return static_cast<unsigned char>(value);
}

StatusOr<std::unique_ptr<Decoder>> make_decoder(const json& spec) {
  const std::string type = spec.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const json& step : spec.at("decoders")) {
      SW_ASSIGN_OR_RETURN(auto decoder, make_decoder(step));
      steps.push_back(std::move(decoder));
    }
    return std::unique_ptr<Decoder>(std::make_unique<SequenceDecoder>(std::move(steps)));
  }
  if (type == "ByteLevel") return std::unique_ptr<Decoder>(std::make_unique<ByteLevelDecoder>());
  if (type == "Replace") return make_replace(spec);
  if (type == "ByteFallback") {
    return std::unique_ptr<Decoder>(std::make_unique<ByteFallbackDecoder>());
  }
  if (type == "Fuse") return std::unique_ptr<Decoder>(std::make_unique<FuseDecoder>());
  if (type == "Strip") {
    // Each step strips one copy of content: an empty one would strip nothing, start times over.
    std::string content = spec.at("content").get<std::string>();
    if (content.empty()) return invalid_argument("Strip decoder: empty content");
    SW_ASSIGN_OR_RETURN(const std::size_t start, count_from_json(spec, "start", "Strip decoder"));
    SW_ASSIGN_OR_RETURN(const std::size_t stop, count_from_json(spec, "stop", "Strip decoder"));
    return std::unique_ptr<Decoder>(
        std::make_unique<StripDecoder>(std::move(content), start, stop));
  }
  if (type == "Metaspace") return make_metaspace(spec);
  return unimplemented("decoder type '{}' is not supported", type);
}

}  // namespace shardwise::tokenizer
