// The parsers of what servers send back: the Prometheus text format, server-sent events, and
// the comparison of counter deltas with the load generator's counts; the CSV line.
#include <gtest/gtest.h>

#include "bench/loadgen/openai_response.h"
#include "bench/loadgen/prometheus.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/server_metrics.h"
#include "bench/loadgen/sse.h"

namespace shardwise::loadgen {
namespace {

const char kMetrics[] =
    "# HELP shardwise_generation_tokens_total Tokens streamed to clients.\n"
    "# TYPE shardwise_generation_tokens_total counter\n"
    "shardwise_generation_tokens_total{model=\"stories260K\"} 1200\n"
    "shardwise_generation_tokens_total{model=\"other\"} 55\n"
    "# HELP shardwise_prompt_tokens_total Prompt tokens.\n"
    "# TYPE shardwise_prompt_tokens_total counter\n"
    "shardwise_requests_total{model=\"a \\\"quoted\\\" name\",code=\"OK\"} 3 1700000000000\n"
    "shardwise_running_requests 0\n"
    "latency_bucket{le=\"+Inf\"} 4\r\n"
    "nan_metric NaN\n";

TEST(Prometheus, ParsesSamplesLabelsAndFamilies) {
  StatusOr<Exposition> e = parse_exposition(kMetrics);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->samples.size(), 6u);
  EXPECT_EQ(sum_samples(*e, "shardwise_generation_tokens_total"), 1255);
  EXPECT_EQ(sum_samples(*e, "shardwise_generation_tokens_total", "model", "stories260K"), 1200);
  EXPECT_EQ(sum_samples(*e, "shardwise_generation_tokens_total", "model", "missing"), 0);
  // Declared but without samples: present, zero; never declared: absent.
  EXPECT_EQ(sum_samples(*e, "shardwise_prompt_tokens_total"), 0);
  EXPECT_FALSE(sum_samples(*e, "no_such_metric").has_value());
  // A sample without the label counts toward any filter on it.
  EXPECT_EQ(sum_samples(*e, "shardwise_running_requests", "model", "x"), 0);
  EXPECT_EQ(e->samples[2].labels.at("model"), "a \"quoted\" name");
  EXPECT_EQ(e->samples[2].value, 3);  // the timestamp is not the value
  EXPECT_EQ(e->samples[4].labels.at("le"), "+Inf");
}

TEST(Prometheus, RefusesMalformedLines) {
  for (const char* bad : {"metric{model=\"x\" 3\n", "metric{model=x} 3\n", "metric abc\n",
                          "{model=\"x\"} 3\n", "metric\n"}) {
    EXPECT_FALSE(parse_exposition(bad).ok()) << bad;
  }
}

TEST(ServerMetrics, ComparesCounterDeltas) {
  StatusOr<Exposition> before = parse_exposition(
      "# TYPE shardwise_generation_tokens_total counter\n"
      "shardwise_generation_tokens_total{model=\"m\"} 100\n");
  StatusOr<Exposition> after = parse_exposition(
      "shardwise_generation_tokens_total{model=\"m\"} 164\n"
      "shardwise_generation_tokens_total{model=\"n\"} 999\n");
  ASSERT_TRUE(before.ok() && after.ok());
  nlohmann::json rows = compare_counters(*before, *after, default_counters(), "m",
                                         {{"output_tokens", 64}, {"input_tokens", 10}});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["metric"], "shardwise_generation_tokens_total");
  EXPECT_EQ(rows[0]["server"], 64.0);
  EXPECT_EQ(rows[0]["agree"], true);
  EXPECT_TRUE(rows[1]["metric"].is_null());  // no prompt-token counter exposed
  rows = compare_counters(*before, *after, default_counters(), "m", {{"output_tokens", 63}});
  EXPECT_EQ(rows[0]["agree"], false);
}

