#include "kernels/cpu/embedding.h"

#include <cstring>

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
  cpu::embedding_lookup(out.data(), table.data(), DType::kF32, ids.data(),
                        static_cast<int>(ids.size()), hidden);
  for (std::size_t t = 0; t < ids.size(); ++t) {
    for (int i = 0; i < hidden; ++i) {
      ASSERT_EQ(out[t * hidden + i], table[ids[t] * hidden + i])
          << "token " << t << " element " << i;
    }
  }
}

// A bf16 table (as mmapped from a checkpoint, at an odd byte offset) widens exactly.
TEST(EmbeddingLookup, WidensBf16RowsAtAnyAlignment) {
  std::mt19937 rng(2);
  const int vocab = 11, hidden = 7;
  std::vector<std::byte> bytes(1 + vocab * hidden * 2);
  std::vector<uint16_t> table(vocab * hidden);
  for (auto& bits : table) bits = f32_to_bf16(std::normal_distribution<float>()(rng));
  std::memcpy(bytes.data() + 1, table.data(), table.size() * 2);
  const std::vector<int32_t> ids{10, 3};
  std::vector<float> out(ids.size() * hidden, NAN);
  cpu::embedding_lookup(out.data(), bytes.data() + 1, DType::kBF16, ids.data(), 2, hidden);
  for (std::size_t t = 0; t < ids.size(); ++t) {
    for (int i = 0; i < hidden; ++i) {
      ASSERT_EQ(out[t * hidden + i], bf16_to_f32(table[ids[t] * hidden + i])) << t << "," << i;
    }
  }
}

}  // namespace
}  // namespace shardwise
