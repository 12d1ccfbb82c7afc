// API-key check shared by the HTTP ("Authorization: Bearer KEY" header) and gRPC
// ("authorization: Bearer KEY" metadata) front ends.
#pragma once

#include <string>
#include <string_view>

#include "common/secret.h"

namespace shardwise {

// True when no key is configured, or `authorization` is exactly "Bearer <api_key>".
inline bool authorized(const std::string& api_key, std::string_view authorization) {
  if (api_key.empty()) return true;
  constexpr std::string_view kPrefix = "Bearer ";
  if (!authorization.starts_with(kPrefix)) return false;
  // The time taken does not reveal the matching prefix's length.
  return constant_time_equal(authorization.substr(kPrefix.size()), api_key);
}

}  // namespace shardwise