TEST(ServerMetrics, OverridesByQuantity) {
  StatusOr<std::vector<CounterSpec>> c =
      override_counters(default_counters(), {"input_tokens=my_prompt_tokens"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[1].names, std::vector<std::string>{"my_prompt_tokens"});
  EXPECT_FALSE(override_counters(default_counters(), {"bogus=x"}).ok());
  EXPECT_FALSE(override_counters(default_counters(), {"output_tokens="}).ok());
  EXPECT_FALSE(override_counters(default_counters(), {"output_tokens"}).ok());
}

TEST(Sse, SplitsEventsFedInAnyPieces) {
  const std::string stream =
      ": a comment\n"
      "data: {\"a\": 1}\n\n"
      "event: ignored\r\n"
      "data: first line\r\n"
      "data:second\r\n\r\n"
      "data: [DONE]\n\n"
      "data: unterminated";
  for (size_t piece : {1, 2, 3, 7, 1000}) {
    std::vector<std::string> events;
    SseParser parser([&](const std::string& data) { events.push_back(data); });
    for (size_t i = 0; i < stream.size(); i += piece) parser.feed(stream.substr(i, piece));
    ASSERT_EQ(events.size(), 3u) << "pieces of " << piece;
    EXPECT_EQ(events[0], "{\"a\": 1}");
    EXPECT_EQ(events[1], "first line\nsecond");
    EXPECT_EQ(events[2], "[DONE]");
  }
}

using nlohmann::json;

TEST(OpenAiOutcome, ReadsChunksOfBothEndpoints) {
  OpenAiOutcome completion;
  EXPECT_TRUE(
      completion.read(json::parse(R"({"choices": [{"text": "Hi", "finish_reason": null}]})"),
                      Protocol::kCompletions));
  // A token whose text is not final yet still counts; the last chunk, text-less, does not.
  EXPECT_TRUE(
      completion.read(json::parse(R"({"choices": [{"text": ""}]})"), Protocol::kCompletions));
  EXPECT_FALSE(completion.read(json::parse(R"({"choices": [{"text": "", "finish_reason": "length"}],
                      "usage": {"prompt_tokens": 3, "completion_tokens": 2}})"),
                               Protocol::kCompletions));
  EXPECT_EQ(completion.finish_reason, "length");
  EXPECT_EQ(completion.prompt_tokens, 3);
  EXPECT_EQ(completion.completion_tokens, 2);
  OpenAiOutcome chat;
  EXPECT_TRUE(
      chat.read(json::parse(R"({"choices": [{"delta": {"role": "assistant", "content": "x"}}]})"),
                Protocol::kChat));
  EXPECT_TRUE(chat.read(
      json::parse(R"({"choices": [{"delta": {"content": "y"}, "finish_reason": "stop"}]})"),
      Protocol::kChat));  // vLLM's last chunk carries the last token
  EXPECT_EQ(chat.finish_reason, "stop");
  OpenAiOutcome body;  // one non-streamed body
  body.read(json::parse(R"({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": 5, "completion_tokens": 1}})"),
            Protocol::kChat);
  EXPECT_EQ(body.completion_tokens, 1);
}

TEST(OpenAiOutcome, SurvivesMalformedChunks) {
  for (const char* text :
       {R"([1, 2])", R"("text")", R"({"choices": "no"})", R"({"choices": [5]})",
        R"({"choices": [{"text": 7, "finish_reason": 3}]})", R"({"choices": [{"delta": 1}]})",
        R"({"usage": {"prompt_tokens": "3", "completion_tokens": -4}})",
        R"({"usage": {"completion_tokens": 1e30}})", R"({"usage": [1]})", R"({"error": 5})",
        R"({"error": {"code": 400, "message": ["x"]}})",
        R"({"choices": [{"delta": {"content": null}}]})"}) {
    for (Protocol protocol : {Protocol::kCompletions, Protocol::kChat}) {
      OpenAiOutcome outcome;
      outcome.read(json::parse(text), protocol);
      EXPECT_TRUE(outcome.finish_reason.empty()) << text;
      EXPECT_EQ(outcome.completion_tokens, -1) << text;
    }
  }
  OpenAiOutcome array;
  array.read(json::parse("[1]"), Protocol::kChat);
  EXPECT_TRUE(array.malformed);
  OpenAiOutcome error;
  error.read(json::parse(R"({"error": {"code": 400, "message": ["x"]}})"), Protocol::kChat);
  EXPECT_EQ(error.error, "HTTP 200: no error message");
  EXPECT_EQ(
      openai_error_text(
          json::parse(R"({"error": {"message": "no such model", "code": "NOT_FOUND"}})"), 404),
      "NOT_FOUND: no such model");
  EXPECT_EQ(openai_error_text(json::parse("not json", nullptr, false), 502),
            "HTTP 502: no error message");
}

TEST(Report, CsvLineMatchesItsHeader) {
  nlohmann::json report = {
      {"config", {{"label", "a,b"}, {"protocol", "grpc"}, {"concurrency", 4}}},
      {"summary", {{"sent", 3}, {"ttft_s", {{"count", 3}, {"median", 0.0125}, {"p99", 0.02}}}}},
      {"server",
       {{"counters",
         {{{"quantity", "output_tokens"}, {"metric", "x"}, {"server", 12.0}, {"agree", true}}}}}}};
  const std::string header = csv_header(), line = csv_line(report);
  EXPECT_EQ(std::count(header.begin(), header.end(), ','),
            std::count(line.begin(), line.end(), ',') - 1);  // the quoted "a,b" holds one
  EXPECT_EQ(line.rfind("\"a,b\",grpc,,4,", 0), 0u) << line;
  EXPECT_NE(line.find(",12.5,20,"), std::string::npos) << line;  // TTFT in ms
  EXPECT_NE(line.find(",true"), std::string::npos) << line;
}

}  // namespace
}  // namespace shardwise::loadgen
