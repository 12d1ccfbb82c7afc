// Bad input gives clear errors, never a crash: malformed or unsupported tokenizer.json, invalid
// UTF-8 text, ids outside the vocabulary, missing files, and files past the limits of
// spec_limits.h (which arrive from the network in a shard's registration).
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/test_support.h"
#include "tests/unit/tokenizer/tokenizer_fixtures.h"
#include "tokenizer/tokenizer.h"

namespace shardwise::testing {
namespace {

// A minimal valid byte-level tokenizer.json to mutate.
nlohmann::json tiny_tokenizer_json() {
  return nlohmann::json::parse(R"({
    "added_tokens": [{"id": 3, "content": "<s>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "post_processor": null,
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
  })");
}

Status load_status(const std::string& json_text) {
  return Tokenizer::from_json(json_text).status();
}

TEST(TokenizerErrors, TinyTokenizerWorks) {
  auto tokenizer = Tokenizer::from_json(tiny_tokenizer_json().dump());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
  EXPECT_EQ(*(*tokenizer)->encode("ab<s>a", false), (std::vector<int32_t>{2, 3, 0}));
  EXPECT_EQ((*tokenizer)->vocab_size(), 4u);
}

TEST(TokenizerErrors, MalformedJson) {
  const Status status = load_status("{\"model\": ");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("not valid JSON"), std::string::npos) << status.to_string();
}

TEST(TokenizerErrors, MissingModel) {
  const Status status = load_status("{}");
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("model"), std::string::npos) << status.to_string();
}

TEST(TokenizerErrors, WrongTypes) {
  nlohmann::json spec = tiny_tokenizer_json();
  spec["model"]["vocab"]["a"] = "zero";
  EXPECT_EQ(load_status(spec.dump()).code(), StatusCode::kInvalidArgument);
}

TEST(TokenizerErrors, UnknownModelType) {
  nlohmann::json spec = tiny_tokenizer_json();
  spec["model"]["type"] = "Unigram";
  const Status status = load_status(spec.dump());
  EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
  EXPECT_NE(status.message().find("'Unigram'"), std::string::npos) << status.to_string();
}

TEST(TokenizerErrors, UnsupportedComponentsAreNamed) {
  const std::pair<const char*, const char*> cases[] = {{"normalizer", "BertNormalizer"},
                                                       {"pre_tokenizer", "Whitespace"},
                                                       {"decoder", "WordPiece"},
                                                       {"post_processor", "Fancy"}};
  for (const auto& [section, type] : cases) {
    nlohmann::json spec = tiny_tokenizer_json();
    spec[section] = {{"type", type}};
    const Status status = load_status(spec.dump());
    EXPECT_EQ(status.code(), StatusCode::kUnimplemented) << section;
    EXPECT_NE(status.message().find(type), std::string::npos) << status.to_string();
  }
}

TEST(TokenizerErrors, MergeOutsideVocabulary) {
  nlohmann::json spec = tiny_tokenizer_json();
  spec["model"]["merges"] = {"a c"};
  const Status status = load_status(spec.dump());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("'a c'"), std::string::npos) << status.to_string();
}

TEST(TokenizerErrors, BadRegex) {
  nlohmann::json spec = tiny_tokenizer_json();
  spec["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  const Status status = load_status(spec.dump());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("(unclosed"), std::string::npos) << status.to_string();
}

TEST(TokenizerErrors, BadChatTemplate) {
  const Status status =
      Tokenizer::from_json(tiny_tokenizer_json().dump(), R"({"chat_template": "{% for x in y %}"})")
          .status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("endfor"), std::string::npos) << status.to_string();
}

TEST(TokenizerErrors, InvalidUtf8Text) {
  for (const std::string& text : {std::string("abc\xFF"), std::string("\xC3"),
                                  std::string("\xED\xA0\x80"), std::string("ok \xE2\x82")}) {
    auto ids = llama3_tokenizer().encode(text, true);
    EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ids.status().message().find("UTF-8"), std::string::npos) << ids.status().to_string();
  }
}

TEST(TokenizerErrors, IdsOutsideVocabulary) {
  for (const int32_t id : {-1, 128256, 1 << 30}) {
    const std::vector<int32_t> ids = {9906, id};
    auto text = llama3_tokenizer().decode(ids, false);
    EXPECT_EQ(text.status().code(), StatusCode::kOutOfRange);
    EXPECT_NE(text.status().message().find(std::to_string(id)), std::string::npos);
  }
}

TEST(TokenizerErrors, MissingDirectory) {
  auto tokenizer = Tokenizer::load(scratch_dir("empty-tokenizer-dir"));
  EXPECT_EQ(tokenizer.status().code(), StatusCode::kNotFound);
  EXPECT_NE(tokenizer.status().message().find("tokenizer.json"), std::string::npos);
}

