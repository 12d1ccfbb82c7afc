#include "tokenizer/stop_strings.h"

#include <gtest/gtest.h>

namespace shardwise {
namespace {

std::string feed(StopStringMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  return out + m.flush();
}

TEST(StopStrings, NoStopsPassesEverythingAtOnce) {
  StopStringMatcher m({});
  EXPECT_EQ(m.push("hello"), "hello");
  EXPECT_FALSE(m.matched());
}

TEST(StopStrings, CutsBeforeAMatchSplitAcrossPieces) {
  StopStringMatcher m({"END"});
  EXPECT_EQ(m.push("abc E"), "abc ");  // "E" may begin "END": held back
  EXPECT_EQ(m.push("N"), "");
  EXPECT_EQ(m.push("D and more"), "");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, ReleasesAHeldPrefixThatDidNotMatch) {
  StopStringMatcher m({"END"});
  EXPECT_EQ(feed(m, {"a E", "Nx", "y"}), "a ENxy");
  EXPECT_FALSE(m.matched());
}

TEST(StopStrings, EarliestOfSeveralStopsWins) {
  StopStringMatcher m({"world", "o w"});
  EXPECT_EQ(feed(m, {"hello world"}), "hell");
}

TEST(StopStrings, HeldTextIsReleasedAtFlush) {
  StopStringMatcher m({"\n\n"});
  EXPECT_EQ(m.push("line\n"), "line");
  EXPECT_EQ(m.flush(), "\n");
}

}  // namespace
}  // namespace shardwise
