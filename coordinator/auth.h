// API-key check shared by the HTTP ("Authorization: Bearer KEY" header) and gRPC
// ("authorization: Bearer KEY" metadata) front ends.
#pragma once

#include <string>
#include <string_view>

namespace shardwise {

// True when no key is configured, or `authorization` is exactly "Bearer <api_key>".
inline bool authorized(const std::string& api_key, std::string_view authorization) {
  if (api_key.empty()) return true;
  constexpr std::string_view kPrefix = "Bearer ";
  if (!authorization.starts_with(kPrefix)) return false;
  const std::string_view given = authorization.substr(kPrefix.size());
  // Compare every byte so the time taken does not reveal the matching prefix's length.
  unsigned diff = given.size() != api_key.size();
  for (size_t i = 0; i < given.size(); ++i) diff |= given[i] ^ api_key[i % api_key.size()];
  return diff == 0;
}

}  // namespace shardwise
