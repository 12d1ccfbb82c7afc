// HOST:PORT addresses as the command lines take them, and the two socket questions a server
// asks at start-up: can anything listen here, and at which of this host's addresses does a
// peer reach it.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace shardwise {

struct HostPort {
  std::string host;  // "127.0.0.1", "0.0.0.0", "node7", "::1" (no brackets)
  int port = 0;      // -1: none given (only from parse_host_optional_port)

  std::string to_string() const;  // "node7:50061", "[::1]:50061"
};

// "HOST:PORT" or "[IPV6]:PORT", PORT in [0, 65535]. INVALID_ARGUMENT names `what` (a flag).
StatusOr<HostPort> parse_host_port(std::string_view address, std::string_view what);
// The same, where the port may be left out ("HOST", "[IPV6]"): port -1 then.
StatusOr<HostPort> parse_host_optional_port(std::string_view address, std::string_view what);

// 0.0.0.0, :: or *: every interface of this host.
bool is_wildcard_host(std::string_view host);

// OK when a TCP listener could bind `address` now (the probe's socket is closed again), else
// UNAVAILABLE saying why, e.g. "127.0.0.1:8000: address already in use".
Status probe_listen(const HostPort& address);

// Why a server failed to listen on `address` ("HOST:PORT"; the libraries say it only in their
// own logs): "127.0.0.1:8000: address already in use", or just `address` when the probe
// finds nothing wrong or cannot parse it.
std::string why_cannot_listen(std::string_view address);

// This host's address on the interface that routes to `peer`: a UDP connect() (which sends
// nothing) and getsockname(). UNAVAILABLE when `peer` does not resolve or has no route.
StatusOr<std::string> local_address_toward(const HostPort& peer);

}  // namespace shardwise
