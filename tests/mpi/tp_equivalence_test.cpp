// Under mpirun -np N: every rank builds the model twice — sliced across the N ranks (TP=N, MPI
// all-reduce) and whole (TP=1) — and checks the TP logits and greedy tokens against TP=1.
// Every rank knows the exact answer, so every rank checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <thread>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "kernels/cpu/cpu_threads.h"
#include "shard/engine/generator.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

MpiSession* g_session = nullptr;

// Each model at its stored precision and with int8 weights (quantised at load).
class TpEquivalenceTest : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

// Only the order of the sums across ranks differs from TP=1. Where the matmul inputs are
// rounded (to bf16 on AVX-512 for bf16 weights, to int8 for int8 weights) that fp32 noise can
// move an input across a rounding boundary, a change of one rounding step: the tolerance of
// that precision. Greedy tokens are compared up to the first step where the two top logits of
// TP=1 are closer than twice the largest deviation of TP=N's logits, which could reorder them.
double tp_tolerance(const LlamaModel& model, const std::string& name, bool int8) {
  if (int8) return testing::Tolerance::kInt8;
  if (name.ends_with("-bf16") && model.options().isa == cpu::CpuIsa::kAvx512) {
    return testing::Tolerance::kBF16;
  }
  return testing::Tolerance::kF32TensorParallel;
}

// Per step of TP=1's greedy continuation: may TP=N's deviation flip the top two logits?
std::vector<bool> near_ties(LlamaModel& whole, LlamaModel& sliced,
                            const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& tokens) {
  std::vector<int32_t> sequence = prompt;
  sequence.insert(sequence.end(), tokens.begin(), tokens.end());
  auto expected = prompt_logits(whole, sequence);
  auto ours = prompt_logits(sliced, sequence);
  EXPECT_TRUE(expected.ok() && ours.ok());
  const int vocab = whole.config().vocab_size;
  std::vector<bool> ties;
  for (std::size_t i = 0; i < tokens.size() && expected.ok() && ours.ok(); ++i) {
    const std::size_t row = (prompt.size() - 1 + i) * vocab;
    std::vector<float> top(expected->begin() + row, expected->begin() + row + vocab);
    std::partial_sort(top.begin(), top.begin() + 2, top.end(), std::greater<float>());
    float deviation = 0;
    for (int j = 0; j < vocab; ++j) {
      deviation = std::max(deviation, std::fabs((*ours)[row + j] - (*expected)[row + j]));
    }
    ties.push_back(top[0] - top[1] <= 2 * deviation);
  }
  return ties;
}

TEST_P(TpEquivalenceTest, LogitsAndGreedyTokensEqualTp1) {
  const auto& [name, int8] = GetParam();
  const auto dir = name == "stories260K" ? testing::default_model_dir()
                                         : testing::testdata_dir() / "hf-tiny" / name;
  MpiCommunicator tp_comm(g_session->tp_group(), std::chrono::seconds(60));
  SoloCommunicator solo;
  CpuModelOptions options;
  if (int8) options.weight_type = cpu::WeightType::kInt8;
  auto sliced = load_llama_model(dir, tp_comm, options);
  auto whole = load_llama_model(dir, solo, options);
  ASSERT_TRUE(sliced.ok()) << sliced.status().to_string();
  ASSERT_TRUE(whole.ok()) << whole.status().to_string();
  const auto& config = (*whole)->config();
  if (tp_comm.size() > config.num_key_value_heads) {
    EXPECT_EQ((*sliced)->attention_partition().local_kv_heads, 1) << "KV heads replicated";
  }
  const double tolerance = tp_tolerance(**whole, name, int8);

  const std::vector<std::vector<int32_t>> prompts{
      {1}, {1, 403, 407, 261, 378}, {5, 17, 9, 33, 2, 8, 100}};
  std::size_t compared_steps = 0;
  for (const auto& prompt : prompts) {
    auto tp_logits = prompt_logits(**sliced, prompt);
    auto reference = prompt_logits(**whole, prompt);
    ASSERT_TRUE(tp_logits.ok() && reference.ok());
    const int vocab = config.vocab_size;
    for (std::size_t p = 0; p < prompt.size(); ++p) {
      std::span<const float> a(tp_logits->data() + p * vocab, vocab),
          b(reference->data() + p * vocab, vocab);
      EXPECT_TRUE(testing::close_by_relative_error(a, b, tolerance)) << "position " << p;
    }
    GenerationRequest request;
    request.prompt_ids = prompt;
    request.max_new_tokens = 24;
    auto tp_tokens = generate(**sliced, request);
    auto tokens = generate(**whole, request);
    ASSERT_TRUE(tp_tokens.ok() && tokens.ok());
    const auto ties = near_ties(**whole, **sliced, prompt, tokens->token_ids);
    for (std::size_t i = 0; i < ties.size() && !ties[i]; ++i, ++compared_steps) {
      ASSERT_EQ(tp_tokens->token_ids[i], tokens->token_ids[i]) << "step " << i;
    }
  }
  EXPECT_GE(compared_steps, 8u) << "too few steps before a near-tie to make this test meaningful";
}

INSTANTIATE_TEST_SUITE_P(AllModels, TpEquivalenceTest,
                         ::testing::Combine(::testing::Values("stories260K", "tiny-llama-gqa-f32",
                                                              "tiny-llama3-rope-scaled-f32",
                                                              "tiny-llama-mha-bf16"),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name + (std::get<1>(info.param) ? "_int8" : "_stored");
                         });

}  // namespace
}  // namespace shardwise

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto session = shardwise::MpiSession::start(&argc, &argv, shardwise::MpiSession::kWholeWorld);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
    return 2;
  }
  shardwise::g_session = session->get();
  shardwise::cpu::set_cpu_threads(shardwise::g_session->config().cpu_threads_per_rank(
      static_cast<int>(std::thread::hardware_concurrency())));
  return RUN_ALL_TESTS();
}