TEST(TokenizerErrors, CorruptGzip) {
  const auto dir = scratch_dir("corrupt-gzip");
  std::ofstream(dir / "tokenizer.json.gz", std::ios::binary) << "\x1f\x8b\x08\x00garbage";
  auto tokenizer = Tokenizer::load(dir);
  EXPECT_FALSE(tokenizer.ok());
}

// Each of these once crashed (recursion, a 2^31-entry table), wrapped an id or looped forever.
TEST(TokenizerLimits, HostileFilesAreRefused) {
  const auto refused = [](const nlohmann::json& spec, std::string_view what,
                          const std::string& config = "", const std::string& generation = "") {
    const Status status = Tokenizer::from_json(spec.dump(), config, generation).status();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
    EXPECT_NE(status.message().find(what), std::string::npos) << status.to_string();
  };
  // Built as text: nlohmann::json copies and dumps recursively, which is the point.
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += R"({"type": "Sequence", "normalizers": [)";
  deep += R"({"type": "Lowercase"})";
  for (int i = 0; i < 10000; ++i) deep += "]}";
  nlohmann::json spec = tiny_tokenizer_json();
  spec["normalizer"] = "DEEP";
  std::string text = spec.dump();
  text.replace(text.find("\"DEEP\""), 6, deep);
  const Status deep_status = Tokenizer::from_json(text).status();
  EXPECT_EQ(deep_status.code(), StatusCode::kInvalidArgument) << deep_status.to_string();
  EXPECT_NE(deep_status.message().find("nests deeper than"), std::string::npos);

  spec = tiny_tokenizer_json();
  spec["normalizer"] = {{"type", "Sequence"}, {"normalizers", nlohmann::json::array()}};
  for (int i = 0; i < 100; ++i)
    spec["normalizer"]["normalizers"].push_back({{"type", "Lowercase"}});
  refused(spec, "more than 64");

  spec = tiny_tokenizer_json();
  spec["model"]["vocab"]["x"] = 100000;
  refused(spec, "sparse");
  spec = tiny_tokenizer_json();
  spec["model"]["vocab"]["x"] = 4294967297;
  refused(spec, "4294967297");

  spec = tiny_tokenizer_json();
  spec["added_tokens"][0]["id"] = 4294967297;
  refused(spec, "4294967297");
  spec = tiny_tokenizer_json();
  spec["added_tokens"][0]["id"] = -1;
  refused(spec, "-1");
  spec = tiny_tokenizer_json();
  spec["added_tokens"][0]["content"] = std::string(2000, 'x');
  refused(spec, "too long");

  spec = tiny_tokenizer_json();
  spec["post_processor"] = {
      {"type", "BertProcessing"}, {"cls", {"<s>", 4294967299}}, {"sep", {"<s>", 3}}};
  refused(spec, "4294967299");
  spec["post_processor"]["cls"][1] = 7;
  refused(spec, "outside the vocabulary");

  refused(tiny_tokenizer_json(), "4294967297", "", R"({"eos_token_id": [4294967297]})");
  refused(tiny_tokenizer_json(), "outside the vocabulary", "", R"({"eos_token_id": 99})");

  spec = tiny_tokenizer_json();
  spec["decoder"] = {{"type", "Strip"}, {"content", ""}, {"start", 1000000000000}};
  refused(spec, "empty content");
  // A count past uint64 parses as a double (seen by the fuzzer: 92233720368547758080), whose
  // conversion to size_t was undefined; a negative one wrapped.
  for (const nlohmann::json& count : {nlohmann::json(9.2233720368547758e19), nlohmann::json(-1),
                                      nlohmann::json(1.5), nlohmann::json("1")}) {
    spec["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", count}};
    refused(spec, "'stop' must be a non-negative integer");
  }
  spec["decoder"] = {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 2}};
  EXPECT_TRUE(Tokenizer::from_json(spec.dump()).ok());

  refused(tiny_tokenizer_json(), "nested more than",
          nlohmann::json{{"chat_template", "{{ " + std::string(5000, '(') + " }}"}}.dump());
}

// A pattern that backtracks exponentially fails the request instead of spinning, while real
// patterns take megabytes of text in stride.
TEST(TokenizerLimits, RegexBacktrackingIsBounded) {
  nlohmann::json spec = tiny_tokenizer_json();
  spec["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(a|aa)+$"}}}, {"behavior", "Isolated"}};
  auto tokenizer = Tokenizer::from_json(spec.dump());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().to_string();
  const auto ids = (*tokenizer)->encode(std::string(60, 'a') + "b", false);
  EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument) << ids.status().to_string();
  EXPECT_NE(ids.status().message().find("backtracks"), std::string::npos);

  for (const std::string& text :
       {std::string(1 << 20, 'a'), std::string(1 << 20, ' '), std::string(1 << 20, '7')}) {
    const auto long_ids = llama3_tokenizer().encode(text, false);
    EXPECT_TRUE(long_ids.ok()) << long_ids.status().to_string();
  }
}

}  // namespace
}  // namespace shardwise::testing
