#include "coordinator/openai_protocol.h"

#include <gtest/gtest.h>

namespace shardwise {
namespace {

Status parse_error(const std::string& body, ApiKind kind = ApiKind::kCompletion) {
  return parse_openai_request(body, kind).status();
}

TEST(OpenAiProtocol, ParsesACompletion) {
  auto r = parse_openai_request(
      R"({"model":"m","prompt":"Hi","max_tokens":5,"temperature":0,"stop":["x","y"],"seed":7,
          "stream":true,"logprobs":2})",
      ApiKind::kCompletion);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->request.model(), "m");
  EXPECT_EQ(r->request.text(), "Hi");
  EXPECT_EQ(r->request.sampling().max_tokens(), 5);
  EXPECT_EQ(r->request.sampling().temperature(), 0);
  EXPECT_EQ(r->request.sampling().stop_size(), 2);
  EXPECT_EQ(r->request.sampling().seed(), 7u);
  EXPECT_EQ(r->request.sampling().logprobs(), 2);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->logprobs);
}

TEST(OpenAiProtocol, ParsesTokenPromptsAndChat) {
  auto ids = parse_openai_request(R"({"model":"m","prompt":[1,403]})", ApiKind::kCompletion);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->request.token_ids().ids_size(), 2);
  auto chat = parse_openai_request(
      R"({"model":"m","messages":[{"role":"user","content":"Hi"}],"logprobs":true,"top_logprobs":3,
          "max_completion_tokens":4})",
      ApiKind::kChat);
  ASSERT_TRUE(chat.ok()) << chat.status().to_string();
  EXPECT_EQ(chat->request.chat().messages(0).content(), "Hi");
  EXPECT_EQ(chat->request.sampling().logprobs(), 3);
  EXPECT_EQ(chat->request.sampling().max_tokens(), 4);
  EXPECT_FALSE(chat->request.sampling().has_temperature());  // the default applies later
}

TEST(OpenAiProtocol, RejectsBadBodiesNamingTheProblem) {
  struct Case {
    std::string body;
    std::string message;
    ApiKind kind = ApiKind::kCompletion;
  };
  const Case cases[] = {
      {"{not json", "not valid JSON"},
      {"[1]", "JSON object"},
      {R"({"prompt":"x"})", "'model' is required"},
      {R"({"model":"m"})", "'prompt' is required"},
      {R"({"model":"m","prompt":{}})", "'prompt' must be"},
      {R"({"model":"m","prompt":"x","temperature":"hot"})", "'temperature' has the wrong type"},
      {R"({"model":"m","prompt":"x","max_tokens":9223372036854775808})", "out of range"},
      {R"({"model":"m","prompt":"x","n":17})", "'n' must be in [1, 16]"},
      {R"({"model":"m","prompt":"x","stop":[1]})", "'stop' must be"},
      {R"({"model":"m","messages":[]})", "'messages' must be", ApiKind::kChat},
      {R"({"model":"m","messages":[{"role":"user"}]})", "'content' must be a string",
       ApiKind::kChat},
  };
  for (const Case& c : cases) {
    Status status = parse_error(c.body, c.kind);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(status.message().find(c.message), std::string::npos)
        << c.body << " -> " << status.message();
  }
}

TEST(OpenAiProtocol, MapsStatusesToHttp) {
  EXPECT_EQ(http_status(invalid_argument("x")), 400);
  EXPECT_EQ(http_status(not_found("x")), 404);
  EXPECT_EQ(http_status(resource_exhausted("x")), 429);
  EXPECT_EQ(http_status(unavailable("x")), 503);
  EXPECT_EQ(error_body(not_found("no model")),
            nlohmann::json::parse(R"({"error":{"message":"no model","type":"invalid_request_error",
                                                "code":"NOT_FOUND"}})"));
}

}  // namespace
}  // namespace shardwise
