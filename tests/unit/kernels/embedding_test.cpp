#include "kernels/cpu/embedding.h"

#include "tests/support/test_support.h"
#include "tests/unit/kernels/random.h"

namespace shardwise {
namespace {

TEST(EmbeddingLookup, CopiesTheRowOfEachId) {
  std::mt19937 rng(1);
  const int vocab = 37, hidden = 13;
  auto table = testing::random_normal(vocab * hidden, rng);
  const std::vector<int32_t> ids{36, 0, 5, 5, 17};
  std::vector<float> out(ids.size() * hidden, NAN);
  cpu::embedding_lookup(out.data(), table.data(), ids.data(), static_cast<int>(ids.size()), hidden);
  for (std::size_t t = 0; t < ids.size(); ++t) {
    for (int i = 0; i < hidden; ++i) {
      ASSERT_EQ(out[t * hidden + i], table[ids[t] * hidden + i])
          << "token " << t << " element " << i;
    }
  }
}

}  // namespace
}  // namespace shardwise
