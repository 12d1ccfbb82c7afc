// The Llama forward pass on the GPU against Hugging Face transformers' references and the CPU
// model: f32 and bf16 prompt logits, cached decode, chunked prefill, CUDA graph replay,
// on-device sampling and synthetic weights. Skips without a GPU.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "comm/communicator.h"
#include "comm/device_communicator.h"
#include "models/cuda_llama_model.h"
#include "models/llama_model.h"
#include "models/safetensors.h"
#include "shard/engine/generator.h"
#include "shard/engine/sampler.h"
#include "tests/gpu/gpu_test_support.h"
#include "tests/support/reference_logits.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

using nlohmann::json;
using testing::Tolerance;

constexpr int kBlockSize = 4;    // small, so short prompts cross block boundaries
constexpr int kNumBlocks = 128;  // 16 blocks (64 positions) for each of 8 sequences

// One run of consecutive tokens of one sequence in a batch.
struct SeqRun {
  int seq;                   // row of the block tables
  std::vector<int32_t> ids;  // the tokens
  int first_position;        // of ids[0]
  bool all_logits = false;   // logits for every token (else for the last one)
};

// Sequence s owns blocks s, s + 8, s + 16, ... in reverse order within its table, so that
// neighbouring positions never sit in neighbouring blocks.
std::vector<int32_t> table_of(int seq, int max_blocks) {
  std::vector<int32_t> table(max_blocks);
  for (int b = 0; b < max_blocks; ++b) table[b] = seq + 8 * (max_blocks - 1 - b);
  return table;
}

ForwardBatch make_batch(const std::vector<SeqRun>& runs, int n_seqs) {
  constexpr int kMaxBlocks = kNumBlocks / 8;
  ForwardBatch batch;
  batch.max_blocks_per_seq = kMaxBlocks;
  for (int s = 0; s < n_seqs; ++s) {
    const auto table = table_of(s, kMaxBlocks);
    batch.block_tables.insert(batch.block_tables.end(), table.begin(), table.end());
  }
  for (const SeqRun& run : runs) {
    const auto table = table_of(run.seq, kMaxBlocks);
    for (std::size_t i = 0; i < run.ids.size(); ++i) {
      const int p = run.first_position + static_cast<int>(i);
      if (run.all_logits || i + 1 == run.ids.size()) batch.logit_rows.push_back(batch.n_tokens());
      batch.token_ids.push_back(run.ids[i]);
      batch.positions.push_back(p);
      batch.seq_index.push_back(run.seq);
      batch.slot_mapping.push_back(table[p / kBlockSize] * kBlockSize + p % kBlockSize);
    }
  }
  return batch;
}

std::unique_ptr<CudaLlamaModel> load_gpu(const std::filesystem::path& dir, DeviceCommunicator& comm,
                                         DType dtype, bool graphs) {
  CudaModelOptions options;
  options.dtype = dtype;
  options.cuda_graphs = graphs;
  options.max_graph_batch = 8;
  auto model = load_cuda_llama_model(dir, comm, options);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  return model.ok() ? std::move(model).value() : nullptr;
}

CudaKvCache make_cache(const CudaLlamaModel& model) {
  auto cache = model.make_kv_cache(kNumBlocks, kBlockSize);
  SW_CHECK(cache.ok());
  return std::move(cache).value();
}

std::vector<float> forward_ok(CudaLlamaModel& model, const ForwardBatch& batch,
                              CudaKvCache& cache) {
  auto logits = model.forward(batch, cache);
  EXPECT_TRUE(logits.ok()) << logits.status().to_string();
  return logits.ok() ? std::move(logits).value() : std::vector<float>{};
}

std::filesystem::path hf_tiny(const std::string& name) {
  return testing::testdata_dir() / "hf-tiny" / name;
}

class GpuReferenceTest : public ::testing::TestWithParam<std::string> {};

