// The coordinator's OpenAI features without a replica: parsing of n, best_of, echo,
// logit_bias, stream_options, chat content parts and refused fields; responses of several
// choices (streamed and whole, best_of's ranking, echo, the usage chunk); per-choice seeds;
// /tokenize and /detokenize; the embeddings wire format.
#include <gtest/gtest.h>

#include <set>

#include "coordinator/generation.h"
#include "coordinator/openai_embeddings.h"
#include "coordinator/openai_protocol.h"
#include "coordinator/openai_response.h"
#include "coordinator/tokenize_api.h"
#include "tests/coordinator/test_cards.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

using nlohmann::json;

// A registry that knows stories260K (with its chat template) at an address nobody serves.
class Coordinator : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(registry_.register_replica(card("127.0.0.1:1")).ok()); }

  static v1::ModelCard card(const std::string& address) {
    v1::ModelCard c = test_card(address);
    c.set_name("stories260K");
    c.set_tokenizer_config_json(
        read_test_file(testing::default_model_dir() / "tokenizer_config.json"));
    return c;
  }
  Registry registry_{std::chrono::milliseconds(1000), 3, {}};
  Metrics metrics_;
  Generation generation_{registry_, metrics_};
};

TEST_F(Coordinator, ChoicesGoWhereTheFirstWentAndModelsHaveACreationTime) {
  ASSERT_TRUE(registry_.register_replica(card("127.0.0.1:2")).ok());
  auto first = registry_.pick("stories260K", v1::PRIORITY_INTERACTIVE, {});
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 4; ++i) {  // idle replicas otherwise go round robin
    auto picked = registry_.pick("stories260K", v1::PRIORITY_INTERACTIVE, {}, (*first)->id);
    ASSERT_TRUE(picked.ok());
    EXPECT_EQ((*picked)->id, (*first)->id);
  }
  registry_.mark_dead(**first, "test");
  auto elsewhere = registry_.pick("stories260K", v1::PRIORITY_INTERACTIVE, {}, (*first)->id);
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_NE((*elsewhere)->id, (*first)->id);
  EXPECT_GT(registry_.created("stories260K"), 1700000000);
  EXPECT_EQ(registry_.created("nope"), 0);
}

Status parse_error(const std::string& body, ApiKind kind = ApiKind::kCompletion) {
  return parse_openai_request(body, kind).status();
}

TEST(OpenAiFields, ChoicesEchoBiasAndStreamOptions) {
  auto r = parse_openai_request(
      R"({"model":"m","prompt":"Hi","n":2,"best_of":5,"echo":true,"logprobs":1,
          "logit_bias":{"13":-100,"7":2.5},"stop_token_ids":[2]})",
      ApiKind::kCompletion);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->n, 2);
  EXPECT_EQ(r->request.sampling().n(), 5);  // best_of choices are generated
  EXPECT_TRUE(r->echo);
  EXPECT_EQ(r->request.sampling().prompt_logprobs(), 1);
  EXPECT_EQ(r->request.sampling().logit_bias().at(13), -100.0f);
  EXPECT_EQ(r->request.sampling().logit_bias().at(7), 2.5f);
  EXPECT_EQ(r->request.sampling().stop_token_ids(0), 2);
  // best_of ranks by cumulative log-probability: asked for even when the client did not.
  auto ranked =
      parse_openai_request(R"({"model":"m","prompt":"Hi","best_of":3})", ApiKind::kCompletion);
  ASSERT_TRUE(ranked.ok());
  EXPECT_TRUE(ranked->request.sampling().has_logprobs());
  EXPECT_FALSE(ranked->logprobs);
  auto streamed = parse_openai_request(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,
          "stream_options":{"include_usage":true}})",
      ApiKind::kChat);
  ASSERT_TRUE(streamed.ok()) << streamed.status().to_string();
  EXPECT_TRUE(streamed->include_usage);
}

TEST(OpenAiFields, ChatContentPartsNamesAndRoles) {
  auto r = parse_openai_request(
      R"({"model":"m","messages":[
           {"role":"developer","content":[{"type":"text","text":"Be"},{"type":"text","text":"kind"}]},
           {"role":"user","content":"Hi","name":"Lily"},
           {"role":"tool","content":"42","tool_call_id":"call_1"}],
          "response_format":{"type":"text"},"tool_choice":"none","store":false,"user":"u1",
          "modalities":["text"],"service_tier":"auto","metadata":{"k":"v"}})",
      ApiKind::kChat);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const auto& messages = r->request.chat().messages();
  ASSERT_EQ(messages.size(), 3);
  EXPECT_EQ(messages[0].role(), "system");
  EXPECT_EQ(messages[0].content(), "Be\nkind");
  EXPECT_EQ(messages[1].name(), "Lily");
  EXPECT_EQ(messages[2].tool_call_id(), "call_1");
}

