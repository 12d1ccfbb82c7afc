// Secrets shared by the coordinator and the shards: unguessable random strings, SHA-256
// digests, comparisons that take the same time wherever the inputs differ, and the cluster
// token, read from a file (docs/security.md).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace shardwise {

// `bytes` bytes from the operating system's cryptographic generator, as lowercase hex.
std::string random_hex(size_t bytes);
// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
// Equal strings, in a time that depends only on their lengths (not on where they differ).
bool constant_time_equal(std::string_view a, std::string_view b);

// The cluster token in `path`: its first line, without surrounding whitespace. It must be 16 to
// 4096 printable ASCII characters without spaces (it travels as gRPC metadata). An empty path
// means no token: "".
StatusOr<std::string> read_cluster_token(const std::string& path);

}  // namespace shardwise
