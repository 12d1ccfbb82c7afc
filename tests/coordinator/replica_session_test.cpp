// The coordinator's ReplicaSession against a real Shard service (ShardService's Serve stream
// over an EngineLoop on the fake runner) on loopback, in one process: many requests share one
// stream, each gets exactly its own tokens, and every way a request can end (finish, cancel,
// an invalid request, the listener stopping it, the stream breaking, the leader draining)
// ends it once with the right status. Then the Serve protocol's own rules, through a raw
// stream: a reused id, unknown cancels, and a client that half-closes.
#include "coordinator/replica_session.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "shard/serve/leader_service.h"
#include "tests/unit/engine/fake_model_runner.h"

namespace shardwise {
namespace {

constexpr int kVocab = 97;
using std::chrono::seconds;

// Records what the session delivers, and checks its promises: no call after on_end, one on_end.
class Recorder : public ShardRequestListener {
 public:
  explicit Recorder(int stop_after = 0) : stop_after_(stop_after) {}

  bool on_update(const v1::ShardRequestUpdate& update) override {
    std::lock_guard lock(mutex_);
    EXPECT_FALSE(ended_) << "an update after on_end";
    for (const auto& token : update.tokens()) tokens_.push_back(token.token_id());
    if (!update.finish_reason().empty()) finish_reason_ = update.finish_reason();
    return stop_after_ > 0 && static_cast<int>(tokens_.size()) >= stop_after_;
  }

  void on_end(const Status& status) override {
    {
      std::lock_guard lock(mutex_);
      EXPECT_FALSE(ended_) << "on_end twice";
      ended_ = true;
      status_ = status;
    }
    ended_cv_.notify_all();
  }

  // Waits for on_end; returns its status.
  Status wait() {
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(ended_cv_.wait_for(lock, seconds(20), [&] { return ended_; }))
        << "the request never ended";
    return status_;
  }
  // Waits until at least `n` tokens came.
  void wait_for_tokens(size_t n) {
    for (int i = 0; i < 2000; ++i) {
      {
        std::lock_guard lock(mutex_);
        if (tokens_.size() >= n) return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    FAIL() << "fewer than " << n << " tokens came";
  }
  std::vector<int32_t> tokens() {
    std::lock_guard lock(mutex_);
    return tokens_;
  }
  std::string finish_reason() {
    std::lock_guard lock(mutex_);
    return finish_reason_;
  }

 private:
  const int stop_after_;
  std::mutex mutex_;
  std::condition_variable ended_cv_;
  std::vector<int32_t> tokens_;
  std::string finish_reason_;
  bool ended_ = false;
  Status status_;
};

v1::ShardGenerateRequest greedy_request(std::vector<int32_t> prompt, int max_tokens) {
  v1::ShardGenerateRequest request;
  request.mutable_prompt_ids()->Assign(prompt.begin(), prompt.end());
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_top_p(1);
  request.mutable_sampling()->set_repetition_penalty(1);
  request.mutable_sampling()->set_max_tokens(max_tokens);
  request.mutable_sampling()->set_ignore_eos(true);
  return request;
}

class ReplicaSessionTest : public ::testing::Test {
 protected:
  ReplicaSessionTest()
      : runner_(/*num_blocks=*/512, /*block_size=*/16, kVocab, /*context=*/4096),
        loop_(runner_, engine_options()),
        service_(loop_, /*cluster_token=*/"", "instance-secret") {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    stub_ = v1::Shard::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                   grpc::InsecureChannelCredentials()));
  }
  ~ReplicaSessionTest() override {
    server_->Shutdown(std::chrono::system_clock::now());
    // The sessions go before the channel they use (ReplicaSession::wait_until_none_left).
    EXPECT_TRUE(ReplicaSession::wait_until_none_left(std::chrono::seconds(10)));
    loop_.stop();
  }

  static EngineOptions engine_options() {
    EngineOptions options;
    options.scheduler.max_num_seqs = 64;
    return options;
  }