// Prompt logits in f32 match transformers (kF32) and the CPU model; in bf16 within kBF16.
TEST_P(GpuReferenceTest, PromptLogitsMatchTransformersAndTheCpu) {
  SKIP_WITHOUT_GPU();
  const auto dir = hf_tiny(GetParam());
  SoloDeviceCommunicator device_comm;
  SoloCommunicator comm;
  auto f32 = load_gpu(dir, device_comm, DType::kF32, false);
  auto bf16 = load_gpu(dir, device_comm, DType::kBF16, false);
  auto cpu = load_llama_model(dir, comm);
  ASSERT_TRUE(f32 && bf16 && cpu.ok());
  const json reference = json::parse(testing::read_text_file(dir / "reference.json"));
  auto logits_file = SafetensorsFile::open(dir / "reference_logits.safetensors");
  ASSERT_TRUE(logits_file.ok()) << logits_file.status().to_string();
  const int vocab = f32->config().vocab_size;

  for (std::size_t i = 0; i < reference["cases"].size(); ++i) {
    const auto prompt = reference["cases"][i]["prompt_ids"].get<std::vector<int32_t>>();
    const auto expected =
        testing::reference_tensor(**logits_file, fmt::format("prompt{}.logits", i));
    const ForwardBatch batch = make_batch({{0, prompt, 0, true}}, 1);
    const std::string what = fmt::format("{} prompt {}", GetParam(), i);

    CudaKvCache f32_cache = make_cache(*f32);
    const auto ours = forward_ok(*f32, batch, f32_cache);
    testing::expect_rows_close(ours, expected, vocab, Tolerance::kF32,
                               what + " f32 vs transformers");
    auto on_cpu = prompt_logits(**cpu, prompt);
    ASSERT_TRUE(on_cpu.ok());
    testing::expect_rows_close(ours, *on_cpu, vocab, Tolerance::kF32, what + " f32 vs CPU");

    CudaKvCache bf16_cache = make_cache(*bf16);
    testing::expect_rows_close(forward_ok(*bf16, batch, bf16_cache), expected, vocab,
                               Tolerance::kBF16, what + " bf16 vs transformers");
  }
}

// Decoding one token at a time against the cache gives the logits of recomputing the prefix.
TEST_P(GpuReferenceTest, CachedDecodeEqualsRecomputation) {
  SKIP_WITHOUT_GPU();
  SoloDeviceCommunicator device_comm;
  auto model = load_gpu(hf_tiny(GetParam()), device_comm, DType::kF32, false);
  ASSERT_TRUE(model);
  const json reference =
      json::parse(testing::read_text_file(hf_tiny(GetParam()) / "reference.json"));
  auto sequence = reference["cases"][1]["prompt_ids"].get<std::vector<int32_t>>();
  const auto greedy = reference["cases"][1]["greedy_ids"].get<std::vector<int32_t>>();
  sequence.insert(sequence.end(), greedy.begin(), greedy.begin() + 10);
  const int vocab = model->config().vocab_size;
  const int prompt_length = 5;

  CudaKvCache cache = make_cache(*model);
  forward_ok(*model, make_batch({{0, {sequence.begin(), sequence.begin() + prompt_length}, 0}}, 1),
             cache);
  for (int p = prompt_length; p < static_cast<int>(sequence.size()); ++p) {
    const auto decoded = forward_ok(*model, make_batch({{0, {sequence[p]}, p}}, 1), cache);
    CudaKvCache fresh = make_cache(*model);
    const auto full = forward_ok(
        *model, make_batch({{0, {sequence.begin(), sequence.begin() + p + 1}, 0}}, 1), fresh);
    ASSERT_EQ(decoded.size(), static_cast<std::size_t>(vocab));
    // Decode and prefill attention kernels sum in different orders.
    EXPECT_TRUE(testing::close_by_relative_error(decoded, full, Tolerance::kF32))
        << GetParam() << " position " << p;
  }
}

// A prompt prefilled in chunks (each chunk reading the cached blocks of the earlier ones), and
// chunks mixed with another sequence's decode step, give the one-shot logits.
TEST_P(GpuReferenceTest, ChunkedPrefillEqualsOneShot) {
  SKIP_WITHOUT_GPU();
  SoloDeviceCommunicator device_comm;
  auto model = load_gpu(hf_tiny(GetParam()), device_comm, DType::kF32, false);
  ASSERT_TRUE(model);
  const json reference =
      json::parse(testing::read_text_file(hf_tiny(GetParam()) / "reference.json"));
  const auto prompt = reference["cases"][2]["prompt_ids"].get<std::vector<int32_t>>();  // 33
  const int n = static_cast<int>(prompt.size());
  const int vocab = model->config().vocab_size;

  CudaKvCache one_shot_cache = make_cache(*model);
  const auto one_shot = forward_ok(*model, make_batch({{0, prompt, 0, true}}, 1), one_shot_cache);

  CudaKvCache cache = make_cache(*model);
  // Sequence 1 (a 3-token prompt, then decode steps) shares every chunk's batch.
  const std::vector<int32_t> other{1, 2, 3, 4, 5, 6, 7, 8};
  forward_ok(*model, make_batch({{1, {other.begin(), other.begin() + 3}, 0}}, 2), cache);
  constexpr int kChunk = 7;  // not a multiple of the block size
  for (int start = 0, step = 0; start < n; start += kChunk, ++step) {
    const int end = std::min(n, start + kChunk);
    std::vector<SeqRun> runs;
    if (step % 2 == 1) runs.push_back({1, {other[3 + step / 2]}, 3 + step / 2});  // decode first
    runs.push_back({0, {prompt.begin() + start, prompt.begin() + end}, start, true});
    const auto logits = forward_ok(*model, make_batch(runs, 2), cache);
    const std::size_t skip = step % 2 == 1 ? vocab : 0;  // the decode row's logits come first
    ASSERT_EQ(logits.size(), skip + static_cast<std::size_t>(end - start) * vocab);
    const std::vector<float> ours(logits.begin() + skip, logits.end());
    const std::vector<float> expected(one_shot.begin() + start * vocab,
                                      one_shot.begin() + end * vocab);
    testing::expect_rows_close(ours, expected, vocab, Tolerance::kF32,
                               fmt::format("{} chunk at {}", GetParam(), start));
  }
}

