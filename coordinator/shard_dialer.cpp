#include "coordinator/shard_dialer.h"

#include "common/cluster_auth.h"

namespace shardwise {

ShardDialer::ShardDialer(std::string cluster_token,
                         std::shared_ptr<grpc::ChannelCredentials> credentials)
    : cluster_token_(std::move(cluster_token)),
      credentials_(credentials ? std::move(credentials) : grpc::InsecureChannelCredentials()) {}

std::unique_ptr<v1::Shard::Stub> ShardDialer::stub(const std::string& address) const {
  return v1::Shard::NewStub(grpc::CreateChannel(address, credentials_));
}

void ShardDialer::authenticate(grpc::ClientContext& context) const {
  if (!cluster_token_.empty()) {
    context.AddMetadata(std::string(kClusterTokenMetadata), cluster_token_);
  }
}

StatusOr<std::string> ShardDialer::identify(const std::string& address) const {
  grpc::ClientContext context;
  authenticate(context);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::IdentifyResponse response;
  const grpc::Status status = stub(address)->Identify(&context, v1::IdentifyRequest(), &response);
  if (!status.ok()) {
    return Status(static_cast<StatusCode>(status.error_code()),
                  "Shard.Identify at " + address + ": " + status.error_message());
  }
  return response.instance_digest();
}

}  // namespace shardwise
