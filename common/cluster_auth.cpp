#include "common/cluster_auth.h"

#include "common/secret.h"

namespace shardwise {

bool is_loopback_peer(std::string_view peer) {
  if (peer.starts_with("unix:")) return true;
  if (peer.starts_with("ipv4:")) return peer.substr(5).starts_with("127.");
  if (!peer.starts_with("ipv6:")) return false;
  std::string_view address = peer.substr(5);
  if (address.starts_with("%5B") || address.starts_with("%5b")) {
    address.remove_prefix(3);
  } else if (address.starts_with("[")) {
    address.remove_prefix(1);
  } else {
    return false;
  }
  return address.starts_with("::1]") || address.starts_with("::1%5") ||
         address.starts_with("::ffff:127.");
}

Status check_cluster_caller(std::string_view token, std::optional<std::string_view> presented,
                            std::string_view peer) {
  if (token.empty()) {
    if (is_loopback_peer(peer)) return ok_status();
    return unauthenticated(
        "this process has no cluster token (--cluster-token-file), so it serves its internal "
        "API to callers on its own host only; {} is not",
        peer);
  }
  if (!presented)
    return unauthenticated("the cluster token is required ({})", kClusterTokenMetadata);
  if (!constant_time_equal(*presented, token)) return unauthenticated("wrong cluster token");
  return ok_status();
}

}  // namespace shardwise
