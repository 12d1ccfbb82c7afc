#include "bench/loadgen/workload.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/hash.h"

namespace shardwise::loadgen {
namespace {

using json = nlohmann::json;

// Words for the text prompts of chat endpoints: common, short, and each one or two tokens in
// most vocabularies.
constexpr std::string_view kWords[] = {
    "time",   "year",   "people",   "way",   "day",    "man",     "thing",  "woman",   "life",
    "child",  "world",  "school",   "state", "family", "student", "group",  "country", "problem",
    "hand",   "part",   "place",    "case",  "week",   "company", "system", "program", "question",
    "work",   "number", "night",    "point", "home",   "water",   "room",   "mother",  "area",
    "money",  "story",  "fact",     "month", "lot",    "right",   "study",  "book",    "eye",
    "job",    "word",   "business", "issue", "side",   "kind",    "head",   "house",   "service",
    "friend", "father", "power",    "hour",  "game",   "line",    "end",    "member",  "law",
    "car",    "city",   "name",     "team",  "minute", "idea",    "body"};

StatusOr<int> parse_int(std::string_view text, std::string_view what) {
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 1) {
    return invalid_argument("{}: expected a positive integer, got '{}'", what, text);
  }
  return value;
}

int draw(std::mt19937_64& rng, LengthRange range) {
  return std::uniform_int_distribution<int>(range.min, range.max)(rng);
}

std::vector<int32_t> random_ids(std::mt19937_64& rng, int n, int vocab_size) {
  std::uniform_int_distribution<int32_t> id(3, vocab_size - 1);
  std::vector<int32_t> ids(n);
  for (int32_t& v : ids) v = id(rng);
  return ids;
}

std::string random_words(std::mt19937_64& rng, int n) {
  std::uniform_int_distribution<size_t> word(0, std::size(kWords) - 1);
  std::string text;
  for (int i = 0; i < n; ++i) {
    if (i > 0) text += ' ';
    text += kWords[word(rng)];
  }
  return text;
}

bool wants_text(PromptForms forms) { return forms == PromptForms::kTextOrChat; }

StatusOr<RequestSpec> parse_line(const json& line, PromptForms forms) {
  if (!line.is_object()) return invalid_argument("expected a JSON object");
  RequestSpec spec;
  if (auto it = line.find("max_tokens"); it != line.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > INT32_MAX) {
      return invalid_argument("'max_tokens' must be a positive integer");
    }
    spec.max_tokens = it->get<int>();
  } else {
    spec.max_tokens = 0;  // taken from --output-len
  }
  if (auto it = line.find("messages"); it != line.end()) {
    if (forms == PromptForms::kIdsOrText) {
      return invalid_argument("chat messages need --protocol chat or grpc");
    }
    if (!it->is_array() || it->empty()) return invalid_argument("'messages' must be non-empty");
    for (const json& m : *it) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() ||
          !m.contains("content") || !m["content"].is_string()) {
        return invalid_argument("each message needs string 'role' and 'content'");
      }
      spec.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    return spec;
  }
  auto it = line.find("prompt");
  if (it == line.end()) return invalid_argument("needs 'prompt' or 'messages'");
  if (it->is_string()) {
    if (forms == PromptForms::kTextOrChat) {
      spec.messages.push_back({"user", it->get<std::string>()});
    } else {
      spec.prompt_text = it->get<std::string>();
    }
    return spec;
  }
  if (!it->is_array() || it->empty() ||
      !std::all_of(it->begin(), it->end(), [](const json& v) { return v.is_number_integer(); })) {
    return invalid_argument("'prompt' must be a string or a non-empty array of token ids");
  }
  if (forms == PromptForms::kTextOrChat) {
    return invalid_argument("token-id prompts need --protocol completions or grpc");
  }
  for (const json& v : *it) spec.prompt_ids.push_back(v.get<int32_t>());
  return spec;
}

StatusOr<std::vector<RequestSpec>> read_jsonl(const std::string& path, PromptForms forms) {
  std::ifstream in(path);
  if (!in) return not_found("cannot read the prompts file {}", path);
  std::vector<RequestSpec> lines;
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (line.is_discarded()) return invalid_argument("{}:{}: not valid JSON", path, number);
    StatusOr<RequestSpec> spec = parse_line(line, forms);
    if (!spec.ok()) return spec.status().with_context(fmt::format("{}:{}", path, number));
    lines.push_back(std::move(spec).value());
  }
  if (lines.empty()) return invalid_argument("{}: no prompts", path);
  return lines;
}

}  // namespace

