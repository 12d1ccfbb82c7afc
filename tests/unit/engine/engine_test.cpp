// The engine's contract on the fake runner: validation before any work, streaming and finish
// reasons, cancellation, chunked prefill, failures of the forward pass.
#include "shard/engine/engine.h"

#include <gtest/gtest.h>

#include "tests/unit/engine/engine_test_support.h"
#include "tests/unit/engine/fake_model_runner.h"

namespace shardwise {
namespace {

using testing::Completion;
using testing::FakeModelRunner;
using testing::greedy_request;

constexpr int kVocab = 32;

TEST(Engine, RejectsBadParametersBeforeSchedulingAnything) {
  FakeModelRunner runner(/*num_blocks=*/8, /*block_size=*/4, kVocab, /*context=*/20);
  Engine engine(runner);
  auto expect_rejected = [&](Request request, StatusCode code, const std::string& text) {
    auto id = engine.add_request(std::move(request));
    ASSERT_FALSE(id.ok()) << text;
    EXPECT_EQ(id.status().code(), code) << id.status().to_string();
    EXPECT_NE(id.status().message().find(text), std::string::npos) << id.status().to_string();
  };
  auto with = [](auto edit) {
    Request request = greedy_request({1, 2, 3}, 4);
    edit(request.sampling);
    return request;
  };
  const auto kInvalid = StatusCode::kInvalidArgument;
  expect_rejected(with([](SamplingParams& p) { p.temperature = -0.5f; }), kInvalid, "temperature");
  expect_rejected(with([](SamplingParams& p) { p.top_p = 0.0f; }), kInvalid, "top_p");
  expect_rejected(with([](SamplingParams& p) { p.top_p = 1.5f; }), kInvalid, "top_p");
  expect_rejected(with([](SamplingParams& p) { p.max_tokens = 0; }), kInvalid, "max_tokens");
  expect_rejected(with([](SamplingParams& p) { p.top_k = -1; }), kInvalid, "top_k");
  expect_rejected(with([](SamplingParams& p) { p.min_p = 2; }), kInvalid, "min_p");
  expect_rejected(with([](SamplingParams& p) { p.repetition_penalty = 0; }), kInvalid,
                  "repetition_penalty");
  expect_rejected(with([](SamplingParams& p) { p.logprobs = 21; }), kInvalid, "logprobs");
  expect_rejected(with([](SamplingParams& p) { p.prompt_logprobs = -1; }), kInvalid,
                  "prompt_logprobs");
  expect_rejected(with([](SamplingParams& p) {
                    p.logit_bias = {{3, 101.0f}};
                  }),
                  kInvalid, "logit_bias of token 3 must be in [-100, 100]");
  expect_rejected(with([](SamplingParams& p) {
                    p.logit_bias = {{kVocab, 1.0f}};
                  }),
                  kInvalid, "logit_bias token id 32 is outside the vocabulary");
  expect_rejected(greedy_request({}, 4), kInvalid, "empty");
  expect_rejected(greedy_request({1, kVocab}, 4), kInvalid, "vocabulary");
  expect_rejected(greedy_request(std::vector<int32_t>(20, 1), 1), StatusCode::kOutOfRange,
                  "context window of 20 tokens");
  expect_rejected(greedy_request(std::vector<int32_t>(10, 1), 11), StatusCode::kOutOfRange,
                  "prompt (10 tokens) + max_tokens (11) exceeds the context window of 20");

  // Fits the context (20) but not the cache (8 x 4 = 32 slots) at a context of 64.
  FakeModelRunner small_cache(8, 4, kVocab, 64);
  Engine small(small_cache);
  auto too_big = small.add_request(greedy_request(std::vector<int32_t>(30, 1), 10));
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("KV cache"), std::string::npos);

