// Who may call the cluster's internal APIs (Registry.* on the coordinator, Shard.* on the shard
// leaders): with a cluster token configured, callers that present it as the metadata below;
// without one, callers on this host only (loopback), so that an unconfigured cluster is not open
// to the network. Pure string logic: each server reads the metadata and peer from its gRPC
// context. See docs/security.md.
#pragma once

#include <optional>
#include <string_view>

#include "common/status.h"

namespace shardwise {

inline constexpr std::string_view kClusterTokenMetadata = "shardwise-cluster-token";

// True for a gRPC peer on this host: "ipv4:127.x.x.x:PORT", "ipv6:[::1]:PORT" (brackets
// possibly percent-encoded), an IPv4-mapped loopback address, or a Unix socket.
bool is_loopback_peer(std::string_view peer);

// OK when the caller may use the cluster's internal APIs; UNAUTHENTICATED otherwise, saying
// why. `token`: the configured token (empty: none). `presented`: the caller's metadata value.
Status check_cluster_caller(std::string_view token, std::optional<std::string_view> presented,
                            std::string_view peer);

}  // namespace shardwise