TEST(OpenAiFields, RefusedFieldsAreNamed) {
  struct Case {
    std::string body;
    std::string message;
    ApiKind kind = ApiKind::kChat;
  };
  const std::string chat = R"("model":"m","messages":[{"role":"user","content":"x"}])";
  const Case cases[] = {
      {"{" + chat + R"(,"tools":[{"type":"function"}]})", "'tools' is not supported"},
      {"{" + chat + R"(,"tool_choice":"auto"})", "'tool_choice' is not supported"},
      {"{" + chat + R"(,"functions":[{"name":"f"}]})", "'functions' is not supported"},
      {"{" + chat + R"(,"response_format":{"type":"json_object"}})", "'response_format'"},
      {"{" + chat + R"(,"response_format":{"type":7}})", "'response_format'"},
      {"{" + chat + R"(,"response_format":"text"})", "'response_format'"},
      {"{" + chat + R"(,"store":true})", "'store' is not supported"},
      {"{" + chat + R"(,"audio":{"voice":"x"}})", "'audio' is not supported"},
      {"{" + chat + R"(,"modalities":["text","audio"]})", "'modalities'"},
      {"{" + chat + R"(,"echo":true})", "unknown field 'echo'"},
      {"{" + chat + R"(,"temprature":1})", "unknown field 'temprature'"},
      {"{" + chat + R"(,"stream_options":{"include_usage":true}})", "only allowed with stream"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "content part of type 'image_url'"},
      {R"({"model":"m","messages":[{"role":"function","content":"x"}]})",
       "unsupported role 'function'"},
      {R"({"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[]}]})",
       "'tool_calls' is not supported"},
      {R"({"model":"m","prompt":"x","suffix":"y"})", "'suffix' is not supported",
       ApiKind::kCompletion},
      {R"({"model":"m","prompt":"x","best_of":2,"n":3})", "'best_of' must be in [n, 16]",
       ApiKind::kCompletion},
      {R"({"model":"m","prompt":"x","best_of":2,"stream":true})", "cannot be streamed",
       ApiKind::kCompletion},
      {R"({"model":"m","prompt":"x","logit_bias":{"x":1}})", "not a token id",
       ApiKind::kCompletion},
      {R"({"model":"m","prompt":"x","logit_bias":{"5":"high"}})", "must be a number",
       ApiKind::kCompletion},
  };
  for (const Case& c : cases) {
    Status status = parse_error(c.body, c.kind);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(status.message().find(c.message), std::string::npos)
        << c.body << " -> " << status.message();
  }
}

TEST_F(Coordinator, SeedsArePerChoiceAndFreshUnlessGiven) {
  auto prepare = [&](const std::string& body) {
    auto request = parse_openai_request(body, ApiKind::kCompletion);
    EXPECT_TRUE(request.ok()) << request.status().to_string();
    auto prepared = generation_.prepare(request->request);
    EXPECT_TRUE(prepared.ok()) << prepared.status().to_string();
    return prepared->seeds;
  };
  EXPECT_EQ(prepare(R"({"model":"stories260K","prompt":"Hi","n":3,"seed":5})"),
            (std::vector<uint64_t>{5, 6, 7}));
  std::set<uint64_t> fresh;
  for (int i = 0; i < 10; ++i) {
    for (uint64_t seed : prepare(R"({"model":"stories260K","prompt":"Hi","n":2})")) {
      fresh.insert(seed);
    }
  }
  EXPECT_EQ(fresh.size(), 20u);
  auto bad_bias = generation_.prepare(
      parse_openai_request(R"({"model":"stories260K","prompt":"Hi","logit_bias":{"512":1}})",
                           ApiKind::kCompletion)
          ->request);
  EXPECT_NE(bad_bias.status().message().find("token id 512 outside the vocabulary"),
            std::string::npos)
      << bad_bias.status().to_string();
}

v1::GenerateResponse message(int index, std::vector<int32_t> ids, std::string text,
                             std::optional<float> logprob = std::nullopt) {
  v1::GenerateResponse m;
  m.set_index(index);
  m.mutable_token_ids()->Assign(ids.begin(), ids.end());
  m.set_text(std::move(text));
  if (logprob) m.set_logprob(*logprob);
  return m;
}

