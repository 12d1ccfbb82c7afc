// A Hugging Face checkpoint folder: one model.safetensors, or shards listed by
// model.safetensors.index.json. Hands out the mmapped tensors, or fp32 copies of whole tensors
// or of the slice one tensor-parallel rank owns, checking names and shapes against what the
// model expects.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "comm/parallel_config.h"
#include "common/status.h"
#include "models/safetensors.h"

namespace shardwise {

class Checkpoint {
 public:
  static StatusOr<Checkpoint> open(const std::filesystem::path& model_dir);

  bool contains(const std::string& name) const { return locations_.count(name) != 0; }
  StatusOr<const TensorView*> find(const std::string& name) const;
  // The tensor, whose shape must equal `expected_shape` (the error names both).
  StatusOr<const TensorView*> find_checked(const std::string& name,
                                           const std::vector<int64_t>& expected_shape) const;

  // Converts tensor `name`, whose shape must equal `expected_shape`, to fp32. With `rows` or
  // `cols` set, only that range of dimension 0 or 1 (of a 2-D tensor) is read.
  StatusOr<std::vector<float>> read_f32(const std::string& name,
                                        const std::vector<int64_t>& expected_shape) const;
  StatusOr<std::vector<float>> read_rows_f32(const std::string& name,
                                             const std::vector<int64_t>& expected_shape,
                                             Range rows) const;
  StatusOr<std::vector<float>> read_cols_f32(const std::string& name,
                                             const std::vector<int64_t>& expected_shape,
                                             Range cols) const;

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> locations_;
};

}  // namespace shardwise
