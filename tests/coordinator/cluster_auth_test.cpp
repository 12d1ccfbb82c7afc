// The cluster credential over real gRPC on loopback, in one process (issue 15): a shard leader's
// Shard service (on the fake runner) and the coordinator's Registry service, both given a
// cluster token. Strangers' Serve, Identify, Register, Heartbeat and Deregister are refused;
// the same calls with the token are served; a registration's secret guards its heartbeats; a
// Register at the live leader's address is refused unless the caller is that leader; and the
// shard's Registrar registers, heartbeats and deregisters with the token. Then the pure parts:
// loopback peers, the token file, the secret helpers.
#include "common/cluster_auth.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <optional>

#include "common/secret.h"
#include "coordinator/grpc_services.h"
#include "shard/serve/leader_service.h"
#include "tests/coordinator/test_cards.h"
#include "tests/unit/engine/fake_model_runner.h"

namespace shardwise {
namespace {

constexpr char kToken[] = "cluster-token-for-tests-0123456789";
constexpr char kInstanceSecret[] = "the-leader-instance-secret";

class ClusterAuthTest : public ::testing::Test {
 protected:
  ClusterAuthTest()
      : runner_(/*num_blocks=*/64, /*block_size=*/16, /*vocab=*/97, /*context=*/512),
        loop_(runner_, EngineOptions{}),
        shard_service_(loop_, kToken, kInstanceSecret),
        registry_(registry_options(), std::make_shared<const ShardDialer>(kToken)),
        registry_service_(registry_, kToken) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&shard_service_);
    builder.RegisterService(&registry_service_);
    server_ = builder.BuildAndStart();
    address_ = "127.0.0.1:" + std::to_string(port);
    auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    shard_ = v1::Shard::NewStub(channel);
    registry_stub_ = v1::Registry::NewStub(channel);
  }
  ~ClusterAuthTest() override {
    server_->Shutdown(std::chrono::system_clock::now());
    // The sessions go before the channel they use (ReplicaSession::wait_until_none_left).
    EXPECT_TRUE(ReplicaSession::wait_until_none_left(std::chrono::seconds(10)));
    loop_.stop();
  }

  static RegistryOptions registry_options() {
    RegistryOptions o;
    o.heartbeat_interval = std::chrono::milliseconds(50);
    return o;
  }
  // A call context presenting `token` (none when empty).
  static std::unique_ptr<grpc::ClientContext> context(const std::string& token) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) c->AddMetadata(std::string(kClusterTokenMetadata), token);
    return c;
  }
  v1::ModelCard card(const std::string& instance_secret) const {
    v1::ModelCard c = test_card(address_);
    c.set_instance_secret(instance_secret);
    return c;
  }
  // Greedy, `max_tokens` tokens after token 1.
  static v1::ShardGenerateRequest tiny_request(int max_tokens) {
    v1::ShardGenerateRequest request;
    request.add_prompt_ids(1);
    request.mutable_sampling()->set_top_p(1);
    request.mutable_sampling()->set_repetition_penalty(1);
    request.mutable_sampling()->set_max_tokens(max_tokens);
    request.mutable_sampling()->set_ignore_eos(true);
    return request;
  }
  grpc::Status serve_one(const std::string& token) {
    auto c = context(token);
    auto stream = shard_->Serve(c.get());
    v1::ShardServeRequest start;
    start.set_request_id(1);
    *start.mutable_start() = tiny_request(3);
    stream->Write(start);
    v1::ShardServeResponse response;
    int tokens = 0;
    bool finished = false;
    while (!finished && stream->Read(&response)) {
      for (const auto& update : response.updates()) {
        tokens += update.tokens_size();
        finished |= !update.finish_reason().empty();
      }
    }
    stream->WritesDone();  // only now: half-closing cancels the stream's requests
    while (stream->Read(&response)) {
    }
    grpc::Status status = stream->Finish();
    if (status.ok()) {
      EXPECT_EQ(tokens, 3);
    }
    return status;
  }

  testing::FakeModelRunner runner_;
  EngineLoop loop_;
  ShardService shard_service_;
  Registry registry_;
  RegistryService registry_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::unique_ptr<v1::Shard::Stub> shard_;
  std::unique_ptr<v1::Registry::Stub> registry_stub_;
};

