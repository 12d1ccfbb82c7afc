// How the coordinator reaches shard leaders: the channel credentials of their Shard service
// and the cluster token it presents on every call (docs/security.md).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/status.h"
#include "shardwise/v1/shard.grpc.pb.h"

namespace shardwise {

class ShardDialer {
 public:
  // No token: the shards must be on this host (they serve loopback callers only without one).
  explicit ShardDialer(std::string cluster_token = "",
                       std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  virtual ~ShardDialer() = default;

  std::unique_ptr<v1::Shard::Stub> stub(const std::string& address) const;
  // Adds the cluster token to a call's metadata.
  void authenticate(grpc::ClientContext& context) const;
  // The instance digest of the leader listening at `address` (Shard.Identify), within 2 s.
  virtual StatusOr<std::string> identify(const std::string& address) const;

 private:
  std::string cluster_token_;
  std::shared_ptr<grpc::ChannelCredentials> credentials_;
};

}  // namespace shardwise
