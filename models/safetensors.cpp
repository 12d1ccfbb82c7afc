#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/json_depth.h"

namespace shardwise {
namespace {

// Ordered: the order of a header's entries is part of what is checked.
using json = nlohmann::ordered_json;

// A header larger than this is certainly corrupt (real ones are a few hundred KB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

StatusOr<TensorView> parse_tensor_entry(const std::string& name, const json& entry,
                                        const std::byte* data, std::size_t data_size) {
  if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
      !entry.contains("data_offsets")) {
    return data_loss("tensor '{}': entry needs dtype, shape and data_offsets", name);
  }
  TensorView view;
  view.name = name;
  if (!entry["dtype"].is_string()) return data_loss("tensor '{}': dtype is not a string", name);
  const std::string dtype = entry["dtype"];
  auto parsed = dtype_from_name(dtype);
  if (!parsed) {
    return data_loss("tensor '{}': unsupported dtype '{}' (supported: F32, F16, BF16)", name,
                     dtype);
  }
  view.dtype = *parsed;

  const json& shape = entry["shape"];
  if (!shape.is_array()) return data_loss("tensor '{}': shape is not an array", name);
  uint64_t elements = 1;
  for (const auto& dim : shape) {
    if (!dim.is_number_unsigned())
      return data_loss("tensor '{}': bad dimension {}", name, dim.dump());
    const uint64_t extent = dim.get<uint64_t>();
    if (extent != 0 && elements > (uint64_t{1} << 48) / extent) {
      return data_loss("tensor '{}': shape too large", name);
    }
    elements *= extent;
    view.shape.push_back(static_cast<int64_t>(extent));
  }

  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return data_loss("tensor '{}': data_offsets must be [begin, end]", name);
  }
  const uint64_t begin = offsets[0].get<uint64_t>();
  const uint64_t end = offsets[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    return data_loss(
        "tensor '{}': data_offsets [{}, {}] lie outside the {} data bytes (truncated "
        "file?)",
        name, begin, end, data_size);
  }
  const uint64_t expected = elements * dtype_size(view.dtype);
  if (end - begin != expected) {
    return data_loss("tensor '{}': {} bytes in the file, but shape x {} needs {}", name,
                     end - begin, dtype, expected);
  }
  view.data = data + begin;
  view.byte_size = end - begin;
  return view;
}

// safetensors' Dtype order (the Rust library lays out data by it, largest first).
int dtype_rank(DType dtype) {
  switch (dtype) {
    case DType::kF16:
      return 0;
    case DType::kBF16:
      return 1;
    case DType::kF32:
      return 2;
  }
  return 0;
}

// The tensors' bytes must tile the data region exactly, in the order of the header or in the
// safetensors library's order (dtype, then name). Real files do: a header whose offsets were
// swapped between two same-sized tensors passes every per-tensor check, and this is what
// refuses it instead of loading each tensor's weights into the other.
Status check_layout(const std::vector<const TensorView*>& in_header_order, const std::byte* data,
                    std::size_t data_size) {
  std::vector<const TensorView*> by_offset = in_header_order;
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const TensorView* a, const TensorView* b) { return a->data < b->data; });
  const std::byte* expected = data;
  for (std::size_t i = 0; i < by_offset.size(); ++i) {
    const TensorView& view = *by_offset[i];
    if (view.data != expected) {
      const std::string before =
          i == 0 ? std::string("the data begins") : "'" + by_offset[i - 1]->name + "' ends";
      return data_loss("tensor '{}' starts at byte {}, but {} at byte {}: tensors {}", view.name,
                       view.data - data, before, expected - data,
                       view.data < expected ? "overlap" : "leave a gap");
    }
    expected += view.byte_size;
  }
  if (expected != data + data_size) {
    return data_loss("{} bytes after the last tensor's data", data + data_size - expected);
  }
  std::vector<const TensorView*> by_name = in_header_order;
  std::stable_sort(by_name.begin(), by_name.end(), [](const TensorView* a, const TensorView* b) {
    if (dtype_rank(a->dtype) != dtype_rank(b->dtype)) {
      return dtype_rank(a->dtype) > dtype_rank(b->dtype);
    }
    return a->name < b->name;
  });
  const auto same_order = [&](const std::vector<const TensorView*>& order) {
    for (std::size_t i = 0; i < order.size(); ++i) {
      // Empty tensors have no place of their own.
      if (order[i] != by_offset[i] && order[i]->byte_size != 0) return false;
    }
    return true;
  };
  if (same_order(in_header_order) || same_order(by_name)) return ok_status();
  for (std::size_t i = 0; i < by_offset.size(); ++i) {
    if (by_offset[i] != in_header_order[i]) {
      return data_loss(
          "tensor '{}' is stored where the header's order puts '{}', and not in name order "
          "either: swapped data_offsets?",
          by_offset[i]->name, in_header_order[i]->name);
    }
  }
  return ok_status();
}

}  // namespace

