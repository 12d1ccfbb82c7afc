// The registry's rules against a hostile or broken registrant (issue 15): replica ids nobody can
// guess and secrets that only the holder of a registration has; a live replica's address that
// only its own listener can take over; cards validated, bounded and fixed per model; tokenizers
// shared; replicas out of rotation freed after the grace period (leaving /health, /v1/models
// and /metrics); the restart window's UNAVAILABLE; and traffic counting as liveness.
#include <gtest/gtest.h>

#include <regex>

#include "common/secret.h"
#include "coordinator/metrics.h"
#include "coordinator/registry.h"
#include "tests/coordinator/test_cards.h"

namespace shardwise {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Answers Shard.Identify as the process holding `listener_secret` would (or fails).
class FakeDialer final : public ShardDialer {
 public:
  StatusOr<std::string> identify(const std::string&) const override {
    if (listener_secret.empty()) return unavailable("connection refused");
    return sha256_hex(listener_secret);
  }
  std::string listener_secret;
};

RegistryOptions options() {
  RegistryOptions o;
  o.heartbeat_interval = milliseconds(100);
  o.grace = milliseconds(1000);
  return o;
}

v1::ModelCard card_with_secret(const std::string& address, const std::string& secret) {
  v1::ModelCard c = test_card(address);
  c.set_instance_secret(secret);
  return c;
}

// A sign of life from `replica` at `t` (heartbeats stamp the real clock; expire() is given
// times ahead of it).
void touch(Replica& replica, Clock::time_point t) {
  *replica.last_seen =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

v1::HeartbeatRequest beat(const Registration& r) {
  v1::HeartbeatRequest b;
  b.set_replica_id(r.replica_id);
  b.set_registration_secret(r.secret);
  return b;
}

TEST(RegistryTrust, ReplicaIdsAreUnguessableAndOnlyTheHolderMayBeatOrLeave) {
  Registry registry(options());
  auto a = registry.register_replica(test_card("127.0.0.1:1"));
  auto b = registry.register_replica(test_card("127.0.0.1:2"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(std::regex_match(a->replica_id, std::regex("stories-[0-9a-f]{16}"))) << a->replica_id;
  EXPECT_NE(a->replica_id, b->replica_id);
  EXPECT_EQ(a->secret.size(), 64u);
  EXPECT_NE(a->secret, b->secret);

  v1::HeartbeatRequest stolen = beat(*a);
  stolen.set_registration_secret(b->secret);
  EXPECT_EQ(registry.heartbeat(stolen).code(), StatusCode::kPermissionDenied);
  stolen.clear_registration_secret();
  EXPECT_EQ(registry.heartbeat(stolen).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(registry.deregister(a->replica_id, "").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(registry.deregister(a->replica_id, b->secret).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(registry.deregister("stories-1", a->secret).code(), StatusCode::kNotFound);
  EXPECT_TRUE(registry.serving());
  EXPECT_TRUE(registry.heartbeat(beat(*a)).ok());
  EXPECT_TRUE(registry.deregister(a->replica_id, a->secret).ok());
}

TEST(RegistryTrust, OnlyTheListenerMayReplaceALiveReplicaAtItsAddress) {
  auto dialer = std::make_shared<FakeDialer>();
  Registry registry(options(), dialer);
  auto real = registry.register_replica(card_with_secret("127.0.0.1:7", "real-process"));
  ASSERT_TRUE(real.ok());
  const std::string real_id = real->replica_id;

  // A stranger claiming the live address: the process there is not the caller.
  dialer->listener_secret = "real-process";
  auto fake = registry.register_replica(card_with_secret("127.0.0.1:7", "fake"));
  EXPECT_EQ(fake.status().code(), StatusCode::kAlreadyExists) << fake.status().to_string();
  auto anonymous = registry.register_replica(test_card("127.0.0.1:7"));
  EXPECT_EQ(anonymous.status().code(), StatusCode::kAlreadyExists);
  // Nobody answers at the address: unproven, so refused too (the old one will expire).
  dialer->listener_secret.clear();
  EXPECT_EQ(registry.register_replica(card_with_secret("127.0.0.1:7", "fake")).status().code(),
            StatusCode::kUnavailable);
  ASSERT_EQ(registry.replicas().size(), 1u);
  EXPECT_EQ(registry.replicas()[0]->id, real_id);
  EXPECT_TRUE(registry.replicas()[0]->live);

  // The same process registering again (it lost its registration) needs no probe.
  auto again = registry.register_replica(card_with_secret("127.0.0.1:7", "real-process"));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  // A restarted leader listening there now proves it and replaces its old self.
  dialer->listener_secret = "restarted-process";
  auto restarted = registry.register_replica(card_with_secret("127.0.0.1:7", "restarted-process"));
  ASSERT_TRUE(restarted.ok()) << restarted.status().to_string();
  ASSERT_EQ(registry.replicas().size(), 1u);
  EXPECT_EQ(registry.replicas()[0]->id, restarted->replica_id);
  // A replica out of rotation gives its address up without proof.
  ASSERT_TRUE(registry.deregister(restarted->replica_id, restarted->secret).ok());
  dialer->listener_secret.clear();
  EXPECT_TRUE(registry.register_replica(card_with_secret("127.0.0.1:7", "next")).ok());
  EXPECT_EQ(registry.replicas().size(), 1u);
}

TEST(RegistryTrust, MalformedCardsAreRefused) {
  Registry registry(options());
  auto refused = [&](auto edit) {
    v1::ModelCard c = test_card("127.0.0.1:1");
    edit(c);
    return registry.register_replica(c).status();
  };
  struct Case {
    const char* what;
    std::function<void(v1::ModelCard&)> edit;
  };
  const Case cases[] = {
      {"context_length", [](v1::ModelCard& c) { c.set_context_length(1); }},
      {"context_length", [](v1::ModelCard& c) { c.set_context_length(-5); }},
      {"name", [](v1::ModelCard& c) { c.set_name(""); }},
      {"name", [](v1::ModelCard& c) { c.set_name("a b"); }},
      {"name", [](v1::ModelCard& c) { c.set_name(std::string(200, 'x')); }},
      {"address", [](v1::ModelCard& c) { c.set_address("nowhere"); }},
      {"port", [](v1::ModelCard& c) { c.set_address("127.0.0.1:70000"); }},
      {"tp", [](v1::ModelCard& c) { c.set_tp(0); }},
      {"capacity", [](v1::ModelCard& c) { c.set_capacity(-1); }},
      {"vocab_size", [](v1::ModelCard& c) { c.set_vocab_size(-1); }},
      {"device", [](v1::ModelCard& c) { c.set_device(static_cast<v1::Device>(77)); }},
      {"dtype", [](v1::ModelCard& c) { c.set_dtype("int3"); }},
      {"tokenizer_json",
       [](v1::ModelCard& c) { c.set_tokenizer_json(std::string(33 << 20, ' ')); }},
      {"tokenizer_config_json",
       [](v1::ModelCard& c) { c.set_tokenizer_config_json(std::string(5 << 20, ' ')); }},
  };
  for (const Case& c : cases) {
    Status status = refused(c.edit);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(status.message().find(c.what), std::string::npos) << status.message();
  }
  EXPECT_TRUE(registry.replicas().empty());
  EXPECT_TRUE(registry.register_replica(test_card("127.0.0.1:1")).ok());
}

TEST(RegistryTrust, TheFirstLiveReplicaFixesTheModelCard) {
  Registry registry(options());
  auto first = registry.register_replica(test_card("127.0.0.1:1"));
  ASSERT_TRUE(first.ok());
  v1::ModelCard shorter = test_card("127.0.0.1:2");
  shorter.set_context_length(64);
  Status status = registry.register_replica(shorter).status();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("context_length 64 (theirs: 512)"), std::string::npos)
      << status.message();
  v1::ModelCard other_tokenizer = test_card("127.0.0.1:2");
  other_tokenizer.set_tokenizer_json(other_tokenizer.tokenizer_json() + " ");
  status = registry.register_replica(other_tokenizer).status();
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("tokenizer"), std::string::npos) << status.message();
  v1::ModelCard other_vocab = test_card("127.0.0.1:2");
  other_vocab.set_vocab_size(1000);
  EXPECT_EQ(registry.register_replica(other_vocab).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(registry.context_length("stories"), 512);
  // Once no replica of the old card is live, a new card may take the name.
  ASSERT_TRUE(registry.deregister(first->replica_id, first->secret).ok());
  ASSERT_TRUE(registry.register_replica(shorter).ok());
  EXPECT_EQ(registry.context_length("stories"), 64);
}

TEST(RegistryTrust, IdenticalTokenizersAreSharedAndTheRegistryIsBounded) {
  RegistryOptions o = options();
  o.limits.max_replicas = 256;
  Registry registry(o);
  int accepted = 0;
  for (int i = 0; i < 300; ++i) {
    accepted += registry.register_replica(test_card("127.0.0.1:" + std::to_string(1000 + i))).ok();
  }
  EXPECT_EQ(accepted, o.limits.max_replicas_per_model);  // 64 per model
  EXPECT_EQ(registry.tokenizers_held(), 1u);
  const auto replicas = registry.replicas();
  for (const auto& r : replicas) EXPECT_EQ(r->tokenizer.get(), replicas[0]->tokenizer.get());

  // Across models: the total and the model count are bounded too.
  RegistryOptions small = options();
  small.limits.max_replicas = 3;
  small.limits.max_models = 2;
  Registry bounded(small);
  auto named = [](const std::string& name, int port) {
    v1::ModelCard c = test_card("127.0.0.1:" + std::to_string(port));
    c.set_name(name);
    return c;
  };
  ASSERT_TRUE(bounded.register_replica(named("a", 1)).ok());
  auto b = bounded.register_replica(named("b", 2));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(bounded.register_replica(named("c", 3)).status().code(),
            StatusCode::kResourceExhausted);
  ASSERT_TRUE(bounded.register_replica(named("a", 3)).ok());
  EXPECT_EQ(bounded.register_replica(named("a", 4)).status().code(),
            StatusCode::kResourceExhausted);
  // A replica out of rotation gives way to a new one, and a model with none live to a new model.
  ASSERT_TRUE(bounded.deregister(b->replica_id, b->secret).ok());
  ASSERT_TRUE(bounded.register_replica(named("c", 4)).ok());
  EXPECT_EQ(bounded.replicas().size(), 3u);
}

TEST(RegistryTrust, ReplicasOutOfRotationAreFreedAfterTheGracePeriod) {
  Registry registry(options());
  auto good = registry.register_replica(test_card("127.0.0.1:1"));
  v1::ModelCard bogus = test_card("127.0.0.1:2");
  bogus.set_name("bogus");
  bogus.set_tokenizer_json(bogus.tokenizer_json() + "\n");
  auto bad = registry.register_replica(bogus);
  ASSERT_TRUE(good.ok() && bad.ok());
  EXPECT_EQ(registry.tokenizers_held(), 2u);
  std::shared_ptr<Replica> stories = registry.replicas()[1];
  ASSERT_EQ(stories->id, good->replica_id);
  // The bogus replica never heartbeats: it expires and holds /health at 503 ...
  const Clock::time_point start = Clock::now();
  touch(*stories, start + milliseconds(340));
  registry.expire(start + milliseconds(350));
  EXPECT_TRUE(stories->live);
  EXPECT_FALSE(registry.serving());
  Metrics metrics;
  EXPECT_NE(metrics.render(registry).find("model=\"bogus\""), std::string::npos);
  EXPECT_EQ(registry.replicas().size(), 2u);  // listed while in its grace period
  // ... until the grace period ends: then it leaves every list and its tokenizer is freed.
  const Clock::time_point later = Clock::now() + milliseconds(1200);
  touch(*stories, later);
  registry.expire(later);
  EXPECT_TRUE(registry.serving());
  EXPECT_EQ(registry.models(), std::vector<std::string>{"stories"});
  EXPECT_EQ(registry.replicas().size(), 1u);
  EXPECT_EQ(metrics.render(registry).find("model=\"bogus\""), std::string::npos);
  EXPECT_EQ(registry.tokenizers_held(), 1u);
  EXPECT_EQ(registry.heartbeat(beat(*bad)).code(), StatusCode::kNotFound);
  EXPECT_EQ(registry.pick("bogus", v1::PRIORITY_BATCH, {}).status().code(), StatusCode::kNotFound);
}

TEST(RegistryTrust, ExpectedModelsStayListedAfterTheGracePeriod) {
  Registry registry(options());
  registry.expect_models({"stories"});
  auto r = registry.register_replica(test_card("127.0.0.1:1"));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(registry.deregister(r->replica_id, r->secret).ok());
  registry.expire(Clock::now() + milliseconds(5000));
  EXPECT_TRUE(registry.replicas().empty());
  EXPECT_EQ(registry.models(), std::vector<std::string>{"stories"});
  EXPECT_FALSE(registry.serving());
}

TEST(RegistryTrust, UnknownModelsAreUnavailableDuringTheRegistrationWindow) {
  RegistryOptions o = options();
  o.registration_window = milliseconds(60000);
  Registry restarted(o);
  EXPECT_EQ(restarted.pick("stories", v1::PRIORITY_BATCH, {}).status().code(),
            StatusCode::kUnavailable);
  Status status = restarted.tokenizer("stories").status();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("registering again"), std::string::npos) << status.message();
  EXPECT_GE(restarted.retry_after().count(), 59);
  EXPECT_LE(restarted.retry_after().count(), 60);
  ASSERT_TRUE(restarted.register_replica(test_card("127.0.0.1:1")).ok());
  EXPECT_TRUE(restarted.tokenizer("stories").ok());

  Registry settled(options());  // no window: unknown is unknown
  EXPECT_EQ(settled.tokenizer("stories").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(settled.retry_after().count(), 1);
}

TEST(RegistryTrust, TrafficOnTheServeStreamCountsAsLiveness) {
  Registry registry(options());
  auto r = registry.register_replica(test_card("127.0.0.1:1"));
  ASSERT_TRUE(r.ok());
  std::shared_ptr<Replica> replica = registry.replicas()[0];
  // No heartbeat for 5 intervals, but the stream delivered a message just now.
  const Clock::time_point later = Clock::now() + milliseconds(500);
  touch(*replica, later - milliseconds(50));
  registry.expire(later);
  EXPECT_TRUE(replica->live);
  registry.expire(later + milliseconds(400));
  EXPECT_FALSE(replica->live);
}

}  // namespace
}  // namespace shardwise