  EXPECT_FALSE(engine.has_unfinished());
  ASSERT_TRUE(engine.step().ok());
  EXPECT_EQ(engine.stats().steps, 0);
  EXPECT_EQ(runner.executed_tokens(), 0);
}

TEST(Engine, StreamsEveryTokenAndOneFinalEvent) {
  FakeModelRunner runner(32, 4, kVocab, 256);
  Engine engine(runner);
  const std::vector<int32_t> prompt{5, 6, 7, 8, 9};
  auto request = greedy_request(prompt, 12);
  request.sampling.ignore_eos = true;
  auto out = testing::run_all(engine, {request});
  EXPECT_EQ(out[0].tokens, testing::fake_greedy(prompt, 12, {}, kVocab));
  EXPECT_EQ(out[0].final_events, 1);
  EXPECT_EQ(out[0].events_after_final, 0);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(engine.block_manager().num_free_blocks(), 32);
}

TEST(Engine, StopTokenEndsWithStopAndIsStreamed) {
  FakeModelRunner runner(32, 4, kVocab, 256);
  Engine engine(runner);
  const std::vector<int32_t> prompt{5, 6, 7};
  const auto free_run = testing::fake_greedy(prompt, 10, {}, kVocab);
  auto request = greedy_request(prompt, 10);
  request.sampling.stop_token_ids = {free_run[3]};
  request.sampling.ignore_eos = true;
  auto out = testing::run_all(engine, {request});
  const auto expected = testing::fake_greedy(prompt, 10, {free_run[3]}, kVocab);
  EXPECT_EQ(out[0].tokens, expected);
  EXPECT_EQ(out[0].tokens.back(), free_run[3]);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kStop);
}

TEST(Engine, LongPromptsArePrefilledInChunksUnderTheTokenBudget) {
  FakeModelRunner runner(64, 4, kVocab, 256);
  EngineOptions options;
  options.scheduler.max_batch_tokens = 7;
  Engine engine(runner, options);
  std::vector<int32_t> prompt(50);
  for (int i = 0; i < 50; ++i) prompt[i] = (i * 7) % kVocab;
  auto request = greedy_request(prompt, 5);
  request.sampling.ignore_eos = true;
  auto out = testing::run_all(engine, {request});
  EXPECT_EQ(out[0].tokens, testing::fake_greedy(prompt, 5, {}, kVocab));
  // ceil(50 / 7) = 8 prefill steps, then 4 decode steps.
  EXPECT_EQ(engine.stats().steps, 8 + 4);
  EXPECT_EQ(engine.stats().scheduled_tokens, 50 + 4);
}

