// common/json_integer.h at the edges of each range: nlohmann's two integer kinds (uint64 for
// non-negative, int64 for negative), doubles, and values that are not numbers.
#include "common/json_integer.h"

#include <gtest/gtest.h>

namespace shardwise {
namespace {

using nlohmann::json;

// json(int) makes a signed integer even of a positive value; the parser an unsigned one.
TEST(JsonInteger, BoundsAreInclusive) {
  EXPECT_FALSE(json_integer_in(json(0), 1, 10));
  EXPECT_TRUE(json_integer_in(json(1), 1, 10));
  EXPECT_TRUE(json_integer_in(json(10), 1, 10));
  EXPECT_FALSE(json_integer_in(json(11), 1, 10));
  EXPECT_FALSE(json_integer_in(json(-1), 1, 10));
  EXPECT_TRUE(json_integer_in(json(-5), -5, 0));
  EXPECT_FALSE(json_integer_in(json(-6), -5, 0));
  EXPECT_TRUE(json_integer_in(json::parse("10"), 1, 10));
  EXPECT_FALSE(json_integer_in(json::parse("11"), 1, 10));
  EXPECT_FALSE(json_integer_in(json::parse("0"), 1, 10));
}

TEST(JsonInteger, HoldsEachTypesWholeRangeAndNothingPast) {
  EXPECT_TRUE(json_holds<int32_t>(json::parse("2147483647")));
  EXPECT_FALSE(json_holds<int32_t>(json::parse("2147483648")));
  EXPECT_TRUE(json_holds<int32_t>(json::parse("-2147483648")));
  EXPECT_FALSE(json_holds<int32_t>(json::parse("-2147483649")));
  EXPECT_FALSE(json_holds<int32_t>(json::parse("4294967297")));  // get<int32_t>() gives 1
  EXPECT_TRUE(json_holds<uint64_t>(json::parse("18446744073709551615")));
  EXPECT_FALSE(json_holds<uint64_t>(json::parse("-1")));
  EXPECT_FALSE(json_holds<std::size_t>(json::parse("-1")));
  EXPECT_TRUE(json_holds<int64_t>(json::parse("-9223372036854775808")));
  EXPECT_FALSE(json_holds<int64_t>(json::parse("9223372036854775808")));
}

TEST(JsonInteger, OnlyIntegersCount) {
  // Past uint64 the parser makes a double: the fuzzer's Strip "stop" (docs/reliability.md).
  EXPECT_FALSE(json_holds<std::size_t>(json::parse("92233720368547758080")));
  EXPECT_FALSE(json_holds<int>(json::parse("1.0")));
  EXPECT_FALSE(json_holds<int>(json::parse("1.5")));
  EXPECT_FALSE(json_holds<int>(json::parse("true")));
  EXPECT_FALSE(json_holds<int>(json::parse("\"1\"")));
  EXPECT_FALSE(json_holds<int>(json::parse("null")));
}

}  // namespace
}  // namespace shardwise
