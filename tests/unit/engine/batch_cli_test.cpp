// `shardwise batch` as a user runs it: a real process reading and writing JSON Lines.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace shardwise {
namespace {

using nlohmann::json;

struct Run {
  int exit_code = -1;
  std::string err;
  std::vector<json> results;
};

Run run_batch(const std::string& name, const std::string& input, const std::string& flags = "") {
  const auto dir = testing::scratch_dir("batch-cli-" + name);
  std::ofstream(dir / "in.jsonl") << input;
  const std::string command =
      std::string(SHARDWISE_BIN_DIR) + "/shardwise --threads 1 batch --input " +
      (dir / "in.jsonl").string() + " --output " + (dir / "out.jsonl").string() + " " + flags +
      " 2>" + (dir / "err").string();
  Run run;
  const int status = std::system(command.c_str());
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.err = testing::read_text_file(dir / "err");
  if (std::filesystem::exists(dir / "out.jsonl")) {
    std::ifstream out(dir / "out.jsonl");
    for (std::string line; std::getline(out, line);) run.results.push_back(json::parse(line));
  }
  return run;
}

const std::string kRequests =
    R"({"id": "bos", "token_ids": [1], "max_tokens": 12})"
    "\n"
    R"({"id": 7, "prompt": "Once upon a time", "max_tokens": 30, "temperature": 0.9, "seed": 5})"
    "\n\n"
    R"({"id": "short", "token_ids": [1, 403, 407], "max_tokens": 3, "ignore_eos": true})"
    "\n";

TEST(BatchCli, WritesOneResultPerRequestInInputOrder) {
  auto run = run_batch("order", kRequests);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.results.size(), 3u);
  EXPECT_EQ(run.results[0]["id"], "bos");
  EXPECT_EQ(run.results[1]["id"], 7);
  EXPECT_EQ(run.results[2]["id"], "short");
  // Greedy from BOS: the same tokens as `shardwise generate` (cli_test.cpp).
  EXPECT_EQ(run.results[0]["token_ids"],
            (std::vector<int>{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421}));
  EXPECT_EQ(run.results[0]["finish_reason"], "length");
  EXPECT_EQ(run.results[0]["text"], "Once upon a time, there was a little girl");
  EXPECT_EQ(run.results[2]["token_ids"].size(), 3u);
  for (const auto& result : run.results) {
    EXPECT_TRUE(result["finish_reason"] == "length" || result["finish_reason"] == "stop");
    EXPECT_TRUE(result.contains("text"));
  }
  EXPECT_NE(run.err.find("3/3 requests"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("tokens/s"), std::string::npos) << run.err;
}

TEST(BatchCli, SameResultsUnderCachePressureAndSmallSteps) {
  auto roomy = run_batch("roomy", kRequests);
  auto tight = run_batch("tight", kRequests, "--num-kv-blocks 3 --max-batch-tokens 5");
  ASSERT_EQ(roomy.exit_code, 0) << roomy.err;
  ASSERT_EQ(tight.exit_code, 0) << tight.err;
  EXPECT_EQ(roomy.results, tight.results);
}

TEST(BatchCli, ABadLineFailsNamingItsLineBeforeAnyWork) {
  const std::string good = R"({"id": "a", "token_ids": [1]})"
                           "\n";
  struct Case {
    std::string line;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"id": "b", "token_ids": [1], "temperature": -1})", "line 2: temperature"},
           {R"({"id": "b", "token_ids": [1], "top_p": 0})", "line 2: top_p"},
           {R"({"id": "b", "token_ids": [1], "max_tokens": 0})", "line 2: max_tokens"},
           {R"({"id": "b", "token_ids": [1], "max_tokens": 600})", "line 2: prompt (1 tokens)"},
           {R"({"id": "b", "tokens": [1]})", "line 2: unknown field \"tokens\""},
           {R"({"id": "b"})", "line 2: give exactly one of"},
           {R"({"id": "b", "token_ids": [1, 9999]})", "line 2: prompt token id 9999"},
           // Integers past their field's type are refused, not wrapped (2^32 + 1 into 1).
           {R"({"id": "b", "token_ids": [4294967297]})", "line 2: \"token_ids\" must hold"},
           {R"({"id": "b", "token_ids": [1], "max_tokens": 4294967297})",
            "line 2: \"max_tokens\" is out of range"},
           {R"({"id": "b", "token_ids": [1], "logprobs": 4294967297})",
            "line 2: \"logprobs\" must be an integer"},
           {R"({"id": "b", "token_ids": [1], "stop_token_ids": [-4294967295]})",
            "line 2: \"stop_token_ids\" must hold"},
           {R"({"token_ids": [1]})", "line 2: \"id\""},
           {R"({"id": "b", "token_ids": [1])", "line 2: not valid JSON"},
       }) {
    auto run = run_batch("bad", good + c.line + "\n");
    EXPECT_NE(run.exit_code, 0) << c.line;
    EXPECT_NE(run.err.find(c.message), std::string::npos) << c.line << "\n" << run.err;
    EXPECT_TRUE(run.results.empty()) << c.line;
  }
}

