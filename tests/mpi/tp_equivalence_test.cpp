// Under mpirun -np N: every rank builds the model twice — sliced across the N ranks (TP=N, MPI
// all-reduce) and whole (TP=1) — and checks the TP logits and greedy tokens against TP=1.
// Every rank knows the exact answer, so every rank checks.
#include <gtest/gtest.h>

#include <thread>

#include "comm/mpi_communicator.h"
#include "comm/mpi_session.h"
#include "kernels/cpu/cpu_threads.h"
#include "shard/engine/generator.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

MpiSession* g_session = nullptr;

class TpEquivalenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TpEquivalenceTest, LogitsAndGreedyTokensEqualTp1) {
  const auto dir = GetParam() == "stories260K" ? testing::default_model_dir()
                                               : testing::testdata_dir() / "hf-tiny" / GetParam();
  MpiCommunicator tp_comm(g_session->tp_group(), std::chrono::seconds(60));
  SoloCommunicator solo;
  auto sliced = load_llama_model(dir, tp_comm);
  auto whole = load_llama_model(dir, solo);
  ASSERT_TRUE(sliced.ok()) << sliced.status().to_string();
  ASSERT_TRUE(whole.ok()) << whole.status().to_string();
  const auto& config = (*whole)->config();
  if (tp_comm.size() > config.num_key_value_heads) {
    EXPECT_EQ((*sliced)->attention_partition().local_kv_heads, 1) << "KV heads replicated";
  }

  const std::vector<std::vector<int32_t>> prompts{
      {1}, {1, 403, 407, 261, 378}, {5, 17, 9, 33, 2, 8, 100}};
  for (const auto& prompt : prompts) {
    auto tp_logits = prompt_logits(**sliced, prompt);
    auto reference = prompt_logits(**whole, prompt);
    ASSERT_TRUE(tp_logits.ok() && reference.ok());
    const int vocab = config.vocab_size;
    for (std::size_t p = 0; p < prompt.size(); ++p) {
      std::span<const float> a(tp_logits->data() + p * vocab, vocab),
          b(reference->data() + p * vocab, vocab);
      EXPECT_TRUE(testing::close_by_relative_error(a, b, testing::Tolerance::kF32TensorParallel))
          << "position " << p;
    }
    GenerationRequest request;
    request.prompt_ids = prompt;
    request.max_new_tokens = 24;
    auto tp_tokens = generate(**sliced, request);
    auto tokens = generate(**whole, request);
    ASSERT_TRUE(tp_tokens.ok() && tokens.ok());
    EXPECT_EQ(tp_tokens->token_ids, tokens->token_ids);
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, TpEquivalenceTest,
                         ::testing::Values("stories260K", "tiny-llama-gqa-f32",
                                           "tiny-llama3-rope-scaled-f32", "tiny-llama-mha-bf16"));

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
