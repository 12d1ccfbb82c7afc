#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "coordinator/auth.h"
#include "coordinator/metrics.h"
#include "coordinator/readiness.h"
#include "coordinator/registry.h"
#include "tests/coordinator/test_cards.h"

namespace shardwise {
namespace {

using std::chrono::milliseconds;

TEST(Registry, PicksTheLeastLoadedLiveReplica) {
  Registry registry(milliseconds(100), 3, {});
  auto a = registry.register_replica(test_card("127.0.0.1:1", "cpu"));
  auto b = registry.register_replica(test_card("127.0.0.1:2", "cpu"));
  ASSERT_TRUE(a.ok() && b.ok());
  auto first = registry.pick("stories", v1::PRIORITY_BATCH, {});
  ASSERT_TRUE(first.ok());
  ++(*first)->outstanding;
  auto second = registry.pick("stories", v1::PRIORITY_BATCH, {});
  ASSERT_TRUE(second.ok());
  EXPECT_NE((*first)->id, (*second)->id);
  registry.mark_dead(**second, "test");
  EXPECT_EQ((*registry.pick("stories", v1::PRIORITY_BATCH, {}))->id, (*first)->id);
  EXPECT_EQ(registry.pick("other", v1::PRIORITY_BATCH, {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(registry.pick("stories", v1::PRIORITY_BATCH, {(*first)->id}).status().code(),
            StatusCode::kUnavailable);
}

TEST(Registry, ConfiguredModelsAreNotServingUntilAReplicaRegisters) {
  Registry registry(milliseconds(100), 3, {});
  registry.expect_models({"stories", "absent"});
  EXPECT_FALSE(registry.serving());
  EXPECT_EQ(registry.models(), (std::vector<std::string>{"absent", "stories"}));
  EXPECT_EQ(registry.pick("absent", v1::PRIORITY_BATCH, {}).status().code(),
            StatusCode::kUnavailable);
  ASSERT_TRUE(registry.register_replica(test_card("127.0.0.1:1", "cpu")).ok());
  EXPECT_FALSE(registry.serving());  // "absent" still has no replica
  Registry one(milliseconds(100), 3, {});
  one.expect_models({"stories"});
  ASSERT_TRUE(one.register_replica(test_card("127.0.0.1:1", "cpu")).ok());
  EXPECT_TRUE(one.serving());
}

TEST(Registry, DeregisteredReplicaLeavesRotationAndMayRegisterAgain) {
  Registry registry(milliseconds(100), 3, {});
  auto id = registry.register_replica(test_card("127.0.0.1:1", "cpu"));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(registry.deregister(id->replica_id, id->secret).ok());
  EXPECT_FALSE(registry.serving());
  EXPECT_EQ(registry.pick("stories", v1::PRIORITY_BATCH, {}).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(registry.deregister("stories-99", id->secret).code(), StatusCode::kNotFound);
  v1::HeartbeatRequest beat;
  beat.set_replica_id(id->replica_id);
  beat.set_registration_secret(id->secret);
  EXPECT_EQ(registry.heartbeat(beat).code(), StatusCode::kNotFound);  // it must register again
  ASSERT_TRUE(registry.register_replica(test_card("127.0.0.1:1", "cpu")).ok());
  EXPECT_TRUE(registry.serving());
  EXPECT_EQ(registry.replicas().size(), 1u);  // the new registration replaced the old one
}

TEST(Metrics, QueueDepthSumsTheWaitingRequestsOfLiveReplicas) {
  Registry registry(milliseconds(100), 3, {});
  auto a = registry.register_replica(test_card("127.0.0.1:1", "cpu"));
  auto b = registry.register_replica(test_card("127.0.0.1:2", "cpu"));
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& [id, waiting] : {std::pair(*a, 3), std::pair(*b, 4)}) {
    v1::HeartbeatRequest beat;
    beat.set_replica_id(id.replica_id);
    beat.set_registration_secret(id.secret);
    beat.set_waiting(waiting);
    ASSERT_TRUE(registry.heartbeat(beat).ok());
  }
  Metrics metrics;
  EXPECT_NE(metrics.render(registry).find("shardwise_queue_depth{model=\"stories\"} 7\n"),
            std::string::npos);
  ASSERT_TRUE(registry.deregister(b->replica_id, b->secret).ok());
  EXPECT_NE(metrics.render(registry).find("shardwise_queue_depth{model=\"stories\"} 3\n"),
            std::string::npos);
}

TEST(Registry, RoutesByPriorityAndSpillsWhenSaturated) {
  Registry registry(milliseconds(100), 3, {});
  ASSERT_TRUE(registry.register_replica(test_card("127.0.0.1:1", "cpu", 1)).ok());
  ASSERT_TRUE(registry.register_replica(test_card("127.0.0.1:2", "cuda", 1)).ok());
  auto gpu = registry.pick("stories", v1::PRIORITY_INTERACTIVE, {});
  auto cpu = registry.pick("stories", v1::PRIORITY_BATCH, {});
  EXPECT_EQ(device_name((*gpu)->card.device()), "cuda");
  EXPECT_EQ(device_name((*cpu)->card.device()), "cpu");
  ++(*gpu)->outstanding;  // the GPU replica is saturated: interactive work spills to the CPU
  EXPECT_EQ(device_name((*registry.pick("stories", v1::PRIORITY_INTERACTIVE, {}))->card.device()),
            "cpu");
}

TEST(Registry, BoundedQueueSaysResourceExhausted) {
  Registry registry(milliseconds(100), 3, RouterOptions{.max_queued = 1});
  ASSERT_TRUE(registry.register_replica(test_card("127.0.0.1:1", "cpu", 1)).ok());
  auto r = registry.pick("stories", v1::PRIORITY_BATCH, {});
  (*r)->outstanding = 2;  // 1 running + 1 queued
  EXPECT_EQ(registry.pick("stories", v1::PRIORITY_BATCH, {}).status().code(),
            StatusCode::kResourceExhausted);
}

TEST(Registry, MissedHeartbeatsExpireAndReRegistrationRejoins) {
  Registry registry(milliseconds(100), 3, {});
  auto id = registry.register_replica(test_card("127.0.0.1:1", "cpu"));
  ASSERT_TRUE(id.ok());
  v1::HeartbeatRequest beat;
  beat.set_replica_id(id->replica_id);
  beat.set_registration_secret(id->secret);
  EXPECT_TRUE(registry.heartbeat(beat).ok());
  EXPECT_TRUE(registry.serving());
  registry.expire(std::chrono::steady_clock::now() + milliseconds(500));
  EXPECT_FALSE(registry.serving());
  EXPECT_EQ(registry.heartbeat(beat).code(), StatusCode::kNotFound);
  ASSERT_TRUE(registry.register_replica(test_card("127.0.0.1:1", "cpu")).ok());
  EXPECT_TRUE(registry.serving());
  EXPECT_EQ(registry.replicas().size(), 1u);  // the new registration replaced the old one
}

TEST(Registry, RejectsCardsWithoutATokenizer) {
  Registry registry(milliseconds(100), 3, {});
  v1::ModelCard c = test_card("127.0.0.1:1", "cpu");
  c.set_tokenizer_json("{");
  EXPECT_EQ(registry.register_replica(c).status().code(), StatusCode::kInvalidArgument);
}

TEST(Metrics, RendersPrometheusText) {
  Registry registry(milliseconds(100), 3, {});
  ASSERT_TRUE(registry.register_replica(test_card("127.0.0.1:1", "cpu")).ok());
  Metrics metrics;
  metrics.count_request("stories", "OK");
  metrics.observe_ttft("stories", 0.003);
  metrics.observe_ttft("stories", 20);
  metrics.add_generated_tokens("stories", 5);
  const std::string text = metrics.render(registry);
  EXPECT_NE(text.find("shardwise_requests_total{model=\"stories\",code=\"OK\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "shardwise_time_to_first_token_seconds_bucket{model=\"stories\",le=\"0.0025\"} 0\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("shardwise_time_to_first_token_seconds_bucket{model=\"stories\",le=\"0.005\"} 1\n"),
      std::string::npos);
  EXPECT_NE(
      text.find("shardwise_time_to_first_token_seconds_bucket{model=\"stories\",le=\"+Inf\"} 2\n"),
      std::string::npos);
  EXPECT_NE(text.find("shardwise_time_to_first_token_seconds_count{model=\"stories\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("shardwise_generation_tokens_total{model=\"stories\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("shardwise_replica_live{model=\"stories\""), std::string::npos);
  EXPECT_EQ(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

v1::LatencyHistogram shipped(std::vector<double> bounds, std::vector<uint64_t> counts, double sum) {
  v1::LatencyHistogram h;
  h.mutable_bounds()->Assign(bounds.begin(), bounds.end());
  h.mutable_counts()->Assign(counts.begin(), counts.end());
  h.set_sum(sum);
  return h;
}

TEST(Metrics, RendersWhatTheReplicasReportInTheirHeartbeats) {
  Registry registry(milliseconds(100), 3, {});
  auto id = registry.register_replica(test_card("127.0.0.1:1", "cpu"));
  ASSERT_TRUE(id.ok());
  v1::HeartbeatRequest beat;
  beat.set_replica_id(id->replica_id);
  beat.set_registration_secret(id->secret);
  beat.set_running(5);  // sequences in the engine, the waiting ones included
  beat.set_waiting(2);
  beat.set_kv_cache_usage(0.25f);
  v1::EngineMetrics* engine = beat.mutable_engine();
  engine->set_preemptions(4);
  engine->set_prefix_cache_queried_tokens(64);
  engine->set_prefix_cache_hit_tokens(48);
  *engine->mutable_queue_time() = shipped({0.01, 0.1}, {1, 2, 3}, 2.5);
  // Malformed: one count too few. It must not reach the scrape.
  *engine->mutable_prefill_time() = shipped({0.01, 0.1}, {1, 2}, 0.5);
  ASSERT_TRUE(registry.heartbeat(beat).ok());
  Metrics metrics;
  metrics.add_prompt_tokens("stories", 7);
  const std::string text = metrics.render(registry);
  const std::string labels =
      "model=\"stories\",replica=\"" + id->replica_id + "\",address=\"127.0.0.1:1\",device=\"cpu\"";
  for (const std::string& line :
       {"shardwise_replica_running_requests{" + labels + "} 3\n",
        "shardwise_replica_waiting_requests{" + labels + "} 2\n",
        "shardwise_replica_kv_cache_usage_ratio{" + labels + "} 0.25\n",
        "shardwise_replica_preemptions_total{" + labels + "} 4\n",
        "shardwise_replica_prefix_cache_queried_tokens_total{" + labels + "} 64\n",
        "shardwise_replica_prefix_cache_hit_tokens_total{" + labels + "} 48\n",
        // Cumulative, as Prometheus counts buckets: 1, 1 + 2, 1 + 2 + 3.
        "shardwise_replica_queue_time_seconds_bucket{" + labels + ",le=\"0.01\"} 1\n",
        "shardwise_replica_queue_time_seconds_bucket{" + labels + ",le=\"0.1\"} 3\n",
        "shardwise_replica_queue_time_seconds_bucket{" + labels + ",le=\"+Inf\"} 6\n",
        "shardwise_replica_queue_time_seconds_sum{" + labels + "} 2.5\n",
        "shardwise_replica_queue_time_seconds_count{" + labels + "} 6\n",
        std::string("shardwise_prompt_tokens_total{model=\"stories\"} 7\n")}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nin\n" << text;
  }
  EXPECT_EQ(text.find("shardwise_replica_prefill_time_seconds_bucket"), std::string::npos);
  EXPECT_NE(text.find("# TYPE shardwise_replica_prefill_time_seconds histogram"),
            std::string::npos);
  EXPECT_EQ(text.find("shardwise_replica_kv_cache_usage{"), std::string::npos);
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
        "process_max_fds ", "process_start_time_seconds "}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name;
  }
}

TEST(Metrics, SkipsShippedHistogramsThatMakeNoSense) {
  Registry registry(milliseconds(100), 3, {});
  auto id = registry.register_replica(test_card("127.0.0.1:1", "cpu"));
  ASSERT_TRUE(id.ok());
  Metrics metrics;
  for (const v1::LatencyHistogram& bad :
       {shipped({0.1, 0.01}, {1, 1, 1}, 1), shipped({0.1, NAN}, {1, 1, 1}, 1),
        shipped({0.1}, {1, 1}, INFINITY), shipped({}, {1}, 1),
        shipped(std::vector<double>(65, 1), std::vector<uint64_t>(66, 1), 1)}) {
    v1::HeartbeatRequest beat;
    beat.set_replica_id(id->replica_id);
    beat.set_registration_secret(id->secret);
    *beat.mutable_engine()->mutable_queue_time() = bad;
    ASSERT_TRUE(registry.heartbeat(beat).ok());
    EXPECT_EQ(metrics.render(registry).find("shardwise_replica_queue_time_seconds_bucket"),
              std::string::npos);
  }
}

TEST(Readiness, EveryKnownModelNeedsALiveReplica) {
  Registry registry(milliseconds(100), 3, {});
  EXPECT_FALSE(readiness(registry).ready) << "no model known yet";
  registry.expect_models({"stories", "llama"});
  Readiness now = readiness(registry);
  EXPECT_FALSE(now.ready);
  EXPECT_EQ(now.live_replicas, (std::map<std::string, int>{{"llama", 0}, {"stories", 0}}));
  auto a = registry.register_replica(test_card("127.0.0.1:1", "cpu"));
  auto b = registry.register_replica(test_card("127.0.0.1:2", "cpu"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(readiness(registry).ready) << "llama has no replica";
  v1::ModelCard llama = test_card("127.0.0.1:3", "cpu");
  llama.set_name("llama");
  ASSERT_TRUE(registry.register_replica(llama).ok());
  now = readiness(registry);
  EXPECT_TRUE(now.ready);
  EXPECT_EQ(now.live_replicas.at("stories"), 2);
  ASSERT_TRUE(registry.deregister(a->replica_id, a->secret).ok());
  ASSERT_TRUE(registry.deregister(b->replica_id, b->secret).ok());
  now = readiness(registry);
  EXPECT_FALSE(now.ready);
  EXPECT_EQ(now.live_replicas.at("stories"), 0);
}

TEST(Auth, AcceptsOnlyTheBearerKey) {
  EXPECT_TRUE(authorized("", ""));
  EXPECT_TRUE(authorized("k1", "Bearer k1"));
  EXPECT_FALSE(authorized("k1", "Bearer k2"));
  EXPECT_FALSE(authorized("k1", "Bearer k1x"));
  EXPECT_FALSE(authorized("k1", "k1"));
  EXPECT_FALSE(authorized("k1", ""));
}

}  // namespace
}  // namespace shardwise