int64_t TensorView::element_count() const {
  int64_t count = 1;
  for (int64_t extent : shape) count *= extent;
  return count;
}

StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(
    const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return not_found("{}: cannot open: {}", path.string(), std::strerror(errno));
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    ::close(fd);
    return data_loss("{}: cannot stat: {}", path.string(), std::strerror(errno));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_size_ = static_cast<std::size_t>(info.st_size);
  if (file->mapping_size_ > 0) {
    file->mapping_ = mmap(nullptr, file->mapping_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  }
  ::close(fd);
  if (file->mapping_ == MAP_FAILED) {
    file->mapping_ = nullptr;
    return data_loss("{}: mmap failed: {}", path.string(), std::strerror(errno));
  }
  SW_RETURN_IF_ERROR(file->parse_header(file->mapping_size_).with_context(path.string()));
  return file;
}

Status SafetensorsFile::parse_header(std::size_t file_size) {
  if (file_size < 8)
    return data_loss("file is {} bytes, too short for a safetensors header", file_size);
  const auto* bytes = static_cast<const std::byte*>(mapping_);
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes, 8);  // little-endian, as are the machines we run on
  if (header_size > kMaxHeaderBytes || header_size > file_size - 8) {
    return data_loss("header length {} exceeds the file size {} (truncated or not safetensors)",
                     header_size, file_size);
  }
  const char* header_text = reinterpret_cast<const char*>(bytes + 8);
  if (json_nesting_depth(std::string_view(header_text, header_size)) > kMaxJsonDepth) {
    return data_loss("header nests deeper than {}", kMaxJsonDepth);
  }
  json header = json::parse(header_text, header_text + header_size, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return data_loss("header is not a JSON object");

  const std::byte* data = bytes + 8 + header_size;
  const std::size_t data_size = file_size - 8 - header_size;
  std::vector<const TensorView*> in_header_order;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    SW_ASSIGN_OR_RETURN(TensorView view, parse_tensor_entry(name, entry, data, data_size));
    auto [it, inserted] = tensors_.emplace(name, std::move(view));
    in_header_order.push_back(&it->second);
  }
  return check_layout(in_header_order, data, data_size);
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void release_pages(const std::byte* data, std::size_t bytes) {
  if (bytes == 0) return;
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<std::uintptr_t>(data) / page * page;
  const auto end = reinterpret_cast<std::uintptr_t>(data) + bytes;
  // Pages shared with a neighbouring tensor go too: they are read back if it needs them.
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<NamedTensorF32>& tensors) {
  json header = json::object();  // in data order, as check_layout expects
  uint64_t offset = 0;
  for (const auto& tensor : tensors) {
    uint64_t elements = 1;
    for (int64_t extent : tensor.shape) elements *= static_cast<uint64_t>(extent);
    header[tensor.name] = {{"dtype", "F32"},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + elements * sizeof(float)}}};
    offset += elements * sizeof(float);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return not_found("{}: cannot create: {}", path.string(), std::strerror(errno));
  const uint64_t header_size = text.size();
  out.write(reinterpret_cast<const char*>(&header_size), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& tensor : tensors) {
    uint64_t elements = 1;
    for (int64_t extent : tensor.shape) elements *= static_cast<uint64_t>(extent);
    out.write(reinterpret_cast<const char*>(tensor.data),
              static_cast<std::streamsize>(elements * sizeof(float)));
  }
  out.close();
  if (!out) return data_loss("{}: write failed", path.string());
  return ok_status();
}

}  // namespace shardwise
