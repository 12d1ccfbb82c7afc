// Requests and registrations past their limits, through the functions the gRPC and HTTP front
// ends call: integers that used to wrap (2^32 + 1 read as 1), the empty prompt, floats past
// float's range, JSON nested too deep, and a model card whose chat template nests 5,000 deep
// (it took the coordinator down with SIGSEGV in issue 15).
#include <gtest/gtest.h>

#include "coordinator/generation.h"
#include "coordinator/openai_protocol.h"
#include "tests/coordinator/test_cards.h"

namespace shardwise {
namespace {

constexpr int64_t kWraps = (int64_t{1} << 32) + 1;  // int32 would read 1

v1::ModelCard stories_card(const std::string& chat_template) {
  // At an address never dialled: these requests fail before routing.
  v1::ModelCard card = test_card("127.0.0.1:1", "cpu", 1);
  card.set_tokenizer_config_json(
      nlohmann::json{{"bos_token", "<s>"}, {"eos_token", "</s>"}, {"chat_template", chat_template}}
          .dump());
  return card;
}

class RequestLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.register_replica(stories_card("{{ messages[0].content }}")).ok());
  }

  Status prepare_status(const v1::GenerateRequest& request) {
    return generation_.prepare(request).status();
  }

  v1::GenerateRequest text_request(const std::string& text) {
    v1::GenerateRequest request;
    request.set_model("stories");
    request.set_text(text);
    return request;
  }

  Registry registry_{std::chrono::milliseconds(1000), 3, {}};
  Metrics metrics_;
  Generation generation_{registry_, metrics_};
};

void expect_invalid(const Status& status, const std::string& needle) {
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(needle), std::string::npos) << status.to_string();
}

TEST_F(RequestLimits, GrpcIntegersDoNotWrap) {
  v1::GenerateRequest ids = text_request("");
  ids.mutable_token_ids()->add_ids(1);
  ids.mutable_token_ids()->add_ids(kWraps);
  expect_invalid(prepare_status(ids), "token id 4294967297");

  const std::pair<void (*)(v1::SamplingParams&), const char*> cases[] = {
      {[](v1::SamplingParams& s) { s.set_top_k(kWraps); }, "top_k must be in"},
      {[](v1::SamplingParams& s) { s.set_max_tokens(kWraps); }, "max_tokens must be in"},
      {[](v1::SamplingParams& s) { s.set_max_tokens(0); }, "max_tokens must be in"},
      {[](v1::SamplingParams& s) { s.set_logprobs(kWraps); }, "logprobs must be in [0, 20]"},
      {[](v1::SamplingParams& s) { s.set_logprobs(-1); }, "logprobs must be in [0, 20]"},
      {[](v1::SamplingParams& s) { s.add_stop_token_ids(kWraps); }, "stop_token_ids must be in"},
  };
  for (const auto& [set, needle] : cases) {
    v1::GenerateRequest request = text_request("Once");
    set(*request.mutable_sampling());
    expect_invalid(prepare_status(request), needle);
  }
}

// v1 clients wrote these fields as int32: the same varints, read the same by int64 fields.
TEST_F(RequestLimits, Int32EncodedFieldsStillParse) {
  v1::GenerateRequest request = text_request("Once");
  request.mutable_sampling()->set_top_k(-1);
  request.mutable_sampling()->set_max_tokens(5);
  v1::GenerateRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(request.SerializeAsString()));
  EXPECT_EQ(parsed.sampling().top_k(), -1);
  EXPECT_EQ(parsed.sampling().max_tokens(), 5);
}

TEST_F(RequestLimits, EmptyPromptsAreRefused) {
  expect_invalid(prepare_status(text_request("")), "the prompt is empty");
  v1::GenerateRequest ids = text_request("");
  ids.mutable_token_ids();
  expect_invalid(prepare_status(ids), "the prompt is empty");
  v1::GenerateRequest chat = text_request("");
  chat.mutable_chat();
  expect_invalid(prepare_status(chat), "'messages' must be a non-empty array");
  EXPECT_TRUE(prepare_status(text_request("Once")).ok());
}

TEST_F(RequestLimits, HttpIntegersDoNotWrap) {
  auto parsed = parse_openai_request(
      R"({"model": "stories", "prompt": [1, 4294967297], "top_k": 4294967297})",
      ApiKind::kCompletion);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->request.token_ids().ids(1), kWraps);
  EXPECT_EQ(parsed->request.sampling().top_k(), kWraps);
  expect_invalid(prepare_status(parsed->request), "token id 4294967297");

  parsed = parse_openai_request(R"({"model": "stories", "prompt": "x", "logprobs": 4294967297})",
                                ApiKind::kCompletion);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  expect_invalid(prepare_status(parsed->request), "logprobs must be in [0, 20], got 4294967297");

  parsed = parse_openai_request(
      R"({"model": "stories", "messages": [{"role": "user", "content": "x"}], "logprobs": true,
          "top_logprobs": 4294967297, "max_tokens": 4294967297})",
      ApiKind::kChat);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  expect_invalid(prepare_status(parsed->request), "must be in");

  const std::pair<const char*, const char*> refused[] = {
      {R"({"model": "m", "prompt": [9223372036854775808]})", "out of range"},
      {R"({"model": "m", "prompt": "x", "n": 18446744073709551615})", "out of range"},
      {R"({"model": "m", "prompt": "x", "max_tokens": 1e3})", "must be an integer"},
      {R"({"model": "m", "prompt": "x", "temperature": 1e300})", "out of range"},
      {R"({"model": "m", "prompt": "x", "top_p": -1e39})", "out of range"},
  };
  for (const auto& [body, needle] : refused) {
    expect_invalid(parse_openai_request(body, ApiKind::kCompletion).status(), needle);
  }
}

TEST_F(RequestLimits, DeepJsonBodiesAreRefused) {
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  expect_invalid(
      parse_openai_request(R"({"model": "m", "prompt": )" + deep + "}", ApiKind::kCompletion)
          .status(),
      "nests deeper");
}

// The coordinator parses a registering shard's chat template; this one used to overflow its
// stack. Now the registration fails, and the registry goes on serving.
TEST_F(RequestLimits, NestedTemplateRegistrationIsAnError) {
  const std::string nested = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  v1::ModelCard card = stories_card(nested);
  card.set_name("nested");  // a model of its own: the template is judged, not the card's match
  card.set_address("127.0.0.1:2");
  const auto registered = registry_.register_replica(card);
  expect_invalid(registered.status(), "nested more than");
  EXPECT_TRUE(prepare_status(text_request("Once")).ok());
}

// A template that registers (it parses) but would take a render apart: the chat request fails
// with a Status and the next one works.
TEST_F(RequestLimits, HostileTemplateFailsItsChatRequests) {
  v1::ModelCard card = stories_card("{{ 'a' * 100000000 }}");
  card.set_name("hostile");
  card.set_address("127.0.0.1:3");
  ASSERT_TRUE(registry_.register_replica(card).ok());
  v1::GenerateRequest chat;
  chat.set_model("hostile");
  v1::ChatMessage* message = chat.mutable_chat()->add_messages();
  message->set_role("user");
  message->set_content("hi");
  expect_invalid(prepare_status(chat), "limit of");
  EXPECT_TRUE(prepare_status(text_request("Once")).ok());
}

}  // namespace
}  // namespace shardwise
