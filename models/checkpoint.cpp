#include "models/checkpoint.h"

#include <fmt/ranges.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/check.h"

namespace shardwise {
namespace {

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

// The shard files named by an index's weight_map, each once.
StatusOr<std::vector<std::string>> read_index(const std::filesystem::path& index_path) {
  std::ifstream in(index_path);
  if (!in) return not_found("{}: cannot open", index_path.string());
  std::stringstream text;
  text << in.rdbuf();
  auto index = nlohmann::json::parse(text.str(), nullptr, false);
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object()) {
    return data_loss("{}: expected a JSON object with a \"weight_map\" object",
                     index_path.string());
  }
  std::set<std::string> files;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string())
      return data_loss("{}: weight_map[{}] is not a file name", index_path.string(), tensor);
    const std::string name = file;
    if (name.find('/') != std::string::npos) {
      return data_loss("{}: shard file '{}' must be in the model folder", index_path.string(),
                       name);
    }
    files.insert(name);
  }
  return std::vector<std::string>(files.begin(), files.end());
}

}  // namespace

StatusOr<Checkpoint> Checkpoint::open(const std::filesystem::path& model_dir) {
  std::vector<std::string> file_names;
  if (std::filesystem::exists(model_dir / kIndexFile)) {
    SW_ASSIGN_OR_RETURN(file_names, read_index(model_dir / kIndexFile));
  } else if (std::filesystem::exists(model_dir / kSingleFile)) {
    file_names.push_back(kSingleFile);
  } else {
    return not_found("{}: no {} or {} found", model_dir.string(), kSingleFile, kIndexFile);
  }
  Checkpoint checkpoint;
  for (const auto& name : file_names) {
    SW_ASSIGN_OR_RETURN(auto file, SafetensorsFile::open(model_dir / name));
    for (const auto& [tensor_name, view] : file->tensors()) {
      if (!checkpoint.locations_.emplace(tensor_name, &view).second) {
        return data_loss("{}: tensor '{}' appears in two shard files", model_dir.string(),
                         tensor_name);
      }
    }
    checkpoint.files_.push_back(std::move(file));
  }
  return checkpoint;
}

StatusOr<const TensorView*> Checkpoint::find(const std::string& name) const {
  auto it = locations_.find(name);
  if (it == locations_.end()) return not_found("tensor '{}' is missing from the checkpoint", name);
  return it->second;
}

StatusOr<const TensorView*> Checkpoint::find_checked(
    const std::string& name, const std::vector<int64_t>& expected_shape) const {
  SW_ASSIGN_OR_RETURN(const TensorView* view, find(name));
  if (view->shape != expected_shape) {
    return invalid_argument("tensor '{}' has shape [{}], but config.json implies [{}]", name,
                            fmt::join(view->shape, ", "), fmt::join(expected_shape, ", "));
  }
  return view;
}

StatusOr<std::vector<float>> Checkpoint::read_f32(
    const std::string& name, const std::vector<int64_t>& expected_shape) const {
  SW_ASSIGN_OR_RETURN(const TensorView* view, find_checked(name, expected_shape));
  std::vector<float> out(view->element_count());
  convert_to_f32(out.data(), view->data, view->dtype, out.size());
  return out;
}

StatusOr<std::vector<float>> Checkpoint::read_rows_f32(const std::string& name,
                                                       const std::vector<int64_t>& expected_shape,
                                                       Range rows) const {
  SW_ASSIGN_OR_RETURN(const TensorView* view, find_checked(name, expected_shape));
  SW_CHECK(view->shape.size() == 2 && rows.begin >= 0 && rows.end <= view->shape[0]);
  const int64_t row_size = view->shape[1];
  std::vector<float> out(rows.size() * row_size);
  convert_to_f32(out.data(), view->data + rows.begin * row_size * dtype_size(view->dtype),
                 view->dtype, out.size());
  return out;
}

StatusOr<std::vector<float>> Checkpoint::read_cols_f32(const std::string& name,
                                                       const std::vector<int64_t>& expected_shape,
                                                       Range cols) const {
  SW_ASSIGN_OR_RETURN(const TensorView* view, find_checked(name, expected_shape));
  SW_CHECK(view->shape.size() == 2 && cols.begin >= 0 && cols.end <= view->shape[1]);
  const int64_t n_rows = view->shape[0];
  const std::size_t element = dtype_size(view->dtype);
  std::vector<float> out(n_rows * cols.size());
  for (int64_t r = 0; r < n_rows; ++r) {
    convert_to_f32(out.data() + r * cols.size(),
                   view->data + (r * view->shape[1] + cols.begin) * element, view->dtype,
                   cols.size());
  }
  return out;
}

}  // namespace shardwise
