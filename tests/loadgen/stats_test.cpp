// The load generator's arithmetic against hand-worked cases: percentiles, distributions, SLO
// parsing, goodput, throughput, and the per-request recorder.
#include "bench/loadgen/stats.h"

#include <gtest/gtest.h>

#include <cmath>

namespace shardwise::loadgen {
namespace {

TEST(Percentile, InterpolatesBetweenClosestRanks) {
  // Sorted {1, 2, 3, 4}: rank q/100 * 3.
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);   // rank 1.5
  EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);   // rank 2.7: 3 + 0.7 * (4 - 3)
  EXPECT_DOUBLE_EQ(percentile(v, 99), 3.97);  // rank 2.97
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_TRUE(std::isnan(percentile({}, 50)));
}

TEST(Percentile, DescribeFiveValues) {
  const Distribution d = describe({0.5, 0.1, 0.4, 0.2, 0.3});
  EXPECT_EQ(d.count, 5u);
  EXPECT_NEAR(d.mean, 0.3, 1e-12);
  EXPECT_NEAR(d.median, 0.3, 1e-12);
  EXPECT_NEAR(d.p90, 0.46, 1e-12);   // rank 3.6: 0.4 + 0.6 * 0.1
  EXPECT_NEAR(d.p99, 0.496, 1e-12);  // rank 3.96
  EXPECT_DOUBLE_EQ(d.min, 0.1);
  EXPECT_DOUBLE_EQ(d.max, 0.5);
  EXPECT_EQ(describe({}).count, 0u);
}

TEST(Slo, ParsesUnitsAndRefusesNonsense) {
  StatusOr<Slo> slo = parse_slo("ttft=200ms,tpot=50,e2e=2s");
  ASSERT_TRUE(slo.ok()) << slo.status().to_string();
  EXPECT_DOUBLE_EQ(slo->ttft_s, 0.2);
  EXPECT_DOUBLE_EQ(slo->tpot_s, 0.05);  // a bare number is milliseconds
  EXPECT_DOUBLE_EQ(slo->e2e_s, 2);
  EXPECT_NEAR(parse_slo("ttft=300us")->ttft_s, 3e-4, 1e-15);
  EXPECT_FALSE(parse_slo("ttft=1s")->tpot_s < Slo::kNone);
  for (const char* bad : {"ttft", "foo=1ms", "ttft=-1ms", "ttft=abc", "ttft=", "ttft=0"}) {
    EXPECT_FALSE(parse_slo(bad).ok()) << bad;
  }
}

RequestResult finished(double start, double ttft, double e2e, int out) {
  RequestResult r;
  r.start_s = start;
  r.ttft_s = ttft;
  r.e2e_s = e2e;
  r.output_tokens = out;
  r.messages = out;  // one token a message
  r.input_tokens = 10;
  r.finish_reason = "length";
  return r;
}

