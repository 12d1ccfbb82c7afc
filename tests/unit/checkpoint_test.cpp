#include "models/checkpoint.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "models/llama_weights.h"
#include "tests/support/test_support.h"

namespace shardwise {
namespace {

const char kModel[] = "hf-tiny/tiny-llama-gqa-f32";

// Copies a model folder, rewriting its weights into `files` safetensors files (round-robin) with
// an index, and dropping the tensors in `drop`. Returns the new folder.
std::filesystem::path rewrite_checkpoint(const std::string& name, int files,
                                         const std::set<std::string>& drop = {}) {
  const auto source = testing::testdata_dir() / kModel;
  const auto dir = testing::scratch_dir(name);
  std::filesystem::copy_file(source / "config.json", dir / "config.json");
  auto original = SafetensorsFile::open(source / "model.safetensors");
  EXPECT_TRUE(original.ok());
  std::vector<std::vector<float>> storage;
  std::vector<std::vector<NamedTensorF32>> shards(files);
  nlohmann::json weight_map = nlohmann::json::object();
  int next = 0;
  for (const auto& [tensor_name, view] : (*original)->tensors()) {
    if (drop.count(tensor_name)) continue;
    storage.emplace_back(view.element_count());
    convert_to_f32(storage.back().data(), view.data, view.dtype, storage.back().size());
    const int shard = next++ % files;
    shards[shard].push_back({tensor_name, view.shape, storage.back().data()});
    weight_map[tensor_name] = fmt::format("model-{:05d}-of-{:05d}.safetensors", shard + 1, files);
  }
  if (files == 1) {
    EXPECT_TRUE(write_safetensors(dir / "model.safetensors", shards[0]).ok());
    return dir;
  }
  for (int shard = 0; shard < files; ++shard) {
    auto file_name = fmt::format("model-{:05d}-of-{:05d}.safetensors", shard + 1, files);
    EXPECT_TRUE(write_safetensors(dir / file_name, shards[shard]).ok());
  }
  std::ofstream(dir / "model.safetensors.index.json")
      << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump();
  return dir;
}

TEST(Checkpoint, ShardedLayoutReadsTheSameTensors) {
  auto single = Checkpoint::open(testing::testdata_dir() / kModel);
  auto sharded = Checkpoint::open(rewrite_checkpoint("sharded", 3));
  ASSERT_TRUE(single.ok()) << single.status().to_string();
  ASSERT_TRUE(sharded.ok()) << sharded.status().to_string();
  const std::vector<int64_t> shape{64, 64};
  auto a = single->read_f32("model.layers.1.self_attn.q_proj.weight", shape);
  auto b = sharded->read_f32("model.layers.1.self_attn.q_proj.weight", shape);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(Checkpoint, ReadsRowAndColumnSlices) {
  auto checkpoint = Checkpoint::open(testing::testdata_dir() / kModel);
  ASSERT_TRUE(checkpoint.ok());
  const std::string name = "model.layers.0.mlp.down_proj.weight";  // [64, 176]
  auto whole = checkpoint->read_f32(name, {64, 176});
  auto rows = checkpoint->read_rows_f32(name, {64, 176}, {10, 13});
  auto cols = checkpoint->read_cols_f32(name, {64, 176}, {44, 88});
  ASSERT_TRUE(whole.ok() && rows.ok() && cols.ok());
  ASSERT_EQ(rows->size(), 3u * 176);
  ASSERT_EQ(cols->size(), 64u * 44);
  for (int r = 0; r < 3; ++r) EXPECT_EQ((*rows)[r * 176 + 5], (*whole)[(10 + r) * 176 + 5]);
  for (int r = 0; r < 64; ++r) EXPECT_EQ((*cols)[r * 44 + 7], (*whole)[r * 176 + 44 + 7]);
}

TEST(Checkpoint, MissingTensorIsNamed) {
  const auto dir = rewrite_checkpoint("missing", 1, {"model.layers.1.mlp.up_proj.weight"});
  auto config = load_llama_config(dir);
  ASSERT_TRUE(config.ok());
  auto weights = load_llama_weights(dir, *config, TensorParallel{});
  ASSERT_FALSE(weights.ok());
  EXPECT_EQ(weights.status().code(), StatusCode::kNotFound);
  EXPECT_NE(weights.status().message().find("'model.layers.1.mlp.up_proj.weight' is missing"),
            std::string::npos)
      << weights.status().to_string();
}

TEST(Checkpoint, WrongShapeNamesTensorAndShapes) {
  auto config = load_llama_config(testing::testdata_dir() / kModel);
  ASSERT_TRUE(config.ok());
  config->intermediate_size = 180;
  auto weights = load_llama_weights(testing::testdata_dir() / kModel, *config, TensorParallel{});
  ASSERT_FALSE(weights.ok());
  EXPECT_EQ(weights.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(weights.status().message().find("'model.layers.0.mlp.gate_proj.weight' has shape [176, "
                                            "64], but config.json implies [180, 64]"),
            std::string::npos)
      << weights.status().to_string();
}

TEST(Checkpoint, IndexNamingAMissingShard) {
  const auto dir = rewrite_checkpoint("missing-shard", 2);
  std::filesystem::remove(dir / "model-00002-of-00002.safetensors");
  auto checkpoint = Checkpoint::open(dir);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_NE(checkpoint.status().message().find("model-00002-of-00002.safetensors"),
            std::string::npos);
}

TEST(Checkpoint, FolderWithoutWeights) {
  auto checkpoint = Checkpoint::open(testing::scratch_dir("empty"));
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_EQ(checkpoint.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace shardwise
