#include "common/status.h"

#include <gtest/gtest.h>

namespace shardwise {
namespace {

StatusOr<int> parse_positive(int value) {
  if (value <= 0) return invalid_argument("{} is not positive", value);
  return value;
}

Status doubled(int value, int* out) {
  SW_ASSIGN_OR_RETURN(int parsed, parse_positive(value));
  *out = 2 * parsed;
  return ok_status();
}

TEST(Status, CarriesCodeAndMessageThroughMacros) {
  int out = 0;
  EXPECT_TRUE(doubled(4, &out).ok());
  EXPECT_EQ(out, 8);
  Status error = doubled(-1, &out);
  EXPECT_EQ(error.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(error.to_string(), "INVALID_ARGUMENT: -1 is not positive");
  EXPECT_EQ(error.with_context("config.json").message(), "config.json: -1 is not positive");
}

}  // namespace
}  // namespace shardwise