TEST(Summary, HandWorkedGoodputAndThroughput) {
  std::vector<RequestResult> results = {
      finished(0.0, 0.1, 1.1, 11),   // TPOT (1.1 - 0.1) / 10 = 0.1: meets both
      finished(0.5, 0.3, 0.8, 6),    // TPOT 0.1, TTFT 0.3 > 0.2: misses
      finished(1.0, 0.1, 3.1, 11),   // TPOT 0.3 > 0.15: misses; ends last, at 4.1
      finished(2.0, 0.15, 0.15, 1),  // one token: no TPOT; meets
  };
  RequestResult failed;
  failed.start_s = 1.5;
  failed.e2e_s = 0.01;
  failed.input_tokens = 10;
  failed.error = "UNAVAILABLE: the replica died";
  results.push_back(failed);
  results[0].itl_s = {0.1, 0.1};
  results[1].itl_s = {0.2};
  results[2].messages = 2;  // its 11 tokens came in 2 messages

  const Summary s = summarize(results, *parse_slo("ttft=200ms,tpot=150ms"));
  EXPECT_EQ(s.sent, 5);
  EXPECT_EQ(s.finished, 4);
  EXPECT_EQ(s.errors, 1);
  EXPECT_EQ(s.errors_by_code.at("UNAVAILABLE"), 1);
  EXPECT_DOUBLE_EQ(s.duration_s, 4.1);  // first send at 0, last end at 1.0 + 3.1
  EXPECT_EQ(s.output_tokens, 29);
  EXPECT_EQ(s.input_tokens, 50);
  EXPECT_EQ(s.messages, 11 + 6 + 2 + 1);
  EXPECT_NEAR(to_json(s)["tokens_per_message"].get<double>(), 29.0 / 20, 1e-12);
  EXPECT_DOUBLE_EQ(s.request_throughput, 4 / 4.1);
  EXPECT_DOUBLE_EQ(s.output_throughput, 29 / 4.1);
  EXPECT_DOUBLE_EQ(s.total_token_throughput, 79 / 4.1);
  EXPECT_TRUE(s.has_slo);
  EXPECT_EQ(s.good_requests, 2);
  EXPECT_DOUBLE_EQ(s.goodput, 2 / 4.1);
  EXPECT_EQ(s.tpot.count, 3u);  // the one-token request has none
  EXPECT_NEAR(s.tpot.mean, 0.5 / 3, 1e-12);
  EXPECT_NEAR(s.tpot.median, 0.1, 1e-12);
  EXPECT_EQ(s.ttft.count, 4u);
  EXPECT_NEAR(s.ttft.median, 0.125, 1e-12);  // {0.1, 0.1, 0.15, 0.3}
  EXPECT_EQ(s.itl.count, 3u);
  EXPECT_NEAR(s.itl.max, 0.2, 1e-12);
  EXPECT_EQ(s.e2e.count, 4u);
  EXPECT_FALSE(summarize(results, Slo()).has_slo);
}

TEST(Summary, EmptyRunHasNoFigures) {
  const Summary s = summarize({}, Slo());
  EXPECT_EQ(s.sent, 0);
  EXPECT_EQ(s.duration_s, 0);
  EXPECT_EQ(s.output_throughput, 0);
  EXPECT_EQ(s.ttft.count, 0u);
}

TEST(ResultRecorder, CountsMessagesTokensAndUsage) {
  RequestSpec spec;
  spec.prompt_ids = {5, 6, 7};
  ResultRecorder recorder(spec, Clock::now());
  recorder.sent();
  recorder.received(1);
  recorder.received(2);
  recorder.received(0);  // no tokens: not a message
  recorder.received(1);
  RequestResult r = recorder.finish("length", -1, -1);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.messages, 3);
  EXPECT_EQ(r.itl_s.size(), 2u);
  EXPECT_EQ(r.output_tokens, 4);  // no usage: the tokens received
  EXPECT_EQ(r.input_tokens, 3);   // no usage: the prompt's length
  EXPECT_GE(r.ttft_s, 0);
  EXPECT_GE(r.e2e_s, r.ttft_s);
}

TEST(ResultRecorder, UsageWinsAndCapsTheMessages) {
  ResultRecorder recorder(RequestSpec(), Clock::now());
  recorder.sent();
  for (int i = 0; i < 4; ++i) recorder.received(1);  // 4 chunks, the last a text-only flush
  RequestResult r = recorder.finish("stop", 12, 3);
  EXPECT_EQ(r.output_tokens, 3);
  EXPECT_EQ(r.input_tokens, 12);
  EXPECT_EQ(r.messages, 3);
  EXPECT_EQ(r.itl_s.size(), 2u);
}

TEST(ResultRecorder, FailureKeepsWhatArrived) {
  ResultRecorder recorder(RequestSpec(), Clock::now());
  recorder.sent();
  recorder.received(1);
  RequestResult r = recorder.fail("UNAVAILABLE: gone");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.output_tokens, 1);
  EXPECT_LT(r.tpot_s(), 0);
}

}  // namespace
}  // namespace shardwise::loadgen
