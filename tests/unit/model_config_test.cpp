#include "models/model_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace shardwise {
namespace {

using nlohmann::json;

json minimal_config() {
  return {{"model_type", "llama"},         {"hidden_size", 64},        {"intermediate_size", 176},
          {"num_hidden_layers", 2},        {"num_attention_heads", 4}, {"vocab_size", 1000},
          {"max_position_embeddings", 512}};
}

TEST(LlamaConfig, ReadsTheRopeParametersSpelling) {
  auto config = load_llama_config(testing::testdata_dir() / "hf-tiny/tiny-llama-gqa-f32");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_EQ(config->hidden_size, 64);
  EXPECT_EQ(config->num_key_value_heads, 2);
  EXPECT_EQ(config->head_dim, 16);
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_EQ(config->rope.type, RopeType::kDefault);
  EXPECT_FLOAT_EQ(config->rope.theta, 10000.0f);
}

TEST(LlamaConfig, ReadsTheRopeThetaAndScalingSpelling) {
  auto config = load_llama_config(testing::testdata_dir() / "hf-tiny/tiny-llama3-rope-scaled-f32");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_TRUE(config->tie_word_embeddings);
  EXPECT_EQ(config->rope.type, RopeType::kLlama3);
  EXPECT_FLOAT_EQ(config->rope.theta, 500000.0f);
  EXPECT_FLOAT_EQ(config->rope.factor, 8.0f);
  EXPECT_EQ(config->rope.original_max_position_embeddings, 256);
  EXPECT_EQ(config->eos_token_ids, std::vector<int>{2});
}

TEST(LlamaConfig, LlamaThreeInRopeParametersSpelling) {
  json config = minimal_config();
  config["rope_parameters"] = {
      {"rope_type", "llama3"},   {"rope_theta", 500000.0},
      {"factor", 32.0},          {"low_freq_factor", 1.0},
      {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  auto parsed = parse_llama_config(config.dump(), "config.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->rope.type, RopeType::kLlama3);
  EXPECT_FLOAT_EQ(parsed->rope.factor, 32.0f);
  EXPECT_FLOAT_EQ(parsed->rope.theta, 500000.0f);
}

TEST(LlamaConfig, DefaultsKvHeadsAndHeadDim) {
  auto parsed = parse_llama_config(minimal_config().dump(), "config.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->num_key_value_heads, 4);
  EXPECT_EQ(parsed->head_dim, 16);
}

TEST(LlamaConfig, MissingRequiredKeyIsNamed) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "vocab_size", "max_position_embeddings"}) {
    json config = minimal_config();
    config.erase(key);
    auto parsed = parse_llama_config(config.dump(), "my/config.json");
    ASSERT_FALSE(parsed.ok()) << key;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(key), std::string::npos) << parsed.status().message();
    EXPECT_NE(parsed.status().message().find("my/config.json"), std::string::npos);
  }
}

TEST(LlamaConfig, RejectsBadValuesWithClearErrors) {
  auto expect_error = [](json config, const std::string& needle) {
    auto parsed = parse_llama_config(config.dump(), "config.json");
    ASSERT_FALSE(parsed.ok()) << needle;
    EXPECT_NE(parsed.status().message().find(needle), std::string::npos)
        << parsed.status().message();
  };
  json config = minimal_config();
  config["hidden_size"] = -64;
  expect_error(config, "hidden_size");
  config = minimal_config();
  config["num_key_value_heads"] = 3;
  expect_error(config, "multiple of num_key_value_heads");
  config = minimal_config();
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_error(config, "yarn");
  config = minimal_config();
  config["model_type"] = "gpt2";
  expect_error(config, "gpt2");
  auto not_json = parse_llama_config("{\"hidden_size\": 64,", "config.json");
  EXPECT_FALSE(not_json.ok());
  EXPECT_NE(not_json.status().message().find("not valid JSON"), std::string::npos);
}

// Values that used to be accepted and then fed the forward pass infinities, a silently rounded
// head_dim or wrapped token ids.
TEST(LlamaConfig, ValuesOutsideTheirRangesAreRefused) {
  const std::pair<const char*, json> cases[] = {
      {"rms_norm_eps", 1e308},
      {"rms_norm_eps", 0},
      {"rms_norm_eps", 1e-50},  // above 0, but 0 as a float
      {"rms_norm_eps", -1e-5},
      {"rms_norm_eps", 1.5},
      {"rms_norm_eps", "1e-5"},
      {"rope_theta", 1e300},
      {"rope_theta", 0},
      {"hidden_size", 4294967360LL},
      {"hidden_size", 1 << 20},
      {"vocab_size", 1LL << 40},
      {"num_hidden_layers", 1.5},
      {"max_position_embeddings", 0},
      {"num_key_value_heads", -4},
      {"head_dim", 1 << 20},
      {"bos_token_id", 4294967297LL},
      {"bos_token_id", 1000},
      {"eos_token_id", json::array({2, -1})},
  };
  for (const auto& [key, value] : cases) {
    json config = minimal_config();
    config[key] = value;
    SCOPED_TRACE(config.dump());
    auto parsed = parse_llama_config(config.dump(), "config.json");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(key), std::string::npos) << parsed.status().message();
  }
  json config = minimal_config();
  config["hidden_size"] = 66;  // not a multiple of the 4 heads, and no head_dim to say otherwise
  auto parsed = parse_llama_config(config.dump(), "config.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("multiple of num_attention_heads"), std::string::npos);
  config["head_dim"] = 16;
  EXPECT_TRUE(parse_llama_config(config.dump(), "config.json").ok());
  config = minimal_config();
  config["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 1e39},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  EXPECT_FALSE(parse_llama_config(config.dump(), "config.json").ok());
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  parsed = parse_llama_config(R"({"hidden_size": )" + deep + "}", "config.json");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("nests deeper"), std::string::npos);
}

TEST(LlamaConfig, MissingFileIsNotFound) {
  auto parsed = load_llama_config("/nonexistent/model");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kNotFound);
  EXPECT_NE(parsed.status().message().find("/nonexistent/model/config.json"), std::string::npos);
}

}  // namespace
}  // namespace shardwise
