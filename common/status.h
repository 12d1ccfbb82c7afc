// Errors as values at module boundaries: Status and StatusOr<T>.
// Codes follow gRPC's so the coordinator can map them onto the wire one to one.
#pragma once

#include <fmt/format.h>

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace shardwise {

enum class StatusCode {
  kOk = 0,
  kCancelled = 1,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: config.json: missing key 'hidden_size'"
  std::string to_string() const;

  // Prefixes the message with context, e.g. the file being read.
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status ok_status() { return Status(); }

// Factories: invalid_argument("token id {} outside vocabulary of {}", id, vocab).
#define SHARDWISE_STATUS_FACTORY(name, code)                                           \
  template <typename... Args>                                                          \
  Status name(fmt::format_string<Args...> format, Args&&... args) {                    \
    return Status(StatusCode::code, fmt::format(format, std::forward<Args>(args)...)); \
  }
SHARDWISE_STATUS_FACTORY(invalid_argument, kInvalidArgument)
SHARDWISE_STATUS_FACTORY(not_found, kNotFound)
SHARDWISE_STATUS_FACTORY(already_exists, kAlreadyExists)
SHARDWISE_STATUS_FACTORY(permission_denied, kPermissionDenied)
SHARDWISE_STATUS_FACTORY(out_of_range, kOutOfRange)
SHARDWISE_STATUS_FACTORY(failed_precondition, kFailedPrecondition)
SHARDWISE_STATUS_FACTORY(resource_exhausted, kResourceExhausted)
SHARDWISE_STATUS_FACTORY(unimplemented, kUnimplemented)
SHARDWISE_STATUS_FACTORY(internal_error, kInternal)
SHARDWISE_STATUS_FACTORY(unavailable, kUnavailable)
SHARDWISE_STATUS_FACTORY(data_loss, kDataLoss)
SHARDWISE_STATUS_FACTORY(unauthenticated, kUnauthenticated)
#undef SHARDWISE_STATUS_FACTORY

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : state_(std::move(value)) {}        // NOLINT: implicit by design
  StatusOr(Status status) : state_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(state_).ok() && "StatusOr needs a value or an error");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(state_);
  }
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace shardwise

#define SW_CONCAT_INNER(a, b) a##b
#define SW_CONCAT(a, b) SW_CONCAT_INNER(a, b)

#define SW_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::shardwise::Status sw_status_ = (expr); \
    if (!sw_status_.ok()) return sw_status_; \
  } while (0)

#define SW_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

// SW_ASSIGN_OR_RETURN(auto config, parse_config(path));
#define SW_ASSIGN_OR_RETURN(lhs, expr) \
  SW_ASSIGN_OR_RETURN_IMPL(SW_CONCAT(sw_statusor_, __LINE__), lhs, expr)