TEST(BatchCli, StopStringsAndLogitBiasOnShardwiseLines) {
  auto run = run_batch(
      "stop", R"({"id": 1, "prompt": "Once upon a time", "max_tokens": 30, "temperature": 0})"
              "\n"
              R"({"id": 2, "prompt": "Once upon a time", "max_tokens": 30, "temperature": 0,)"
              R"( "stop": ["little", "never"], "logprobs": 1})"
              "\n"
              R"({"id": 3, "prompt": "Once upon a time", "max_tokens": 30, "temperature": 0,)"
              R"( "logit_bias": {"432": -100}})"
              "\n");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string full = run.results[0]["text"];
  ASSERT_NE(full.find("little"), std::string::npos) << full;
  EXPECT_EQ(run.results[1]["text"], full.substr(0, full.find("little")));
  EXPECT_EQ(run.results[1]["finish_reason"], "stop");
  EXPECT_LT(run.results[1]["token_ids"].size(), run.results[0]["token_ids"].size());
  EXPECT_EQ(run.results[1]["logprobs"].size(), run.results[1]["token_ids"].size());
  EXPECT_EQ(run.results[0]["token_ids"][0], 432);  // "," ...
  EXPECT_NE(run.results[2]["token_ids"][0], 432);  // ... banned
  for (const auto& id : run.results[2]["token_ids"]) EXPECT_NE(id, 432);
}

TEST(BatchCli, ReadsAndWritesTheOpenAiBatchFormat) {
  const std::string input =
      R"({"custom_id": "chat-1", "method": "POST", "url": "/v1/chat/completions", "body":)"
      R"( {"model": "stories260K", "messages": [{"role": "user", "content": [{"type": "text",)"
      R"( "text": "Tell me a story"}]}], "max_completion_tokens": 8, "temperature": 0,)"
      R"( "logprobs": true, "top_logprobs": 2}})"
      "\n"
      R"({"custom_id": "text-2", "method": "POST", "url": "/v1/completions", "body":)"
      R"( {"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 30,)"
      R"( "temperature": 1.2, "seed": 3, "n": 2, "stop": "never"}})"
      "\n"
      R"({"custom_id": "bad-3", "method": "POST", "url": "/v1/chat/completions", "body":)"
      R"( {"model": "stories260K", "messages": [{"role": "user", "content": "x"}],)"
      R"( "tools": [{"type": "function"}]}})"
      "\n"
      R"({"custom_id": "bad-4", "method": "POST", "url": "/v1/completions", "body":)"
      R"( {"model": "stories260K", "prompt": "x", "temperature": -2}})"
      "\n"
      R"({"id": "native", "prompt": "Once upon a time", "max_tokens": 30, "temperature": 1.2,)"
      R"( "seed": 4, "stop": "never"})"
      "\n";
  auto run = run_batch("openai", input);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.results.size(), 5u);
  const json& chat = run.results[0];
  EXPECT_EQ(chat["custom_id"], "chat-1");
  EXPECT_TRUE(chat["error"].is_null());
  EXPECT_EQ(chat["response"]["status_code"], 200);
  const json& body = chat["response"]["body"];
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["model"], "stories260K");
  EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(body["usage"]["completion_tokens"], 8);
  EXPECT_EQ(body["choices"][0]["logprobs"]["content"].size(), 8u);
  EXPECT_EQ(body["choices"][0]["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
  // Choice i samples with seed + i: choice 1 of seed 3 is the shardwise line of seed 4.
  const json& choices = run.results[1]["response"]["body"]["choices"];
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[1]["text"], run.results[4]["text"]);
  EXPECT_EQ(choices[1]["finish_reason"], run.results[4]["finish_reason"]);
  EXPECT_NE(choices[0]["text"], choices[1]["text"]);
  EXPECT_EQ(run.results[1]["response"]["body"]["object"], "text_completion");
  for (int i : {2, 3}) {
    EXPECT_EQ(run.results[i]["response"]["status_code"], 400) << i;
  }
  EXPECT_NE(run.results[2]["response"]["body"]["error"]["message"].get<std::string>().find(
                "'tools' is not supported"),
            std::string::npos);
  EXPECT_NE(
      run.results[3]["response"]["body"]["error"]["message"].get<std::string>().find("temperature"),
      std::string::npos);

  // A malformed envelope fails the file, naming its line.
  auto bad = run_batch(
      "openai-bad",
      R"({"custom_id": "e", "method": "POST", "url": "/v1/embeddings", "body": {"input": "x"}})"
      "\n");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("line 1: \"url\""), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace shardwise
