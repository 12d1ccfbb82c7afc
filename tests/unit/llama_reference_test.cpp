// The CPU forward pass against Hugging Face transformers' references (computed in fp32 on the
// CPU from the same weights): per-position logits and greedy continuations, on every kernel
// instruction set this CPU has; int8 weights against the stored precision.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "models/llama_model.h"
#include "models/safetensors.h"
#include "shard/engine/generator.h"
#include "tests/support/reference_logits.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

using nlohmann::json;
using testing::Tolerance;

// Greedy steps with a smaller top1-top2 margin are near-ties that any correct fp32
// implementation may break either way (testdata README).
constexpr double kNearTieMargin = 1e-3;
// With inputs rounded to bf16 before every matmul (AVX-512's vdpbf16ps), logits move by about
// 0.6% (measured; ~1e-2 absolute here): margins below 0.05 may flip.
constexpr double kBf16NearTieMargin = 0.05;

std::unique_ptr<LlamaModel> load(const std::filesystem::path& dir, Communicator& comm,
                                 const CpuModelOptions& options = {}) {
  auto model = load_llama_model(dir, comm, options);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  return model.ok() ? std::move(model).value() : nullptr;
}

std::vector<int32_t> greedy(LlamaModel& model, const std::vector<int32_t>& prompt, int n) {
  GenerationRequest request;
  request.prompt_ids = prompt;
  request.max_new_tokens = n;
  auto result = generate(model, request);
  EXPECT_TRUE(result.ok()) << result.status().to_string();
  return result.ok() ? result->token_ids : std::vector<int32_t>{};
}

// A model on one instruction set (skipped where the CPU lacks it).
class HfTinyReferenceTest : public ::testing::TestWithParam<std::tuple<std::string, cpu::CpuIsa>> {
 protected:
  void SetUp() override {
    if (!cpu::cpu_supports(std::get<1>(GetParam()))) {
      GTEST_SKIP() << "this CPU lacks " << cpu::cpu_isa_name(std::get<1>(GetParam())) << " ("
                   << cpu::cpu_description() << ")";
    }
  }
};

// fp32 models compute in fp32 on every path, and so does a bf16 model where its weights are
// widened in registers (scalar, AVX2): transformers' fp32 tolerance. On AVX-512 a bf16 model's
// matmul inputs are rounded to bf16: the bf16 tolerance, and greedy steps up to the first
// margin that bf16 may flip.
TEST_P(HfTinyReferenceTest, LogitsAndGreedyMatchTransformers) {
  const auto& [name, isa] = GetParam();
  const auto dir = testing::testdata_dir() / "hf-tiny" / name;
  SoloCommunicator comm;
  CpuModelOptions options;
  options.isa = isa;
  auto model = load(dir, comm, options);
  ASSERT_NE(model, nullptr);
  const bool bf16_inputs = name.ends_with("-bf16") && isa == cpu::CpuIsa::kAvx512;
  const double tolerance = bf16_inputs ? Tolerance::kBF16 : Tolerance::kF32;
  const double near_tie = bf16_inputs ? kBf16NearTieMargin : kNearTieMargin;
  const json reference = json::parse(testing::read_text_file(dir / "reference.json"));
  auto logits_file = SafetensorsFile::open(dir / "reference_logits.safetensors");
  ASSERT_TRUE(logits_file.ok()) << logits_file.status().to_string();
  const int vocab = model->config().vocab_size;

  std::size_t checked_steps = 0;
  for (std::size_t i = 0; i < reference["cases"].size(); ++i) {
    const json& c = reference["cases"][i];
    const auto prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    auto ours = prompt_logits(*model, prompt);
    ASSERT_TRUE(ours.ok()) << ours.status().to_string();
    testing::expect_rows_close(
        *ours, testing::reference_tensor(**logits_file, fmt::format("prompt{}.logits", i)), vocab,
        tolerance, fmt::format("{} prompt {}", name, i));

    const auto expected = c["greedy_ids"].get<std::vector<int32_t>>();
    const auto margins = c["greedy_top1_top2_margin"].get<std::vector<double>>();
    const auto tokens = greedy(*model, prompt, static_cast<int>(expected.size()));
    ASSERT_EQ(tokens.size(), expected.size());
    std::size_t checked = 0;
    for (; checked < expected.size() && margins[checked] >= near_tie; ++checked) {
      ASSERT_EQ(tokens[checked], expected[checked])
          << name << " prompt " << i << " step " << checked;
    }
    if (!bf16_inputs) {
      EXPECT_GE(checked, 7u) << "too few steps before a near-tie to make this test meaningful";
    }
    checked_steps += checked;
  }
  EXPECT_GE(checked_steps, 7u);
}