v1::GenerateResponse last(int index, int tokens) {
  v1::GenerateResponse m;
  m.set_index(index);
  m.set_finish_reason("length");
  m.mutable_usage()->set_prompt_tokens(5);
  m.mutable_usage()->set_completion_tokens(tokens);
  return m;
}

TEST_F(Coordinator, BestOfKeepsTheLikeliestChoicesAndCountsEveryToken) {
  auto request = parse_openai_request(
      R"({"model":"stories260K","prompt":"Once upon a time","n":2,"best_of":3})",
      ApiKind::kCompletion);
  ASSERT_TRUE(request.ok());
  auto prepared = generation_.prepare(request->request);
  ASSERT_TRUE(prepared.ok());
  OpenAiResponse response(*request, *prepared);
  const float logprob[] = {-3.0f, -0.5f, -1.0f};
  for (int i = 0; i < 3; ++i) {
    response.chunks(message(i, {432}, "c" + std::to_string(i), logprob[i]));
    response.chunks(last(i, 1));
  }
  const json full = response.full();
  ASSERT_EQ(full["choices"].size(), 2u);
  EXPECT_EQ(full["choices"][0]["text"], "c1");
  EXPECT_EQ(full["choices"][0]["index"], 0);
  EXPECT_EQ(full["choices"][1]["text"], "c2");
  EXPECT_TRUE(full["choices"][0]["logprobs"].is_null());  // not asked for
  EXPECT_EQ(full["usage"]["completion_tokens"], 3);
  EXPECT_EQ(full["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(full["system_fingerprint"], system_fingerprint());
  EXPECT_TRUE(system_fingerprint().starts_with("fp_"));
}

TEST_F(Coordinator, StreamChunksNameTheirChoiceAndUsageComesLastWhenAsked) {
  for (bool include_usage : {false, true}) {
    auto request = parse_openai_request(
        include_usage ? R"({"model":"stories260K","messages":[{"role":"user","content":"Hi"}],
                            "n":2,"stream":true,"stream_options":{"include_usage":true}})"
                      : R"({"model":"stories260K","messages":[{"role":"user","content":"Hi"}],
                            "n":2,"stream":true})",
        ApiKind::kChat);
    ASSERT_TRUE(request.ok()) << request.status().to_string();
    auto prepared = generation_.prepare(request->request);
    ASSERT_TRUE(prepared.ok());
    OpenAiResponse response(*request, *prepared);
    std::vector<json> chunks;
    for (const auto& m : {message(1, {432}, "a"), message(0, {383}, "b"), last(0, 1), last(1, 1)}) {
      for (json& c : response.chunks(m)) chunks.push_back(std::move(c));
    }
    ASSERT_EQ(chunks.size(), 4u);
    EXPECT_EQ(chunks[0]["choices"][0]["index"], 1);
    EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(chunks[1]["choices"][0]["index"], 0);
    EXPECT_EQ(chunks[2]["choices"][0]["finish_reason"], "length");
    for (const json& c : chunks) {
      for (const char* key : {"id", "object", "created", "model", "system_fingerprint"}) {
        EXPECT_TRUE(c.contains(key)) << key;
      }
      EXPECT_EQ(c.contains("usage"), include_usage);
      if (include_usage) {
        EXPECT_TRUE(c["usage"].is_null());
      }
    }
    const json usage = response.usage_chunk();
    EXPECT_EQ(usage.is_null(), !include_usage);
    if (include_usage) {
      EXPECT_EQ(usage["choices"], json::array());
      EXPECT_EQ(usage["usage"]["completion_tokens"], 2);
      EXPECT_EQ(usage["usage"]["total_tokens"], usage["usage"]["prompt_tokens"].get<int>() + 2);
    }
  }
}

