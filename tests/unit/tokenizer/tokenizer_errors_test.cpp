// Bad input gives clear errors, never a crash: malformed or unsupported tokenizer.json, invalid
// UTF-8 text, ids outside the vocabulary, missing files.
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

}  // namespace
}  // namespace shardwise::testing