TEST(Engine, CancelFreesBlocksAtTheNextStep) {
  FakeModelRunner runner(16, 4, kVocab, 256);
  Engine engine(runner);
  Completion waiting_one, running_one;
  auto running_request = greedy_request({1, 3, 5, 7, 9}, 50);
  running_request.sampling.ignore_eos = true;
  running_request.on_event = testing::collect_into(running_one);
  const RequestId running_id = *engine.add_request(std::move(running_request));
  ASSERT_TRUE(engine.step().ok());
  ASSERT_TRUE(engine.step().ok());
  EXPECT_EQ(running_one.tokens.size(), 2u);
  EXPECT_LT(engine.block_manager().num_free_blocks(), 16);

  auto waiting_request = greedy_request({4}, 5);
  waiting_request.on_event = testing::collect_into(waiting_one);
  const RequestId waiting_id = *engine.add_request(std::move(waiting_request));
  EXPECT_TRUE(engine.cancel(running_id));
  EXPECT_TRUE(engine.cancel(waiting_id));
  EXPECT_FALSE(engine.cancel(12345));
  ASSERT_TRUE(engine.step().ok());
  EXPECT_FALSE(engine.has_unfinished());
  EXPECT_EQ(engine.block_manager().num_free_blocks(), 16);
  EXPECT_EQ(running_one.finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(running_one.tokens.size(), 2u);
  EXPECT_EQ(waiting_one.finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(waiting_one.tokens.empty());
  EXPECT_EQ(running_one.final_events + waiting_one.final_events, 2);
  EXPECT_FALSE(engine.cancel(running_id));  // already finished
}

TEST(Engine, AFailedForwardPassFinishesItsSequencesWithError) {
  FakeModelRunner runner(16, 4, kVocab, 256);
  Engine engine(runner);
  Completion a, b;
  auto request = greedy_request({1, 2}, 4);
  request.on_event = testing::collect_into(a);
  ASSERT_TRUE(engine.add_request(request).ok());
  runner.fail_next_execute();
  const Status status = engine.step();
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_EQ(a.finish_reason, FinishReason::kError);
  EXPECT_EQ(a.final_events, 1);
  EXPECT_EQ(engine.block_manager().num_free_blocks(), 16);

  // The engine keeps serving.
  request.on_event = testing::collect_into(b);
  ASSERT_TRUE(engine.add_request(request).ok());
  while (engine.has_unfinished()) ASSERT_TRUE(engine.step().ok());
  EXPECT_EQ(b.final_events, 1);
  EXPECT_NE(b.finish_reason, FinishReason::kError);
}

TEST(Engine, CallbacksMayAddAndCancelRequests) {
  FakeModelRunner runner(16, 4, kVocab, 256);
  Engine engine(runner);
  Completion first, second;
  RequestId second_id = 0;
  auto request = greedy_request({1, 2}, 3);
  request.sampling.ignore_eos = true;
  request.on_event = [&](const StreamEvent& event) {
    testing::collect_into(first)(event);
    if (first.tokens.size() == 1 && !event.finish_reason) {
      auto follow_up = greedy_request({3}, 30);
      follow_up.sampling.ignore_eos = true;
      follow_up.on_event = testing::collect_into(second);
      second_id = *engine.add_request(std::move(follow_up));
    }
    if (event.finish_reason) engine.cancel(second_id);
  };
  ASSERT_TRUE(engine.add_request(std::move(request)).ok());
  while (engine.has_unfinished()) ASSERT_TRUE(engine.step().ok());
  EXPECT_EQ(first.finish_reason, FinishReason::kLength);
  EXPECT_EQ(second.finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(engine.block_manager().num_free_blocks(), 16);
}

TEST(Engine, LogprobsCarryTheSampledTokenAndTheTopN) {
  FakeModelRunner runner(16, 4, kVocab, 256);
  Engine engine(runner);
  auto request = greedy_request({1, 2, 3}, 3);
  request.sampling.logprobs = 3;
  request.sampling.ignore_eos = true;
  auto out = testing::run_all(engine, {request});
  ASSERT_EQ(out[0].logprobs.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const TokenLogprobs& lp = out[0].logprobs[i];
    ASSERT_EQ(lp.top.size(), 3u);
    // Greedy: the sampled token is the likeliest.
    EXPECT_EQ(lp.top[0].first, out[0].tokens[i]);
    EXPECT_FLOAT_EQ(lp.top[0].second, lp.logprob);
    EXPECT_LE(lp.logprob, 0.0f);
    EXPECT_GE(lp.top[0].second, lp.top[1].second);
    EXPECT_GE(lp.top[1].second, lp.top[2].second);
  }
}

TEST(Engine, SamplesOnTheDeviceWhenEveryRowAllowsIt) {
  FakeModelRunner runner(64, 4, kVocab, 256);
  runner.set_samples_on_device(true);
  Engine engine(runner);
  const std::vector<int32_t> a{5, 6, 7}, b{9, 10};
  auto first = greedy_request(a, 10), second = greedy_request(b, 10);
  first.sampling.ignore_eos = second.sampling.ignore_eos = true;
  auto out = testing::run_all(engine, {first, second});
  EXPECT_EQ(out[0].tokens, testing::fake_greedy(a, 10, {}, kVocab));
  EXPECT_EQ(out[1].tokens, testing::fake_greedy(b, 10, {}, kVocab));
  EXPECT_EQ(engine.stats().device_sampled_steps, engine.stats().steps);
  EXPECT_EQ(runner.device_sampled_rows(), 20);
}

TEST(Engine, TemperaturesBelowTheGreedyThresholdReachTheDeviceAsGreedy) {
  FakeModelRunner runner(64, 4, kVocab, 256);
  runner.set_samples_on_device(true);  // the fake draws by seed unless a row's temperature is 0
  Engine engine(runner);
  auto tiny = greedy_request({5, 6, 7}, 8);
  tiny.sampling.temperature = 1e-40f;  // 1 / temperature is infinite in fp32
  tiny.sampling.ignore_eos = true;
  EXPECT_EQ(testing::run_all(engine, {tiny})[0].tokens,
            testing::fake_greedy({5, 6, 7}, 8, {}, kVocab));
  EXPECT_EQ(runner.device_sampled_rows(), 8);
}

TEST(Engine, PenaltiesLogprobsOrALogitBiasInTheBatchSampleOnTheHost) {
  for (auto host_only : {+[](SamplingParams& p) { p.repetition_penalty = 1.3f; },
                         +[](SamplingParams& p) { p.logprobs = 2; },
                         +[](SamplingParams& p) {
                           p.logit_bias = {{3, 0.5f}};
                         }}) {
    FakeModelRunner runner(64, 4, kVocab, 256);
    runner.set_samples_on_device(true);
    Engine engine(runner);
    auto plain = greedy_request({5, 6, 7}, 6), special = greedy_request({9, 10}, 6);
    plain.sampling.ignore_eos = special.sampling.ignore_eos = true;
    host_only(special.sampling);
    auto out = testing::run_all(engine, {plain, special});
    EXPECT_EQ(out[0].tokens, testing::fake_greedy({5, 6, 7}, 6, {}, kVocab));
    EXPECT_EQ(out[1].tokens.size(), 6u);
    EXPECT_EQ(engine.stats().device_sampled_steps, 0);  // the two always share a step
    EXPECT_EQ(runner.device_sampled_rows(), 0);
  }
}

TEST(Engine, DeviceSamplingDrawsByRequestSeedAndTokenIndex) {
  auto run = [](uint64_t seed, int batch_position) {
    FakeModelRunner runner(64, 4, kVocab, 256);
    runner.set_samples_on_device(true);
    Engine engine(runner);
    std::vector<Request> requests(2, greedy_request({5, 6}, 5));
    for (Request& r : requests) {
      r.sampling.temperature = 0.8f;
      r.sampling.ignore_eos = true;
    }
    requests[batch_position].sampling.seed = seed;
    requests[1 - batch_position].sampling.seed = seed + 1000;
    return testing::run_all(engine, requests)[batch_position].tokens;
  };
  const auto tokens = run(7, 0);
  EXPECT_EQ(tokens, run(7, 1)) << "the draw must not depend on the row in the batch";
  EXPECT_NE(tokens, run(8, 0));
  ASSERT_EQ(tokens.size(), 5u);
  EXPECT_FALSE(std::all_of(tokens.begin(), tokens.end(), [&](int32_t t) { return t == tokens[0]; }))
      << "each token index is a new draw";
}

TEST(Engine, MeasuresQueueAndPrefillTimeOncePerRequest) {
  FakeModelRunner runner(64, 4, kVocab, 256);
  EngineOptions options;
  options.scheduler.max_num_seqs = 1;      // the later requests queue behind the first
  options.scheduler.max_batch_tokens = 4;  // and each prompt takes several prefill steps
  Engine engine(runner, options);
  std::vector<Request> requests;
  for (int i = 0; i < 3; ++i) {
    requests.push_back(greedy_request(std::vector<int32_t>(10, 3 + i), 3));
    requests.back().sampling.ignore_eos = true;
  }
  // One more, cancelled before it is ever scheduled: no queue time, no prefill time.
  Completion cancelled;
  Request never = greedy_request({1, 2}, 2);
  never.on_event = testing::collect_into(cancelled);
  auto never_id = engine.add_request(std::move(never));
  ASSERT_TRUE(never_id.ok());
  ASSERT_TRUE(engine.cancel(*never_id));
  testing::run_all(engine, requests);
  EXPECT_EQ(cancelled.finish_reason, FinishReason::kCancelled);
  const EngineStats& stats = engine.stats();
  EXPECT_EQ(stats.queue_time.count(), 3u);
  EXPECT_EQ(stats.prefill_time.count(), 3u);
  // The third request waited through the first two (each 3 prefill + 2 decode steps).
  EXPECT_GT(stats.queue_time.sum(), 0.0);
  EXPECT_GT(stats.prefill_time.sum(), 0.0);
  uint64_t in_buckets = 0;
  for (uint64_t n : stats.queue_time.counts()) in_buckets += n;
  EXPECT_EQ(in_buckets, 3u);
}

}  // namespace
}  // namespace shardwise
