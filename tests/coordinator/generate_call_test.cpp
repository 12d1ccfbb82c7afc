#include "coordinator/generate_call.h"

#include <gtest/gtest.h>

namespace shardwise {
namespace {

v1::GenerateResponse tokens(std::vector<int32_t> ids, std::string text) {
  v1::GenerateResponse m;
  m.mutable_token_ids()->Assign(ids.begin(), ids.end());
  m.set_text(std::move(text));
  return m;
}

TEST(Enqueue, MergesPlainTokenMessages) {
  std::deque<v1::GenerateResponse> q;
  enqueue(q, tokens({1}, "a"));
  enqueue(q, tokens({2, 3}, "bc"));
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(std::vector<int32_t>(q[0].token_ids().begin(), q[0].token_ids().end()),
            (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(q[0].text(), "abc");
}

TEST(Enqueue, ATokenWithLogprobsTravelsAlone) {
  std::deque<v1::GenerateResponse> q;
  enqueue(q, tokens({1}, "a"));
  v1::GenerateResponse with_logprob = tokens({2}, "b");
  with_logprob.set_logprob(-0.5f);
  enqueue(q, std::move(with_logprob));
  enqueue(q, tokens({3}, "c"));
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[1].token_ids(0), 2);
  EXPECT_TRUE(q[1].has_logprob());
}

TEST(Enqueue, TheLastMessageIsNotMergedIntoOrFrom) {
  std::deque<v1::GenerateResponse> q;
  enqueue(q, tokens({1}, "a"));
  v1::GenerateResponse last;
  last.set_text("!");
  last.set_finish_reason("length");
  last.mutable_usage()->set_completion_tokens(1);
  enqueue(q, std::move(last));
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].text(), "a");
  EXPECT_EQ(q[1].finish_reason(), "length");
}

}  // namespace
}  // namespace shardwise
