// launch_sample: greedy rows against argmax (ties to the lowest id), reproducibility per
// (seed, offset), and the sampled distribution against the kept set and renormalised
// probabilities that shard/engine/sampler.cpp defines (top_k, then min_p, then top_p).
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "kernels/cuda/sampling.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/gpu/kernel_test_util.h"

namespace shardwise {
namespace {

using cuda::SamplingRow;
using testing::DeviceBuffer;

// Samples one token per row; rows[r] applies to logits row r (or to row 0 when shared).
std::vector<int32_t> sample(const std::vector<float>& logits, int vocab,
                            const std::vector<SamplingRow>& rows) {
  const int n_rows = static_cast<int>(rows.size());
  std::vector<float> all = logits;
  if (all.size() == static_cast<std::size_t>(vocab)) {  // one row of logits for every row
    all.resize(static_cast<std::size_t>(n_rows) * vocab);
    for (int r = 1; r < n_rows; ++r) std::copy_n(logits.begin(), vocab, all.begin() + r * vocab);
  }
  DeviceBuffer<float> d_logits(all);
  DeviceBuffer<SamplingRow> d_rows(rows);
  DeviceBuffer<int32_t> d_tokens(rows.size());
  DeviceBuffer<char> workspace(
      std::max<std::size_t>(1, cuda::sample_workspace_bytes(n_rows, vocab)));
  cuda::launch_sample(d_tokens.get(), d_logits.get(), d_rows.get(), n_rows, vocab, workspace.get(),
                      nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  return d_tokens.to_host();
}

// As shard::argmax: the lowest index of the largest value.
int32_t cpu_argmax(const float* row, int vocab) {
  return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
}

// The kept tokens and their renormalised probabilities, as shard/engine/sampler.cpp's pick()
// computes them (in double).
std::map<int32_t, double> expected_distribution(const std::vector<float>& logits,
                                                const SamplingRow& row) {
  const int vocab = static_cast<int>(logits.size());
  int keep = row.top_k > 0 ? std::min(row.top_k, vocab) : vocab;
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::vector<double> probs(keep);
  double total = 0;
  for (int i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[order[i]] - logits[order[0]]) / row.temperature);
    total += probs[i];
  }
  if (row.min_p > 0.0f) {
    int kept = 1;
    while (kept < keep && probs[kept] >= row.min_p * probs[0]) ++kept;
    for (int i = kept; i < keep; ++i) total -= probs[i];
    keep = kept;
  }
  if (row.top_p < 1.0f) {
    double cumulative = 0;
    for (int i = 0; i < keep; ++i) {
      cumulative += probs[i] / total;
      if (cumulative >= row.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  total = std::accumulate(probs.begin(), probs.begin() + keep, 0.0);
  std::map<int32_t, double> distribution;
  for (int i = 0; i < keep; ++i) distribution[order[i]] = probs[i] / total;
  return distribution;
}

std::vector<float> random_logits(int vocab, std::mt19937& rng, float stddev = 2.0f) {
  return testing::normal_vector(vocab, rng, 0.0f, stddev);
}

TEST(SamplingGpuTest, GreedyIsArgmaxWithLowestIdOnTies) {
  SKIP_WITHOUT_GPU();
  for (const int vocab : {1, 50, 1000, 128256, 128257}) {
    SCOPED_TRACE(::testing::Message() << "vocab " << vocab);
    std::mt19937 rng(vocab);
    const int n_rows = 6;
    std::vector<float> logits(static_cast<std::size_t>(n_rows) * vocab);
    for (auto& v : logits) v = std::normal_distribution<float>(0, 3)(rng);
    auto row = [&](int r) { return logits.data() + static_cast<std::size_t>(r) * vocab; };
    // Row 1: the maximum three times; row 2: at the last id; row 3: all equal; row 4: -inf
    // everywhere but one; row 5: random.
    if (vocab > 3) {
      row(1)[vocab - 1] = row(1)[vocab / 2] = row(1)[2] = 100.0f;
      row(2)[vocab - 1] = 100.0f;
    }
    std::fill(row(3), row(3) + vocab, 1.5f);
    std::fill(row(4), row(4) + vocab, -INFINITY);
    row(4)[vocab / 3] = -5.0f;
    std::vector<SamplingRow> greedy(n_rows);
    std::vector<SamplingRow> top_k_1(n_rows, SamplingRow{.temperature = 1.0f, .top_k = 1});
    const auto tokens = sample(logits, vocab, greedy);
    const auto tokens_k1 = sample(logits, vocab, top_k_1);
    for (int r = 0; r < n_rows; ++r) {
      EXPECT_EQ(tokens[r], cpu_argmax(row(r), vocab)) << "row " << r;
      EXPECT_EQ(tokens_k1[r], cpu_argmax(row(r), vocab)) << "top_k=1, row " << r;
    }
  }
}

TEST(SamplingGpuTest, SameSeedAndOffsetSameTokenAnywhereInTheBatch) {
  SKIP_WITHOUT_GPU();
  const int vocab = 128256;
  std::mt19937 rng(3);
  const auto logits = random_logits(vocab, rng, 1.0f);
  // Rows 0..63: offsets 0..63 of one seed; rows 64..127: the same, in reverse row order.
  std::vector<SamplingRow> rows;
  for (int i = 0; i < 128; ++i) {
    const int offset = i < 64 ? i : 127 - i;
    rows.push_back({.temperature = 1.0f, .top_p = 0.95f, .seed = 1234, .offset = uint64_t(offset)});
  }
  const auto tokens = sample(logits, vocab, rows);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(tokens[i], tokens[127 - i]) << "offset " << i;
  // A fairly flat distribution over 128k tokens: 64 offsets give many different tokens.
  EXPECT_GT(std::set<int32_t>(tokens.begin(), tokens.begin() + 64).size(), 40u);
  // And again in a new launch: the same tokens.
  EXPECT_EQ(sample(logits, vocab, rows), tokens);
  // Another seed: other tokens.
  for (auto& row : rows) row.seed = 99;
  const auto other = sample(logits, vocab, rows);
  int same = 0;
  for (int i = 0; i < 64; ++i) same += other[i] == tokens[i];
  EXPECT_LT(same, 10);
}

struct DistributionCase {
  const char* name;
  SamplingRow row;
};

// Over many draws (offsets 0..N-1) of one row of a small vocabulary: every token lies in the
// kept set, and the frequencies fit the renormalised probabilities.
void expect_distribution(const std::vector<float>& logits, const SamplingRow& params, int draws) {
  const int vocab = static_cast<int>(logits.size());
  std::vector<SamplingRow> rows(draws, params);
  for (int i = 0; i < draws; ++i) rows[i].offset = i;
  const auto tokens = sample(logits, vocab, rows);
  const auto expected = expected_distribution(logits, params);
  std::map<int32_t, int> counts;
  for (int32_t token : tokens) {
    ASSERT_TRUE(expected.count(token)) << "token " << token << " is outside the kept set";
    ++counts[token];
  }
  // Pearson's chi-square over the kept tokens, pooling those expected fewer than 5 times.
  // Under the right distribution it has mean df and standard deviation sqrt(2 df); the bound
  // df + 6 sqrt(2 df) + 10 is passed with probability > 1 - 1e-6, while a 10% error in one
  // probability of 0.1 at 40000 draws adds about 40 to the statistic.
  double chi2 = 0, pooled_expected = 0, pooled_observed = 0;
  int bins = 0;
  for (const auto& [token, p] : expected) {
    const double e = p * draws;
    if (e < 5) {
      pooled_expected += e;
      pooled_observed += counts[token];
      continue;
    }
    chi2 += (counts[token] - e) * (counts[token] - e) / e;
    ++bins;
  }
  if (pooled_expected > 0) {
    chi2 += (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) /
            std::max(pooled_expected, 1.0);
    ++bins;
  }
  const double df = std::max(1, bins - 1);
  EXPECT_LT(chi2, df + 6 * std::sqrt(2 * df) + 10) << bins << " bins";
  // Every kept token with a fair chance shows up.
  for (const auto& [token, p] : expected) {
    if (p * draws > 30) {
      EXPECT_GT(counts[token], 0) << "token " << token << " never drawn";
    }
  }
}

TEST(SamplingGpuTest, FrequenciesMatchTheKeptDistribution) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(11);
  const auto logits = random_logits(64, rng, 1.5f);
  const DistributionCase cases[] = {
      {"plain", {.temperature = 1.0f}},
      {"cold top_k", {.temperature = 0.7f, .top_k = 10}},
      {"top_p", {.temperature = 1.0f, .top_p = 0.8f}},
      {"hot min_p", {.temperature = 1.3f, .min_p = 0.1f}},
      // All three cuts, in shard/engine/sampler.cpp's order: top_k, min_p, then top_p. On these
      // logits they keep 20, then 12, then 9 tokens (an emulation of the kernel counted them):
      // each cut does some work and the frequency check has tokens to compare.
      {"all", {.temperature = 1.0f, .top_k = 20, .top_p = 0.9f, .min_p = 0.05f}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    expect_distribution(logits, c.row, 40000);
  }
}

TEST(SamplingGpuTest, TiesAtTheCutKeepTheLowestIds) {
  SKIP_WITHOUT_GPU();
  // One maximum, then five tokens tied in second place: top_k = 3 keeps the max and the two
  // lowest tied ids (3 and 7), like the CPU sampler's stable order.
  std::vector<float> logits(30, -1.0f);
  logits[12] = 3.0f;
  for (int id : {25, 7, 19, 3, 11}) logits[id] = 2.0f;
  expect_distribution(logits, {.temperature = 1.0f, .top_k = 3}, 20000);
  // All equal: top_p = 0.42 keeps the nine lowest ids (9 x 1/20 is the first sum >= 0.42).
  std::vector<float> flat(20, 0.5f);
  const auto expected = expected_distribution(flat, {.temperature = 1.0f, .top_p = 0.42f});
  ASSERT_EQ(expected.size(), 9u);
  ASSERT_EQ(expected.rbegin()->first, 8);
  expect_distribution(flat, {.temperature = 1.0f, .top_p = 0.42f}, 20000);
  // -0.0 and +0.0 are equal logits: top_k = 2 keeps the max and id 1 (-0.0), not id 4 (+0.0).
  std::vector<float> zeros(10, -1.0f);
  zeros[6] = 1.0f;
  zeros[1] = -0.0f;
  zeros[4] = 0.0f;
  expect_distribution(zeros, {.temperature = 1.0f, .top_k = 2}, 20000);
}

TEST(SamplingGpuTest, LargeVocabularyStaysInTheKeptSet) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(5);
  const auto logits = random_logits(128256, rng, 3.0f);
  for (const SamplingRow params :
       {SamplingRow{.temperature = 1.0f, .top_k = 40},
        SamplingRow{.temperature = 0.8f, .top_p = 0.5f},
        SamplingRow{.temperature = 1.0f, .top_k = 1000, .top_p = 0.9f, .min_p = 0.01f}}) {
    const auto expected = expected_distribution(logits, params);
    std::vector<SamplingRow> rows(256, params);  // 256 copies of the logits: 131 MB
    for (int i = 0; i < 256; ++i) rows[i].offset = i;
    for (int32_t token : sample(logits, 128256, rows)) {
      ASSERT_TRUE(expected.count(token))
          << "token " << token << " outside the kept set of " << expected.size();
    }
  }
}

}  // namespace
}  // namespace shardwise
