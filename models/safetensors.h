// The safetensors format: an 8-byte little-endian header length, a JSON header naming each
// tensor's dtype, shape and byte range, then the data. Files are mmapped read-only and every
// header is validated before any tensor is handed out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/status.h"

namespace shardwise {

// A read-only view of one tensor inside a mapped file.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;  // not necessarily aligned
  std::size_t byte_size = 0;

  int64_t element_count() const;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`: JSON well-formed, dtypes known, byte size = product of shape x
  // dtype size, and the tensors' bytes tiling the data exactly (no overlap, gap or tail) in the
  // header's order or in the safetensors library's (dtype, then name), which swapped offsets
  // break.
  static StatusOr<std::unique_ptr<SafetensorsFile>> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  Status parse_header(std::size_t file_size);

  std::filesystem::path path_;
  void* mapping_ = nullptr;
  std::size_t mapping_size_ = 0;
  std::map<std::string, TensorView> tensors_;
};

// Drops the pages under [data, data + bytes) of a mapped file from this process's resident set
// once they have been copied (a repacked weight): memory use stays at one copy of the weights
// while loading. A later read faults them back in from the page cache.
void release_pages(const std::byte* data, std::size_t bytes);

// An fp32 tensor to write.
struct NamedTensorF32 {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // product(shape) elements
};

// Writes an F32 safetensors file (header padded to 8 bytes, as the reference writer does).
Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<NamedTensorF32>& tensors);

}  // namespace shardwise