// Decode steps replayed from CUDA graphs give the eager logits: exactly when the batch fills
// its bucket (the same GEMM shapes), to kF32Kernel when padded rows change cuBLAS's shapes.
TEST_P(GpuReferenceTest, GraphReplayEqualsEager) {
  SKIP_WITHOUT_GPU();
  SoloDeviceCommunicator device_comm;
  auto eager = load_gpu(hf_tiny(GetParam()), device_comm, DType::kF32, false);
  auto graphed = load_gpu(hf_tiny(GetParam()), device_comm, DType::kF32, true);
  ASSERT_TRUE(eager && graphed);
  const int vocab = eager->config().vocab_size;
  for (int n_seqs : {1, 2, 3, 4}) {
    CudaKvCache eager_cache = make_cache(*eager);
    CudaKvCache graphed_cache = make_cache(*graphed);
    std::vector<SeqRun> prefill;
    for (int s = 0; s < n_seqs; ++s) prefill.push_back({s, {1, 10 + s, 20, 30 + s, 40, 50}, 0});
    forward_ok(*eager, make_batch(prefill, n_seqs), eager_cache);
    forward_ok(*graphed, make_batch(prefill, n_seqs), graphed_cache);
    const long replays_before = graphed->graph_replays();
    for (int step = 0; step < 6; ++step) {
      std::vector<SeqRun> decode;
      // Sequences in reverse order in the batch: block tables are rows of seq_index.
      for (int s = n_seqs - 1; s >= 0; --s) decode.push_back({s, {100 + 7 * step + s}, 6 + step});
      const ForwardBatch batch = make_batch(decode, n_seqs);
      const auto a = forward_ok(*eager, batch, eager_cache);
      const auto b = forward_ok(*graphed, batch, graphed_cache);
      ASSERT_EQ(a.size(), static_cast<std::size_t>(n_seqs) * vocab);
      if ((n_seqs & (n_seqs - 1)) == 0) {
        EXPECT_EQ(a, b) << GetParam() << " batch " << n_seqs << " step " << step;
      } else {
        testing::expect_rows_close(b, a, vocab, Tolerance::kF32Kernel,
                                   fmt::format("{} batch {} step {}", GetParam(), n_seqs, step));
      }
    }
    EXPECT_EQ(graphed->graph_replays() - replays_before, 5) << "step 0 captures, 1-5 replay";
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, GpuReferenceTest,
                         ::testing::Values("tiny-llama-gqa-f32", "tiny-llama3-rope-scaled-f32",
                                           "tiny-llama-mha-bf16"));

// Greedy rows sampled on the device pick the host argmax of the same logits.
TEST(GpuModel, GreedySamplingOnTheDeviceMatchesTheHostArgmax) {
  SKIP_WITHOUT_GPU();
  SoloDeviceCommunicator device_comm;
  auto model = load_gpu(hf_tiny("tiny-llama-gqa-f32"), device_comm, DType::kF32, true);
  // The host logits come from a second, eager model: running them on the graphed model with
  // another cache would drop its graphs every step (they hold one cache's addresses), so no
  // step would ever be replayed. Batch 2 fills its bucket: replayed logits equal the eager ones.
  auto eager = load_gpu(hf_tiny("tiny-llama-gqa-f32"), device_comm, DType::kF32, false);
  ASSERT_TRUE(model && eager);
  const int vocab = model->config().vocab_size;
  CudaKvCache cache = make_cache(*eager);
  const ForwardBatch prompt = make_batch({{0, {1, 5, 9}, 0}, {1, {1, 6}, 0}}, 2);
  const auto logits = forward_ok(*eager, prompt, cache);
  std::vector<cuda::SamplingRow> rows(2);
  CudaKvCache cache2 = make_cache(*model);
  auto tokens = model->forward_and_sample(prompt, cache2, rows);
  ASSERT_TRUE(tokens.ok()) << tokens.status().to_string();
  for (int r = 0; r < 2; ++r) {
    std::span<const float> row(logits.data() + r * vocab, vocab);
    EXPECT_EQ((*tokens)[r], argmax(row)) << "row " << r;
  }
  // And on graph-replayed decode steps.
  const long replays_before = model->graph_replays();
  for (int step = 0; step < 3; ++step) {
    const ForwardBatch decode = make_batch({{0, {7 + step}, 3 + step}, {1, {8}, 2 + step}}, 2);
    auto sampled = model->forward_and_sample(decode, cache2, rows);
    const auto host = forward_ok(*eager, decode, cache);
    ASSERT_TRUE(sampled.ok()) << sampled.status().to_string();
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ((*sampled)[r], argmax(std::span<const float>(host.data() + r * vocab, vocab)))
          << "step " << step << " row " << r;
    }
  }
  EXPECT_EQ(model->graph_replays() - replays_before, 2) << "step 0 captures, 1-2 replay";
}