StatusOr<LengthRange> parse_length_range(std::string_view text) {
  const size_t dash = text.find('-');
  LengthRange range;
  SW_ASSIGN_OR_RETURN(range.min, parse_int(text.substr(0, dash), "length"));
  range.max = range.min;
  if (dash != std::string_view::npos) {
    SW_ASSIGN_OR_RETURN(range.max, parse_int(text.substr(dash + 1), "length"));
  }
  if (range.max < range.min) return invalid_argument("length range {}: max below min", text);
  return range;
}

StatusOr<Workload> Workload::create(const WorkloadOptions& options) {
  Workload workload(options);
  if (options.kind == "jsonl") {
    SW_ASSIGN_OR_RETURN(workload.lines_, read_jsonl(options.jsonl_path, options.forms));
  } else if (options.kind == "random" || options.kind == "shared-prefix") {
    if (options.vocab_size < 4) {
      return invalid_argument("--vocab-size must be at least 4, got {}", options.vocab_size);
    }
    if (options.num_prefixes < 1 || options.questions_per_prefix < 1 || options.prefix_len < 1) {
      return invalid_argument("--num-prefixes, --questions-per-prefix, --prefix-len must be >= 1");
    }
  } else {
    return invalid_argument("unknown workload '{}' (random, shared-prefix or jsonl)", options.kind);
  }
  return workload;
}

RequestSpec Workload::request(int64_t index) const { return make(0, index); }

RequestSpec Workload::warmup_request(int64_t index) const { return make(1, index); }

RequestSpec Workload::make(uint64_t stream, int64_t index) const {
  RequestSpec spec;
  const uint64_t seed = mix64(mix64(options_.seed ^ (stream << 62)) ^ static_cast<uint64_t>(index));
  if (options_.kind == "jsonl") {
    spec = lines_[static_cast<size_t>(index) % lines_.size()];
    if (spec.max_tokens == 0) {
      std::mt19937_64 rng(seed);
      spec.max_tokens = draw(rng, options_.output);
    }
  } else if (options_.kind == "shared-prefix") {
    spec = shared_prefix_request(stream, index);
  } else {
    spec = random_request(seed);
  }
  spec.index = index;
  spec.ignore_eos = options_.ignore_eos;
  return spec;
}

RequestSpec Workload::random_request(uint64_t seed) const {
  std::mt19937_64 rng(seed);
  RequestSpec spec;
  const int input = draw(rng, options_.input);
  spec.max_tokens = draw(rng, options_.output);
  if (wants_text(options_.forms)) {
    spec.messages.push_back({"user", random_words(rng, input)});
  } else {
    spec.prompt_ids = random_ids(rng, input, options_.vocab_size);
  }
  return spec;
}

RequestSpec Workload::shared_prefix_request(uint64_t stream, int64_t index) const {
  const uint64_t n = static_cast<uint64_t>(options_.num_prefixes);
  const uint64_t m = static_cast<uint64_t>(options_.questions_per_prefix);
  const uint64_t prefix = static_cast<uint64_t>(index) % n;
  const uint64_t question = static_cast<uint64_t>(index) / n % m;
  const uint64_t base = mix64(options_.seed ^ (stream << 62));
  std::mt19937_64 prefix_rng(mix64(base ^ (prefix << 32)));
  std::mt19937_64 question_rng(mix64(base ^ (prefix << 32) ^ (question + 1)));
  RequestSpec spec;
  const int input = draw(question_rng, options_.input);
  spec.max_tokens = draw(question_rng, options_.output);
  if (wants_text(options_.forms)) {
    spec.messages.push_back({"system", random_words(prefix_rng, options_.prefix_len)});
    spec.messages.push_back({"user", random_words(question_rng, input)});
  } else {
    spec.prompt_ids = random_ids(prefix_rng, options_.prefix_len, options_.vocab_size);
    const std::vector<int32_t> q = random_ids(question_rng, input, options_.vocab_size);
    spec.prompt_ids.insert(spec.prompt_ids.end(), q.begin(), q.end());
  }
  return spec;
}

}  // namespace shardwise::loadgen
