// Workloads are seeded functions of the request index, with the asked shapes; JSONL files are
// read with errors that name the line.
#include "bench/loadgen/workload.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace shardwise::loadgen {
namespace {

Workload make(WorkloadOptions o) {
  StatusOr<Workload> w = Workload::create(o);
  EXPECT_TRUE(w.ok()) << w.status().to_string();
  return std::move(w).value();
}

TEST(LengthRange, Parses) {
  EXPECT_EQ(parse_length_range("128")->min, 128);
  EXPECT_EQ(parse_length_range("128")->max, 128);
  EXPECT_EQ(parse_length_range("64-256")->min, 64);
  EXPECT_EQ(parse_length_range("64-256")->max, 256);
  for (const char* bad : {"0", "-3", "a", "9-3", "", "5-", "1.5"}) {
    EXPECT_FALSE(parse_length_range(bad).ok()) << bad;
  }
}

TEST(Workload, RandomIsSeededAndShaped) {
  WorkloadOptions o;
  o.input = {20, 40};
  o.output = {5, 9};
  o.vocab_size = 100;
  o.seed = 3;
  const Workload a = make(o), b = make(o);
  o.seed = 4;
  const Workload c = make(o);
  bool lengths_vary = false;
  for (int i = 0; i < 50; ++i) {
    const RequestSpec r = a.request(i);
    EXPECT_EQ(r.index, i);
    EXPECT_EQ(r.prompt_ids, b.request(i).prompt_ids);
    EXPECT_NE(r.prompt_ids, c.request(i).prompt_ids);
    EXPECT_NE(r.prompt_ids, a.warmup_request(i).prompt_ids);
    EXPECT_GE(r.prompt_ids.size(), 20u);
    EXPECT_LE(r.prompt_ids.size(), 40u);
    EXPECT_GE(r.max_tokens, 5);
    EXPECT_LE(r.max_tokens, 9);
    EXPECT_TRUE(r.ignore_eos);
    for (int32_t id : r.prompt_ids) {
      EXPECT_GE(id, 3);
      EXPECT_LT(id, 100);
    }
    lengths_vary |= r.prompt_ids.size() != a.request(0).prompt_ids.size();
  }
  EXPECT_TRUE(lengths_vary);
}

TEST(Workload, ChatPromptsAreWords) {
  WorkloadOptions o;
  o.input = {12, 12};
  o.forms = PromptForms::kTextOrChat;
  const RequestSpec r = make(o).request(0);
  EXPECT_TRUE(r.prompt_ids.empty());
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(std::count(r.messages[0].content.begin(), r.messages[0].content.end(), ' '), 11);
}

TEST(Workload, SharedPrefixPairsPrefixesWithQuestions) {
  WorkloadOptions o;
  o.kind = "shared-prefix";
  o.num_prefixes = 3;
  o.questions_per_prefix = 2;
  o.prefix_len = 10;
  o.input = {4, 4};
  const Workload w = make(o);
  auto prefix = [](const RequestSpec& r) {
    return std::vector<int32_t>(r.prompt_ids.begin(), r.prompt_ids.begin() + 10);
  };
  for (int i = 0; i < 12; ++i) {
    const RequestSpec r = w.request(i);
    ASSERT_EQ(r.prompt_ids.size(), 14u);
    EXPECT_EQ(prefix(r), prefix(w.request(i + 3))) << i;        // the same system prompt
    EXPECT_NE(prefix(r), prefix(w.request(i + 1))) << i;        // the next one differs
    EXPECT_EQ(r.prompt_ids, w.request(i + 6).prompt_ids) << i;  // N x M distinct requests
  }
  EXPECT_NE(w.request(0).prompt_ids, w.request(3).prompt_ids);  // another question
  o.forms = PromptForms::kTextOrChat;
  const RequestSpec chat = make(o).request(0);
  ASSERT_EQ(chat.messages.size(), 2u);
  EXPECT_EQ(chat.messages[0].role, "system");
  EXPECT_EQ(chat.messages[0].content, make(o).request(3).messages[0].content);
}

class JsonlWorkload : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    const std::string path = ::testing::TempDir() + "/prompts_" +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                             ".jsonl";
    std::ofstream(path) << text;
    return path;
  }
  StatusOr<Workload> load(const std::string& text, PromptForms forms = PromptForms::kAll) {
    WorkloadOptions o;
    o.kind = "jsonl";
    o.jsonl_path = write(text);
    o.output = {7, 7};
    o.forms = forms;
    return Workload::create(o);
  }
};

TEST_F(JsonlWorkload, ReadsEveryPromptFormAndCycles) {
  StatusOr<Workload> w = load(
      "{\"prompt\": \"Once upon a time\", \"max_tokens\": 3}\n"
      "\n"
      "{\"prompt\": [1, 403, 407]}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n");
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ(w->request(0).prompt_text, "Once upon a time");
  EXPECT_EQ(w->request(0).max_tokens, 3);
  EXPECT_EQ(w->request(1).prompt_ids, (std::vector<int32_t>{1, 403, 407}));
  EXPECT_EQ(w->request(1).max_tokens, 7);  // from --output-len
  EXPECT_EQ(w->request(2).messages.at(0).content, "Hi");
  EXPECT_EQ(w->request(3).prompt_text, "Once upon a time");
  EXPECT_EQ(w->request(3).index, 3);
}

TEST_F(JsonlWorkload, ErrorsNameTheLine) {
  auto error = [&](const std::string& text, PromptForms forms = PromptForms::kAll) {
    StatusOr<Workload> w = load(text, forms);
    return w.ok() ? std::string("accepted") : w.status().message();
  };
  EXPECT_NE(error("{\"prompt\": \"a\"}\nnot json\n").find(":2"), std::string::npos);
  EXPECT_NE(error("{\"prompt\": \"a\", \"max_tokens\": -1}\n").find("max_tokens"),
            std::string::npos);
  EXPECT_NE(error("{\"nothing\": 1}\n").find("prompt"), std::string::npos);
  EXPECT_NE(error("{\"prompt\": []}\n").find("prompt"), std::string::npos);
  EXPECT_NE(error("[1, 2]\n").find("object"), std::string::npos);
  EXPECT_NE(error("\n\n").find("no prompts"), std::string::npos);
  EXPECT_NE(
      error("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n", PromptForms::kIdsOrText)
          .find("--protocol"),
      std::string::npos);
  EXPECT_NE(error("{\"prompt\": [5, 6]}\n", PromptForms::kTextOrChat).find("--protocol"),
            std::string::npos);
  WorkloadOptions o;
  o.kind = "jsonl";
  o.jsonl_path = "/nonexistent/prompts.jsonl";
  EXPECT_EQ(Workload::create(o).status().code(), StatusCode::kNotFound);
  o.kind = "bogus";
  EXPECT_FALSE(Workload::create(o).ok());
}

TEST_F(JsonlWorkload, ChatTurnsTextIntoAUserMessage) {
  StatusOr<Workload> w = load("{\"prompt\": \"Hello\"}\n", PromptForms::kTextOrChat);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->request(0).messages.size(), 1u);
  EXPECT_EQ(w->request(0).messages[0].content, "Hello");
}

}  // namespace
}  // namespace shardwise::loadgen