// Batches the attention kernels cannot take are refused before anything runs.
TEST(GpuModel, NonContiguousOrNonConsecutiveTokensAreRejected) {
  SKIP_WITHOUT_GPU();
  SoloDeviceCommunicator device_comm;
  auto model = load_gpu(hf_tiny("tiny-llama-gqa-f32"), device_comm, DType::kF32, false);
  ASSERT_TRUE(model);
  CudaKvCache cache = make_cache(*model);
  ForwardBatch gap = make_batch({{0, {1, 2, 3}, 0}}, 1);
  gap.positions[2] = 5;
  EXPECT_EQ(model->forward(gap, cache).status().code(), StatusCode::kInvalidArgument);
  ForwardBatch split = make_batch({{0, {1}, 0}, {1, {1}, 0}, {0, {2}, 1}}, 2);
  EXPECT_EQ(model->forward(split, cache).status().code(), StatusCode::kInvalidArgument);
  ForwardBatch bad_id = make_batch({{0, {1, 100000}, 0}}, 1);
  EXPECT_EQ(model->forward(bad_id, cache).status().code(), StatusCode::kInvalidArgument);
}

// Synthetic weights over 80 layers keep activations finite and logits informative, in bf16,
// eagerly and from graphs.
TEST(GpuModel, RandomWeightsStayFiniteOverManyLayers) {
  SKIP_WITHOUT_GPU();
  const auto dir = testing::scratch_dir("random_weights_model");
  std::ofstream(dir / "config.json") << R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 80,
    "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 32,
    "rms_norm_eps": 1e-5, "vocab_size": 2000, "max_position_embeddings": 4096,
    "rope_theta": 500000.0, "tie_word_embeddings": false,
    "bos_token_id": 1, "eos_token_id": 2})";
  SoloDeviceCommunicator device_comm;
  CudaModelOptions options;
  options.random_weights = true;
  options.max_graph_batch = 8;
  auto model = load_cuda_llama_model(dir, device_comm, options);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  CudaKvCache cache = make_cache(**model);
  std::vector<int32_t> prompt(20);
  std::iota(prompt.begin(), prompt.end(), 3);
  auto check = [&](const std::vector<float>& logits) {
    ASSERT_FALSE(logits.empty());
    double sum_squares = 0;
    for (float x : logits) {
      ASSERT_TRUE(std::isfinite(x));
      sum_squares += static_cast<double>(x) * x;
    }
    const double rms = std::sqrt(sum_squares / logits.size());
    EXPECT_GT(rms, 1e-2);
    EXPECT_LT(rms, 1e3);
  };
  check(forward_ok(**model, make_batch({{0, prompt, 0}}, 1), cache));
  for (int step = 0; step < 3; ++step) {
    check(forward_ok(**model, make_batch({{0, {50 + step}, 20 + step}}, 1), cache));
  }
  EXPECT_EQ((*model)->graph_replays(), 2);
}

}  // namespace
}  // namespace shardwise
