// Range checks for integers read from untrusted JSON. nlohmann's parser keeps a non-negative
// integer as uint64 and a negative one as int64, and get<T>() of one outside T wraps without a
// word (2^32 + 1 read as an int is 1): every reader checks the range first, with these.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

namespace shardwise {

// Whether `value` is a JSON integer in [min, max] (a fraction or a number past uint64, which
// nlohmann parses as a double, is not).
inline bool json_integer_in(const nlohmann::json& value, int64_t min, uint64_t max) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    return v <= max && (min <= 0 || v >= static_cast<uint64_t>(min));
  }
  // Signed: what the parser makes of a negative number, and what json(int) makes of any.
  if (!value.is_number_integer()) return false;
  const int64_t v = value.get<int64_t>();
  return v >= min && (v < 0 || static_cast<uint64_t>(v) <= max);
}

// Whether `value` is a JSON integer that T holds, so that get<T>() keeps it.
template <typename T>
bool json_holds(const nlohmann::json& value) {
  return json_integer_in(value, static_cast<int64_t>(std::numeric_limits<T>::min()),
                         static_cast<uint64_t>(std::numeric_limits<T>::max()));
}

}  // namespace shardwise