INSTANTIATE_TEST_SUITE_P(
    AllModels, HfTinyReferenceTest,
    ::testing::Combine(::testing::Values("tiny-llama-gqa-f32", "tiny-llama3-rope-scaled-f32",
                                         "tiny-llama-mha-bf16"),
                       ::testing::Values(cpu::CpuIsa::kScalar, cpu::CpuIsa::kAvx2,
                                         cpu::CpuIsa::kAvx512)),
    [](const auto& info) {
      std::string name =
          std::get<0>(info.param) + "_" + std::string(cpu::cpu_isa_name(std::get<1>(info.param)));
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

// int8 weights, quantised at load (symmetric, per row and block of 32, packed_matrix.h), and
// int8 matmul inputs (per block of 32, matmul.h), against the same model at its stored
// precision: the logits of every prompt position.
TEST(Int8Weights, LogitsStayCloseToTheStoredPrecision) {
  const std::filesystem::path models[] = {
      testing::testdata_dir() / "hf-tiny/tiny-llama-gqa-f32",
      testing::testdata_dir() / "hf-tiny/tiny-llama3-rope-scaled-f32",
      testing::testdata_dir() / "hf-tiny/tiny-llama-mha-bf16", testing::default_model_dir()};
  const std::vector<int32_t> prompt{1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
  for (const auto& dir : models) {
    SoloCommunicator comm;
    auto stored = load(dir, comm);
    CpuModelOptions int8;
    int8.weight_type = cpu::WeightType::kInt8;
    auto quantized = load(dir, comm, int8);
    ASSERT_TRUE(stored && quantized);
    EXPECT_LT(quantized->weight_bytes(), stored->weight_bytes() / 1.8) << dir;
    auto expected = prompt_logits(*stored, prompt);
    auto ours = prompt_logits(*quantized, prompt);
    ASSERT_TRUE(expected.ok() && ours.ok());
    const int vocab = stored->config().vocab_size;
    testing::expect_rows_close(*ours, *expected, vocab, Tolerance::kInt8, dir.string());
  }
}

class Stories260KTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load(testing::default_model_dir(), comm_);
    ASSERT_NE(model_, nullptr);
    reference_ = json::parse(
        testing::read_text_file(testing::testdata_dir() / "stories260K/reference/reference.json"));
  }
  const json& reference_case(const std::string& name) {
    for (const json& c : reference_["cases"]) {
      if (c["name"] == name) return c;
    }
    throw std::runtime_error("no reference case " + name);
  }

  SoloCommunicator comm_;
  std::unique_ptr<LlamaModel> model_;
  json reference_;
};

TEST_F(Stories260KTest, GreedyFromBosReproducesLlama2c) {
  const auto expected = reference_case("bos_greedy_200")["greedy_ids"].get<std::vector<int32_t>>();
  const auto tokens = greedy(*model_, {1}, 200);
  ASSERT_EQ(tokens.size(), 200u);
  // Step 185 is a near-tie (margin 0.0042): the first 185 tokens must match exactly.
  EXPECT_EQ(std::vector<int32_t>(tokens.begin(), tokens.begin() + 185),
            std::vector<int32_t>(expected.begin(), expected.begin() + 185));
}

TEST_F(Stories260KTest, PromptedGreedyContinuation) {
  const json& c = reference_case("once_upon_a_time_steps64");
  const auto expected = c["greedy_ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(greedy(*model_, c["prompt_ids"].get<std::vector<int32_t>>(), 60), expected);
}

TEST_F(Stories260KTest, TeacherForcedLogitsMatchTransformers) {
  auto file = SafetensorsFile::open(testing::testdata_dir() /
                                    "stories260K/reference/reference_logits.safetensors");
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  auto greedy_ids = reference_case("bos_greedy_200")["greedy_ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> forced{1};
  forced.insert(forced.end(), greedy_ids.begin(), greedy_ids.begin() + 199);
  auto ours = prompt_logits(*model_, forced);
  ASSERT_TRUE(ours.ok()) << ours.status().to_string();
  testing::expect_rows_close(*ours, testing::reference_tensor(**file, "bos_greedy200.logits"), 512,
                             Tolerance::kF32, "bos_greedy200");

  auto prompt = prompt_logits(*model_, {1, 403, 407, 261, 378});
  ASSERT_TRUE(prompt.ok());
  testing::expect_rows_close(*prompt,
                             testing::reference_tensor(**file, "once_upon_a_time.prompt_logits"),
                             512, Tolerance::kF32, "once_upon_a_time");
}

// Decoding one token at a time against the cache gives the logits of re-running the prefix.
TEST_F(Stories260KTest, CachedDecodeEqualsRecomputingThePrefix) {
  std::vector<int32_t> sequence{
      1,   403, 407, 261, 378, 432, 383, 286, 261, 376,
      298, 315, 421, 395, 317, 426, 338, 401, 396, 267};  // crosses a block boundary at 16
  const int prompt_length = 5;
  const int block_size = 4;
  PagedKvCache cache = model_->make_kv_cache(8, block_size);
  const std::vector<int32_t> table{7, 2, 5, 0, 1, 3, 6, 4};  // out of order on purpose
  auto batch_for = [&](int first, int count) {
    ForwardBatch batch;
    batch.block_tables = table;
    batch.max_blocks_per_seq = 8;
    for (int p = first; p < first + count; ++p) {
      batch.token_ids.push_back(sequence[p]);
      batch.positions.push_back(p);
      batch.seq_index.push_back(0);
      batch.slot_mapping.push_back(table[p / block_size] * block_size + p % block_size);
    }
    batch.logit_rows.push_back(count - 1);
    return batch;
  };
  ASSERT_TRUE(model_->forward(batch_for(0, prompt_length), cache).ok());
  for (int p = prompt_length; p < static_cast<int>(sequence.size()); ++p) {
    auto decoded = model_->forward(batch_for(p, 1), cache);
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    auto full =
        prompt_logits(*model_, std::vector<int32_t>(sequence.begin(), sequence.begin() + p + 1));
    ASSERT_TRUE(full.ok());
    std::span<const float> last(full->data() + p * 512, 512);
    // Same kernels, different GEMM shapes: only summation order differs.
    EXPECT_TRUE(testing::close_by_relative_error(*decoded, last, Tolerance::kF32Kernel))
        << "position " << p;
  }
}

TEST_F(Stories260KTest, TokenIdsOutsideTheVocabularyAreRejected) {
  for (int32_t bad : {512, -1, 100000}) {
    GenerationRequest request;
    request.prompt_ids = {1, bad, 5};
    auto result = generate(*model_, request);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find(fmt::format("token id {} (at index 1)", bad)),
              std::string::npos)
        << result.status().to_string();
  }
}

TEST_F(Stories260KTest, RequestsBeyondTheContextWindowAreRejected) {
  GenerationRequest request;
  request.prompt_ids.assign(500, 1);
  request.max_new_tokens = 13;
  auto result = generate(*model_, request);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(result.status().message().find("context window of 512"), std::string::npos);
  request.prompt_ids = {1};
  request.max_new_tokens = 0;
  EXPECT_EQ(generate(*model_, request).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(prompt_logits(*model_, std::vector<int32_t>(513, 1)).status().code(),
            StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace shardwise
