// The engine's embeddings and prompt log-probabilities on real checkpoints, against
// transformers' reference logits: a final normed hidden state times the output projection
// (read from the checkpoint here, not by our loader) must give the reference logits at its
// position, and a prompt token's log-probability is log_softmax(reference logits) there.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "kernels/cpu/cpu_isa.h"
#include "models/llama_model.h"
#include "models/safetensors.h"
#include "shard/engine/engine.h"
#include "tests/support/reference_logits.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

using nlohmann::json;
using testing::Tolerance;

constexpr int kBlockSize = 16;

class EngineReferenceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = testing::testdata_dir() / "hf-tiny" / GetParam();
    auto model = load_llama_model(dir_, comm_);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    model_ = std::move(model).value();
    reference_ = json::parse(testing::read_text_file(dir_ / "reference.json"));
    auto logits = SafetensorsFile::open(dir_ / "reference_logits.safetensors");
    ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    logits_ = std::move(logits).value();
    // As in llama_reference_test: on AVX-512 a bf16 model's matmul inputs are rounded to bf16,
    // so its results are as far from transformers' fp32 ones as bf16 precision allows.
    reference_tolerance_ =
        GetParam().ends_with("-bf16") && cpu::best_cpu_isa() == cpu::CpuIsa::kAvx512
            ? Tolerance::kBF16
            : Tolerance::kF32;
  }

  // One request through an engine whose steps take at most 8 tokens (prompts run in chunks).
  std::vector<StreamEvent> run(Request request) {
    LocalModelRunner runner(*model_, 32, kBlockSize);
    EngineOptions options;
    options.scheduler.max_batch_tokens = 8;
    Engine engine(runner, options);
    std::vector<StreamEvent> events;
    request.on_event = [&](const StreamEvent& e) { events.push_back(e); };
    EXPECT_TRUE(engine.add_request(std::move(request)).ok());
    while (engine.has_unfinished()) EXPECT_TRUE(engine.step().ok());
    return events;
  }

  std::filesystem::path dir_;
  SoloCommunicator comm_;
  std::unique_ptr<LlamaModel> model_;
  json reference_;
  std::unique_ptr<SafetensorsFile> logits_;
  double reference_tolerance_ = Tolerance::kF32;
};

TEST_P(EngineReferenceTest, HiddenStatesProjectToTheReferenceLogits) {
  const LlamaConfig& config = model_->config();
  auto weights = SafetensorsFile::open(dir_ / "model.safetensors");
  ASSERT_TRUE(weights.ok()) << weights.status().to_string();
  const std::vector<float> output = testing::reference_tensor(
      **weights, config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
  const int hidden = config.hidden_size, vocab = config.vocab_size;
  ASSERT_EQ(output.size(), static_cast<std::size_t>(vocab) * hidden);
  for (std::size_t c = 0; c < reference_["cases"].size(); ++c) {
    const auto prompt = reference_["cases"][c]["prompt_ids"].get<std::vector<int32_t>>();
    const int n = static_cast<int>(prompt.size());
    ForwardBatch batch;
    const int blocks = (n + kBlockSize - 1) / kBlockSize;
    for (int b = 0; b < blocks; ++b) batch.block_tables.push_back(b);
    batch.max_blocks_per_seq = blocks;
    for (int p = 0; p < n; ++p) {
      batch.token_ids.push_back(prompt[p]);
      batch.positions.push_back(p);
      batch.seq_index.push_back(0);
      batch.slot_mapping.push_back(p);
      batch.hidden_rows.push_back(p);
    }
    PagedKvCache cache = model_->make_kv_cache(blocks, kBlockSize);
    auto states = model_->forward(batch, cache);
    ASSERT_TRUE(states.ok()) << states.status().to_string();
    ASSERT_EQ(states->size(), static_cast<std::size_t>(n) * hidden);  // no logit rows
    std::vector<float> projected(static_cast<std::size_t>(n) * vocab);
    for (int p = 0; p < n; ++p) {
      for (int v = 0; v < vocab; ++v) {
        double dot = 0;
        for (int i = 0; i < hidden; ++i) {
          dot += static_cast<double>((*states)[p * hidden + i]) * output[v * hidden + i];
        }
        projected[static_cast<std::size_t>(p) * vocab + v] = static_cast<float>(dot);
      }
    }
    testing::expect_rows_close(
        projected, testing::reference_tensor(*logits_, fmt::format("prompt{}.logits", c)), vocab,
        reference_tolerance_, fmt::format("{} prompt {}", GetParam(), c));

    // The engine's pools of the same states: the mean over the prompt and the last one.
    for (Pooling pooling : {Pooling::kMean, Pooling::kLast}) {
      Request request;
      request.prompt_ids = prompt;
      request.pooling = pooling;
      const auto events = run(std::move(request));
      ASSERT_EQ(events.size(), 1u);
      std::vector<float> expected(hidden, 0.0f);
      const int first = pooling == Pooling::kMean ? 0 : n - 1;
      for (int i = 0; i < hidden; ++i) {
        double sum = 0;
        for (int p = first; p < n; ++p) sum += (*states)[p * hidden + i];
        expected[i] = static_cast<float>(sum / (n - first));
      }
      // Chunked (8-token steps) against one pass: only the order of sums inside differs, but
      // where matmul inputs are rounded to bf16 a last-bit difference can move an input by one
      // bf16 step, so the bf16 tolerance applies there too (measured: 1.7e-3 on AVX-512).
      EXPECT_TRUE(
          testing::close_by_relative_error(events[0].embedding, expected, reference_tolerance_))
          << GetParam() << " prompt " << c;
    }
  }
}

TEST_P(EngineReferenceTest, PromptLogprobsAreTheReferenceLogSoftmax) {
  const int vocab = model_->config().vocab_size;
  for (std::size_t c = 0; c < reference_["cases"].size(); ++c) {
    const auto prompt = reference_["cases"][c]["prompt_ids"].get<std::vector<int32_t>>();
    if (prompt.size() < 2) continue;
    Request request;
    request.prompt_ids = prompt;
    request.sampling.max_tokens = 1;
    request.sampling.prompt_logprobs = 0;
    const auto events = run(std::move(request));
    ASSERT_EQ(events.size(), 1u);
    ASSERT_EQ(events[0].prompt_logprobs.size(), prompt.size() - 1);
    const auto logits = testing::reference_tensor(*logits_, fmt::format("prompt{}.logits", c));
    std::vector<float> ours, expected;
    for (std::size_t p = 0; p + 1 < prompt.size(); ++p) {
      const float* row = logits.data() + p * vocab;
      double max = row[0], sum = 0;
      for (int v = 0; v < vocab; ++v) max = std::max<double>(max, row[v]);
      for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
      expected.push_back(static_cast<float>(row[prompt[p + 1]] - max - std::log(sum)));
      ours.push_back(events[0].prompt_logprobs[p].logprob);
    }
    EXPECT_TRUE(testing::close_by_relative_error(ours, expected, reference_tolerance_))
        << GetParam() << " prompt " << c;
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, EngineReferenceTest,
                         ::testing::Values("tiny-llama-gqa-f32", "tiny-llama3-rope-scaled-f32",
                                           "tiny-llama-mha-bf16"));

}  // namespace
}  // namespace shardwise