TEST_F(ClusterAuthTest, TheShardServesOnlyCallersWithTheToken) {
  EXPECT_EQ(serve_one("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(serve_one("wrong-token-wrong-token").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(serve_one(kToken).ok());

  v1::IdentifyResponse identity;
  EXPECT_EQ(shard_->Identify(context("").get(), {}, &identity).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(identity.instance_digest().empty());
  ASSERT_TRUE(shard_->Identify(context(kToken).get(), {}, &identity).ok());
  EXPECT_EQ(identity.instance_digest(), sha256_hex(kInstanceSecret));
}

// Records how a request ended.
struct EndListener : ShardRequestListener {
  bool on_update(const v1::ShardRequestUpdate&) override { return false; }
  void on_end(const Status& s) override {
    std::lock_guard lock(mutex);
    status = s;
    ended = true;
    cv.notify_all();
  }
  // The end status, or nullopt when it did not end within 10 s.
  std::optional<Status> wait_for_end() {
    std::unique_lock lock(mutex);
    if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return ended; })) return std::nullopt;
    return status;
  }
  std::mutex mutex;
  std::condition_variable cv;
  bool ended = false;
  Status status;
};

TEST_F(ClusterAuthTest, TheCoordinatorsSessionPresentsTheToken) {
  ShardDialer dialer(kToken);
  std::shared_ptr<std::atomic<int64_t>> last_seen = std::make_shared<std::atomic<int64_t>>(0);
  auto session = ReplicaSession::open(*shard_, "replica", {&dialer, last_seen});
  auto listener = std::make_shared<EndListener>();
  ASSERT_TRUE(session->start(tiny_request(4), listener).ok());
  std::optional<Status> status = listener->wait_for_end();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->ok()) << status->to_string();
  // Each message from the shard was a sign of life.
  EXPECT_GT(last_seen->load(), 0);
}

// A registry going away ends its replicas' streams and is gone only once their sessions are:
// they hold the channels of its replicas, which must not be let go of last on a gRPC callback
// thread (ReplicaSession::wait_until_none_left).
TEST_F(ClusterAuthTest, ARegistryOutlivesItsReplicasSessions) {
  {
    Registry registry(registry_options(), std::make_shared<const ShardDialer>(kToken));
    ASSERT_TRUE(registry.register_replica(card(kInstanceSecret)).ok());
    // A request served over the replica's stream, which stays open after it.
    auto listener = std::make_shared<EndListener>();
    ASSERT_TRUE(registry.replicas().at(0)->session()->start(tiny_request(4), listener).ok());
    std::optional<Status> status = listener->wait_for_end();
    ASSERT_TRUE(status.has_value());
    ASSERT_TRUE(status->ok()) << status->to_string();
  }
  EXPECT_TRUE(ReplicaSession::wait_until_none_left(std::chrono::milliseconds(0)))
      << "a session outlived its registry";
}