TEST_F(Coordinator, EchoPutsThePromptAndItsLogprobsFirst) {
  auto request = parse_openai_request(
      R"({"model":"stories260K","prompt":"Once upon","echo":true,"logprobs":0})",
      ApiKind::kCompletion);
  ASSERT_TRUE(request.ok());
  auto prepared = generation_.prepare(request->request);
  ASSERT_TRUE(prepared.ok());
  ASSERT_EQ(prepared->prompt_ids, (std::vector<int32_t>{1, 403, 407}));
  OpenAiResponse response(*request, *prepared);
  v1::GenerateResponse prompt;
  for (auto [id, logprob] : {std::pair(403, -0.25f), std::pair(407, -0.5f)}) {
    v1::TokenLogprob* t = prompt.add_prompt_logprobs();
    t->set_token_id(id);
    t->set_logprob(logprob);
  }
  EXPECT_TRUE(response.chunks(prompt).empty());
  response.chunks(message(0, {261}, " a", -0.125f));
  response.chunks(last(0, 1));
  const json choice = response.full()["choices"][0];
  EXPECT_EQ(choice["text"], "Once upon a");
  const json& lp = choice["logprobs"];
  EXPECT_EQ(lp["tokens"], json::array({"<s>", "Once", "upon", "a"}));
  EXPECT_EQ(lp["token_logprobs"], json::parse("[null, -0.25, -0.5, -0.125]"));
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_EQ(lp["text_offset"].size(), 4u);
}

TEST_F(Coordinator, TokenizeAndDetokenizeAsVllm) {
  auto text = tokenize_body(
      R"({"model":"stories260K","prompt":"Once upon","return_token_strs":true})", registry_);
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  EXPECT_EQ((*text)["tokens"], json::array({1, 403, 407}));
  EXPECT_EQ((*text)["count"], 3);
  EXPECT_EQ((*text)["max_model_len"], 512);
  EXPECT_EQ((*text)["token_strs"], json::array({"<s>", "▁Once", "▁upon"}));
  // Messages go through the chat template, which writes BOS itself.
  auto chat = tokenize_body(
      R"({"model":"stories260K","messages":[{"role":"user","content":"Hi"}]})", registry_);
  ASSERT_TRUE(chat.ok()) << chat.status().to_string();
  auto tokenizer = registry_.tokenizer("stories260K");
  const auto expected = (*tokenizer)->encode("<s>User: Hi\nAssistant:", false);
  EXPECT_EQ((*chat)["tokens"], json(*expected));
  EXPECT_EQ((*chat)["tokens"][0], 1);
  EXPECT_TRUE((*chat)["token_strs"].is_null());
  auto back = detokenize_body(R"({"model":"stories260K","tokens":[403,407]})", registry_);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ((*back)["prompt"], "Once upon");
  for (const auto& [body, message] :
       {std::pair(R"({"model":"nope","prompt":"x"})", "not served here"),
        std::pair(R"({"model":"stories260K"})", "exactly one of"),
        std::pair(R"({"model":"stories260K","prompt":"x","extra":1})", "unknown field 'extra'")}) {
    auto r = tokenize_body(body, registry_);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(message), std::string::npos) << r.status().to_string();
  }
  auto bad = detokenize_body(R"({"model":"stories260K","tokens":[1,512]})", registry_);
  EXPECT_NE(bad.status().message().find("512"), std::string::npos);
}

TEST(OpenAiEmbeddings, InputsAndEncodings) {
  auto r = parse_embedding_request(
      R"({"model":"m","input":["a",[1,2]],"encoding_format":"base64","pooling":"last"})");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->request.inputs_size(), 2);
  EXPECT_EQ(r->request.inputs(0).text(), "a");
  EXPECT_EQ(r->request.inputs(1).token_ids().ids_size(), 2);
  EXPECT_EQ(r->request.pooling(), v1::POOLING_LAST);
  v1::EmbedResponse response;
  for (float x : {1.0f, -2.0f}) response.add_embeddings()->add_values(x);
  auto body = embedding_response(*r, response);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["data"][0]["embedding"], "AACAPw==");  // 1.0f little-endian
  EXPECT_EQ((*body)["data"][1]["embedding"], "AAAAwA==");  // -2.0f
  auto ids = parse_embedding_request(R"({"model":"m","input":[5,6,7]})");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->request.inputs_size(), 1);
  r->dimensions = 3;
  EXPECT_NE(embedding_response(*r, response).status().message().find("'dimensions' 3"),
            std::string::npos);
  for (const auto& [text, message] :
       {std::pair(R"({"model":"m"})", "'input' is required"),
        std::pair(R"({"model":"m","input":[{}]})", "expected strings"),
        std::pair(R"({"model":"m","input":"x","encoding_format":"int8"})", "encoding_format"),
        std::pair(R"({"model":"m","input":"x","extra":1})", "unknown field 'extra'")}) {
    auto bad = parse_embedding_request(text);
    EXPECT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.status().message().find(message), std::string::npos) << bad.status().to_string();
  }
}

}  // namespace
}  // namespace shardwise