  testing::FakeModelRunner runner_;
  EngineLoop loop_;
  ShardService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Shard::Stub> stub_;
};

TEST_F(ReplicaSessionTest, ManyRequestsShareTheStreamAndEachGetsItsOwnTokens) {
  auto session = ReplicaSession::open(*stub_, "replica-1");
  std::vector<std::shared_ptr<Recorder>> recorders;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 24; ++i) {
    prompts.push_back({1, 5 + i, 7 + 2 * i});
    recorders.push_back(std::make_shared<Recorder>());
    ASSERT_TRUE(session->start(greedy_request(prompts.back(), 20 + i), recorders.back()).ok());
  }
  for (int i = 0; i < 24; ++i) {
    EXPECT_TRUE(recorders[i]->wait().ok());
    EXPECT_EQ(recorders[i]->tokens(), testing::fake_greedy(prompts[i], 20 + i, {}, kVocab));
    EXPECT_EQ(recorders[i]->finish_reason(), "length");
  }
  EXPECT_FALSE(session->broken());
}

TEST_F(ReplicaSessionTest, CancelEndsTheRequestAtOnceAndAtTheShard) {
  auto session = ReplicaSession::open(*stub_, "replica-1");
  auto cancelled = std::make_shared<Recorder>();
  auto other = std::make_shared<Recorder>();
  StatusOr<uint64_t> id = session->start(greedy_request({1, 9}, 4000), cancelled);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(session->start(greedy_request({1, 10}, 30), other).ok());
  cancelled->wait_for_tokens(3);
  session->cancel(*id, Status(StatusCode::kCancelled, "the client went away"));
  Status status = cancelled->wait();
  EXPECT_EQ(status.code(), StatusCode::kCancelled);
  EXPECT_EQ(status.message(), "the client went away");
  EXPECT_TRUE(other->wait().ok());
  EXPECT_EQ(other->tokens().size(), 30u);
  // The engine let go of it: nothing runs once `other` is done.
  for (int i = 0; i < 200 && loop_.stats().running > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(loop_.stats().running, 0);
  session->cancel(*id, Status(StatusCode::kCancelled, "again"));  // ended: a no-op
}

TEST_F(ReplicaSessionTest, TheShardsErrorEndsOnlyThatRequest) {
  auto session = ReplicaSession::open(*stub_, "replica-1");
  auto invalid = std::make_shared<Recorder>();
  auto valid = std::make_shared<Recorder>();
  ASSERT_TRUE(session->start(greedy_request({1, kVocab + 3}, 5), invalid).ok());
  ASSERT_TRUE(session->start(greedy_request({1, 3}, 5), valid).ok());
  Status status = invalid->wait();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("vocab"), std::string::npos) << status.message();
  EXPECT_TRUE(valid->wait().ok());
  EXPECT_FALSE(session->broken());
}

TEST_F(ReplicaSessionTest, AListenerThatStopsTheRequestGetsOnEnd) {
  auto session = ReplicaSession::open(*stub_, "replica-1");
  auto stopping = std::make_shared<Recorder>(/*stop_after=*/4);
  ASSERT_TRUE(session->start(greedy_request({1, 4}, 4000), stopping).ok());
  EXPECT_EQ(stopping->wait().code(), StatusCode::kCancelled);
  EXPECT_GE(stopping->tokens().size(), 4u);
  EXPECT_LT(stopping->tokens().size(), 4000u);
}

TEST_F(ReplicaSessionTest, ClosingEndsEveryRequestAndRefusesNewOnes) {
  auto session = ReplicaSession::open(*stub_, "replica-1");
  auto a = std::make_shared<Recorder>();
  auto b = std::make_shared<Recorder>();
  ASSERT_TRUE(session->start(greedy_request({1, 4}, 4000), a).ok());
  ASSERT_TRUE(session->start(greedy_request({1, 6}, 4000), b).ok());
  a->wait_for_tokens(2);
  session->close();
  EXPECT_EQ(a->wait().code(), StatusCode::kUnavailable);
  EXPECT_EQ(b->wait().code(), StatusCode::kUnavailable);
  for (int i = 0; i < 200 && !session->broken(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(session->broken());
  EXPECT_EQ(session->start(greedy_request({1}, 3), std::make_shared<Recorder>()).status().code(),
            StatusCode::kUnavailable);
}

TEST_F(ReplicaSessionTest, ADrainingLeaderFinishesRunningRequestsAndRefusesNewOnes) {
  auto session = ReplicaSession::open(*stub_, "replica-1");
  auto running = std::make_shared<Recorder>();
  ASSERT_TRUE(session->start(greedy_request({1, 8}, 200), running).ok());
  running->wait_for_tokens(1);
  service_.drain();
  auto refused = std::make_shared<Recorder>();
  StatusOr<uint64_t> id = session->start(greedy_request({1, 2}, 5), refused);
  if (id.ok()) {  // the stream was still open: the shard refuses it
    Status status = refused->wait();
    EXPECT_EQ(status.code(), StatusCode::kUnavailable);
    EXPECT_NE(status.message().find("shutting down"), std::string::npos) << status.message();
  }
  EXPECT_TRUE(running->wait().ok());
  EXPECT_EQ(running->tokens().size(), 200u);
  // With nothing left running, the leader ends the stream.
  for (int i = 0; i < 500 && !session->broken(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(session->broken());
}

TEST_F(ReplicaSessionTest, ALeaderThatGoesAwayEndsItsRequestsUnavailable) {
  auto session = ReplicaSession::open(*stub_, "replica-1");
  auto a = std::make_shared<Recorder>();
  ASSERT_TRUE(session->start(greedy_request({1, 4}, 4000), a).ok());
  a->wait_for_tokens(2);
  server_->Shutdown(std::chrono::system_clock::now());
  Status status = a->wait();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("replica-1"), std::string::npos) << status.message();
}

// The Serve protocol as any client sees it, through a raw synchronous stream.
class ServeStreamTest : public ReplicaSessionTest {
 protected:
  using Stream = grpc::ClientReaderWriter<v1::ShardServeRequest, v1::ShardServeResponse>;

  std::unique_ptr<Stream> open_stream() {
    context_.set_deadline(std::chrono::system_clock::now() + seconds(20));
    return stub_->Serve(&context_);
  }
  static v1::ShardServeRequest start(uint64_t id, v1::ShardGenerateRequest request) {
    v1::ShardServeRequest message;
    message.set_request_id(id);
    *message.mutable_start() = std::move(request);
    return message;
  }
  // Reads until request `id` ends; returns its last update, with every token it got.
  static v1::ShardRequestUpdate read_until_end(Stream& stream, uint64_t id) {
    v1::ShardRequestUpdate all;
    v1::ShardServeResponse message;
    while (stream.Read(&message)) {
      for (const auto& update : message.updates()) {
        if (update.request_id() != id) continue;
        all.mutable_tokens()->MergeFrom(update.tokens());
        if (!update.finish_reason().empty() || update.error_code() != 0) {
          all.set_request_id(id);
          all.set_finish_reason(update.finish_reason());
          all.set_error_code(update.error_code());
          all.set_error_message(update.error_message());
          return all;
        }
      }
    }
    ADD_FAILURE() << "the stream ended before request " << id;
    return all;
  }

  grpc::ClientContext context_;
};

TEST_F(ServeStreamTest, ReusingTheIdOfARunningRequestEndsTheStream) {
  // Its answer could not be told from the running request's, so the shard ends the stream.
  auto stream = open_stream();
  ASSERT_TRUE(stream->Write(start(7, greedy_request({1, 3}, 4000))));
  ASSERT_TRUE(stream->Write(start(7, greedy_request({1, 4}, 5))));
  v1::ShardServeResponse message;
  while (stream->Read(&message)) {
  }
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("request id 7 is already running"), std::string::npos)
      << status.error_message();
  for (int i = 0; i < 500 && loop_.stats().running > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(loop_.stats().running, 0) << "the ended stream's request still runs";
}

TEST_F(ServeStreamTest, CancellingAnUnknownIdIsIgnoredAndACancelEndsTheRequest) {
  auto stream = open_stream();
  v1::ShardServeRequest cancel;
  cancel.set_request_id(99);
  cancel.set_cancel(true);
  ASSERT_TRUE(stream->Write(cancel));
  ASSERT_TRUE(stream->Write(start(1, greedy_request({1, 3}, 4000))));
  cancel.set_request_id(1);
  ASSERT_TRUE(stream->Write(cancel));
  v1::ShardRequestUpdate last = read_until_end(*stream, 1);
  EXPECT_EQ(last.error_code(), static_cast<int>(StatusCode::kCancelled));
  EXPECT_LT(last.tokens_size(), 4000);
}

TEST_F(ServeStreamTest, HalfClosingCancelsTheStreamsRequests) {
  auto stream = open_stream();
  ASSERT_TRUE(stream->Write(start(1, greedy_request({1, 3}, 4000))));
  ASSERT_TRUE(stream->Write(start(2, greedy_request({1, 5}, 4000))));
  v1::ShardServeResponse message;
  ASSERT_TRUE(stream->Read(&message));  // they are running
  ASSERT_TRUE(stream->WritesDone());
  while (stream->Read(&message)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
  for (int i = 0; i < 500 && loop_.stats().running > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(loop_.stats().running, 0) << "the engine still runs a closed stream's requests";
}

}  // namespace
}  // namespace shardwise
