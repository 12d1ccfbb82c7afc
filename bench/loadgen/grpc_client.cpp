// The gRPC client: one ClientReadReactor per request, all on one channel (HTTP/2 multiplexes
// the streams); each message is timed on the gRPC thread that delivers it.
#include <grpcpp/grpcpp.h>

#include "bench/loadgen/client.h"
#include "shardwise/v1/inference.grpc.pb.h"

namespace shardwise::loadgen {
namespace {

std::string grpc_code_name(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i < static_cast<int>(std::size(kNames)) ? kNames[i] : std::to_string(i);
}

v1::GenerateRequest to_proto(const RequestSpec& spec, const ClientOptions& o) {
  v1::GenerateRequest request;
  request.set_model(o.model);
  if (!spec.prompt_ids.empty()) {
    request.mutable_token_ids()->mutable_ids()->Add(spec.prompt_ids.begin(), spec.prompt_ids.end());
  } else if (!spec.messages.empty()) {
    for (const ChatTurn& turn : spec.messages) {
      v1::ChatMessage* m = request.mutable_chat()->add_messages();
      m->set_role(turn.role);
      m->set_content(turn.content);
    }
  } else {
    request.set_text(spec.prompt_text);
  }
  v1::SamplingParams* s = request.mutable_sampling();
  s->set_temperature(static_cast<float>(o.temperature));
  s->set_max_tokens(spec.max_tokens);
  s->set_ignore_eos(spec.ignore_eos);
  s->set_seed(static_cast<uint64_t>(spec.index));
  return request;
}

// Deletes itself in OnDone, after handing the result to `done`.
class GenerateReactor final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  GenerateReactor(v1::Inference::Stub& stub, const ClientOptions& o, const RequestSpec& spec,
                  Clock::time_point zero, DoneFn done)
      : request_(to_proto(spec, o)), recorder_(spec, zero), done_(std::move(done)) {
    context_.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::microseconds(static_cast<int64_t>(o.request_timeout_s * 1e6)));
    if (!o.api_key.empty()) context_.AddMetadata("authorization", "Bearer " + o.api_key);
    stub.async()->Generate(&context_, &request_, this);
    recorder_.sent();
    StartRead(&message_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    recorder_.received(message_.token_ids_size());
    if (!message_.finish_reason().empty()) {
      finish_reason_ = message_.finish_reason();
      if (message_.has_usage()) {
        prompt_tokens_ = message_.usage().prompt_tokens();
        completion_tokens_ = message_.usage().completion_tokens();
      }
    }
    StartRead(&message_);
  }

  void OnDone(const grpc::Status& status) override {
    RequestResult result;
    if (!status.ok()) {
      result = recorder_.fail(grpc_code_name(status.error_code()) + ": " + status.error_message());
    } else if (finish_reason_.empty()) {
      result = recorder_.fail("INTERNAL: the stream ended without a finish reason");
    } else {
      result = recorder_.finish(finish_reason_, prompt_tokens_, completion_tokens_);
    }
    DoneFn done = std::move(done_);
    delete this;
    done(std::move(result));
  }

 private:
  grpc::ClientContext context_;
  v1::GenerateRequest request_;
  v1::GenerateResponse message_;
  ResultRecorder recorder_;
  DoneFn done_;
  std::string finish_reason_;
  int prompt_tokens_ = -1, completion_tokens_ = -1;
};

class GrpcClient final : public Client {
 public:
  GrpcClient(ClientOptions options, std::shared_ptr<grpc::Channel> channel, Clock::time_point zero)
      : options_(std::move(options)), stub_(v1::Inference::NewStub(channel)), zero_(zero) {}

  void start(const RequestSpec& spec, DoneFn done) override {
    new GenerateReactor(*stub_, options_, spec, zero_, std::move(done));
  }

 private:
  const ClientOptions options_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  const Clock::time_point zero_;
};

}  // namespace

StatusOr<std::unique_ptr<Client>> make_grpc_client(const ClientOptions& options,
                                                   Clock::time_point zero) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (options.grpc_tls || !options.tls_ca_file.empty()) {
    grpc::SslCredentialsOptions tls;
    if (!options.tls_ca_file.empty()) {
      SW_ASSIGN_OR_RETURN(tls.pem_root_certs, read_text_file(options.tls_ca_file));
    }
    credentials = grpc::SslCredentials(tls);
  }
  auto channel = grpc::CreateChannel(options.grpc_address, credentials);
  return std::unique_ptr<Client>(std::make_unique<GrpcClient>(options, channel, zero));
}

}  // namespace shardwise::loadgen
