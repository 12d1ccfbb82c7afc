#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "coordinator/auth.h"
#include "coordinator/metrics.h"
#include "coordinator/registry.h"

namespace shardwise {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

v1::ModelCard card(const std::string& address, const std::string& device, int capacity = 2) {
  static const std::string tokenizer =
      read_file(std::string(SHARDWISE_SOURCE_DIR) + "/assets/models/stories260K/tokenizer.json");
  v1::ModelCard c;
  c.set_name("stories");
  c.set_address(address);
  c.set_tokenizer_json(tokenizer);
  c.set_context_length(512);
  c.set_device(device == "cuda" ? v1::DEVICE_CUDA : v1::DEVICE_CPU);
  c.set_tp(1);
  c.set_capacity(capacity);
  return c;
}

using std::chrono::milliseconds;

TEST(Registry, PicksTheLeastLoadedLiveReplica) {
  Registry registry(milliseconds(100), 3, {});
  auto a = registry.register_replica(card("127.0.0.1:1", "cpu"));
  auto b = registry.register_replica(card("127.0.0.1:2", "cpu"));
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
  ASSERT_TRUE(registry.register_replica(card("127.0.0.1:1", "cpu")).ok());
  EXPECT_FALSE(registry.serving());  // "absent" still has no replica
  Registry one(milliseconds(100), 3, {});
  one.expect_models({"stories"});
  ASSERT_TRUE(one.register_replica(card("127.0.0.1:1", "cpu")).ok());
  EXPECT_TRUE(one.serving());
}

TEST(Registry, DeregisteredReplicaLeavesRotationAndMayRegisterAgain) {
  Registry registry(milliseconds(100), 3, {});
  auto id = registry.register_replica(card("127.0.0.1:1", "cpu"));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(registry.deregister(*id).ok());
  EXPECT_FALSE(registry.serving());
  EXPECT_EQ(registry.pick("stories", v1::PRIORITY_BATCH, {}).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(registry.deregister("stories-99").code(), StatusCode::kNotFound);
  v1::HeartbeatRequest beat;
  beat.set_replica_id(*id);
  EXPECT_EQ(registry.heartbeat(beat).code(), StatusCode::kNotFound);  // it must register again
  ASSERT_TRUE(registry.register_replica(card("127.0.0.1:1", "cpu")).ok());
  EXPECT_TRUE(registry.serving());
  EXPECT_EQ(registry.replicas().size(), 1u);  // the new registration replaced the old one
}

TEST(Metrics, QueueDepthSumsTheWaitingRequestsOfLiveReplicas) {
  Registry registry(milliseconds(100), 3, {});
  auto a = registry.register_replica(card("127.0.0.1:1", "cpu"));
  auto b = registry.register_replica(card("127.0.0.1:2", "cpu"));
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& [id, waiting] : {std::pair(*a, 3), std::pair(*b, 4)}) {
    v1::HeartbeatRequest beat;
    beat.set_replica_id(id);
    beat.set_waiting(waiting);
    ASSERT_TRUE(registry.heartbeat(beat).ok());
  }
  Metrics metrics;
  EXPECT_NE(metrics.render(registry).find("shardwise_queue_depth{model=\"stories\"} 7\n"),
            std::string::npos);
  ASSERT_TRUE(registry.deregister(*b).ok());
  EXPECT_NE(metrics.render(registry).find("shardwise_queue_depth{model=\"stories\"} 3\n"),
            std::string::npos);
}

TEST(Registry, RoutesByPriorityAndSpillsWhenSaturated) {
  Registry registry(milliseconds(100), 3, {});
  ASSERT_TRUE(registry.register_replica(card("127.0.0.1:1", "cpu", 1)).ok());
  ASSERT_TRUE(registry.register_replica(card("127.0.0.1:2", "cuda", 1)).ok());
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
  ASSERT_TRUE(registry.register_replica(card("127.0.0.1:1", "cpu", 1)).ok());
  auto r = registry.pick("stories", v1::PRIORITY_BATCH, {});
  (*r)->outstanding = 2;  // 1 running + 1 queued
  EXPECT_EQ(registry.pick("stories", v1::PRIORITY_BATCH, {}).status().code(),
            StatusCode::kResourceExhausted);
}

TEST(Registry, MissedHeartbeatsExpireAndReRegistrationRejoins) {
  Registry registry(milliseconds(100), 3, {});
  auto id = registry.register_replica(card("127.0.0.1:1", "cpu"));
  ASSERT_TRUE(id.ok());
  v1::HeartbeatRequest beat;
  beat.set_replica_id(*id);
  EXPECT_TRUE(registry.heartbeat(beat).ok());
  EXPECT_TRUE(registry.serving());
  registry.expire(std::chrono::steady_clock::now() + milliseconds(500));
  EXPECT_FALSE(registry.serving());
  EXPECT_EQ(registry.heartbeat(beat).code(), StatusCode::kNotFound);
  ASSERT_TRUE(registry.register_replica(card("127.0.0.1:1", "cpu")).ok());
  EXPECT_TRUE(registry.serving());
  EXPECT_EQ(registry.replicas().size(), 1u);  // the new registration replaced the old one
}

TEST(Registry, RejectsCardsWithoutATokenizer) {
  Registry registry(milliseconds(100), 3, {});
  v1::ModelCard c = card("127.0.0.1:1", "cpu");
  c.set_tokenizer_json("{");
  EXPECT_EQ(registry.register_replica(c).status().code(), StatusCode::kInvalidArgument);
}

TEST(Metrics, RendersPrometheusText) {
  Registry registry(milliseconds(100), 3, {});
  ASSERT_TRUE(registry.register_replica(card("127.0.0.1:1", "cpu")).ok());
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
  EXPECT_NE(text.find("shardwise_generated_tokens_total{model=\"stories\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("shardwise_replica_live{model=\"stories\""), std::string::npos);
  EXPECT_EQ(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
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