TEST_F(ClusterAuthTest, TheRegistryServesOnlyCallersWithTheToken) {
  v1::RegisterResponse registered;
  EXPECT_EQ(
      registry_stub_->Register(context("").get(), card(kInstanceSecret), &registered).error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(
      registry_stub_
          ->Register(context("not-the-token-at-all").get(), card(kInstanceSecret), &registered)
          .error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(registry_.replicas().empty()) << "a stranger registered a replica";
  ASSERT_TRUE(
      registry_stub_->Register(context(kToken).get(), card(kInstanceSecret), &registered).ok());
  EXPECT_EQ(registered.registration_secret().size(), 64u);

  v1::HeartbeatRequest beat;
  beat.set_replica_id(registered.replica_id());
  beat.set_registration_secret(registered.registration_secret());
  v1::HeartbeatResponse beat_response;
  EXPECT_EQ(registry_stub_->Heartbeat(context("").get(), beat, &beat_response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::DeregisterRequest leave;
  leave.set_replica_id(registered.replica_id());
  leave.set_registration_secret(registered.registration_secret());
  v1::DeregisterResponse leave_response;
  EXPECT_EQ(registry_stub_->Deregister(context("").get(), leave, &leave_response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // With the token but not the registration's secret: still no.
  v1::DeregisterRequest hijack = leave;
  hijack.set_registration_secret("guess");
  EXPECT_EQ(registry_stub_->Deregister(context(kToken).get(), hijack, &leave_response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(registry_.serving());
  EXPECT_TRUE(registry_stub_->Heartbeat(context(kToken).get(), beat, &beat_response).ok());
  EXPECT_TRUE(registry_stub_->Deregister(context(kToken).get(), leave, &leave_response).ok());
  EXPECT_FALSE(registry_.serving());
}

TEST_F(ClusterAuthTest, OnlyTheLeaderListeningThereMayTakeOverItsLiveAddress) {
  v1::RegisterResponse real;
  ASSERT_TRUE(registry_stub_->Register(context(kToken).get(), card(kInstanceSecret), &real).ok());
  // A fake replica claims the live leader's address to take its traffic: the coordinator asks
  // the process listening there (Shard.Identify, with the token) and it is someone else.
  v1::RegisterResponse fake;
  grpc::Status status = registry_stub_->Register(context(kToken).get(), card("fake"), &fake);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();
  ASSERT_EQ(registry_.replicas().size(), 1u);
  EXPECT_EQ(registry_.replicas()[0]->id, real.replica_id());
  // The leader itself registering again (it restarted its registration) is fine.
  v1::RegisterResponse again;
  EXPECT_TRUE(registry_stub_->Register(context(kToken).get(), card(kInstanceSecret), &again).ok());
  EXPECT_EQ(registry_.replicas().size(), 1u);
}

TEST_F(ClusterAuthTest, TheRegistrarRegistersHeartbeatsAndDeregistersWithTheToken) {
  {
    Registrar registrar(address_, grpc::InsecureChannelCredentials(), kToken, card(kInstanceSecret),
                        loop_);
    for (int i = 0; i < 500 && !registry_.serving(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(registry_.serving());
    // Heartbeats keep it in rotation across many expiry ticks (3 intervals = 150 ms).
    for (int i = 0; i < 10; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      registry_.expire(std::chrono::steady_clock::now());
    }
    EXPECT_TRUE(registry_.serving());
  }
  EXPECT_FALSE(registry_.serving()) << "the Registrar did not deregister";
  {
    Registrar stranger(address_, grpc::InsecureChannelCredentials(), "a-wrong-cluster-token",
                       card("stranger-secret"), loop_);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(registry_.replicas().size(), 1u) << "a Registrar with a wrong token registered";
}

TEST(ClusterAuth, WithoutATokenOnlyLoopbackCallersAreServed) {
  for (const char* peer : {"ipv4:127.0.0.1:5000", "ipv4:127.3.2.1:1", "ipv6:[::1]:5000",
                           "ipv6:%5B::1%5D:5000", "ipv6:[::ffff:127.0.0.1]:80", "unix:/tmp/s"}) {
    EXPECT_TRUE(is_loopback_peer(peer)) << peer;
    EXPECT_TRUE(check_cluster_caller("", std::nullopt, peer).ok()) << peer;
  }
  for (const char* peer : {"ipv4:10.0.0.7:5000", "ipv4:128.0.0.1:1", "ipv6:[::2]:1",
                           "ipv6:[fe80::1]:1", "ipv6:[::ffff:10.0.0.1]:1", "", "ipv4:1127.0.0.1"}) {
    EXPECT_FALSE(is_loopback_peer(peer)) << peer;
    Status status = check_cluster_caller("", std::nullopt, peer);
    EXPECT_EQ(status.code(), StatusCode::kUnauthenticated) << peer;
    EXPECT_NE(status.message().find("--cluster-token-file"), std::string::npos);
  }
  // With a token, loopback is no excuse.
  EXPECT_EQ(check_cluster_caller(kToken, std::nullopt, "ipv4:127.0.0.1:1").code(),
            StatusCode::kUnauthenticated);
  EXPECT_EQ(check_cluster_caller(kToken, "x", "ipv4:127.0.0.1:1").code(),
            StatusCode::kUnauthenticated);
  EXPECT_TRUE(check_cluster_caller(kToken, kToken, "ipv4:10.0.0.7:1").ok());
}

TEST(ClusterAuth, TheTokenFileMustHoldALongPrintableSecret) {
  const std::string path = ::testing::TempDir() + "/cluster_token";
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write("  a-long-enough-cluster-secret \n second line ignored\n");
  StatusOr<std::string> token = read_cluster_token(path);
  ASSERT_TRUE(token.ok()) << token.status().to_string();
  EXPECT_EQ(*token, "a-long-enough-cluster-secret");
  write("short\n");
  EXPECT_EQ(read_cluster_token(path).status().code(), StatusCode::kInvalidArgument);
  write("has a space in the middle of it\n");
  EXPECT_EQ(read_cluster_token(path).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read_cluster_token(path + ".missing").status().code(), StatusCode::kNotFound);
}

TEST(ClusterAuth, SecretHelpers) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string a = random_hex(16), b = random_hex(16);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_TRUE(constant_time_equal("same", "same"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal("same", "samE"));
  EXPECT_FALSE(constant_time_equal("same", "same+"));
}

}  // namespace
}  // namespace shardwise
